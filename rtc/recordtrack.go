package rtc

import (
	"bytes"
	"encoding/binary"
	"sync/atomic"

	"github.com/pion/rtp"
	"github.com/pion/rtp/codecs"
	"github.com/pion/webrtc/v4/pkg/media"
	"github.com/pion/webrtc/v4/pkg/media/samplebuilder"
)

// trackRecorder turns one incoming track of a party into frames of the
// party's recording: an Opus packet is a frame; VP8 packets are put back
// together into frames, written from the first keyframe on. It is used
// only by the track's forward goroutine, so its per-packet work takes no
// lock; the recording's lock is taken once per frame.
type trackRecorder struct {
	rec   *recording
	kind  int
	clock int64 // RTP clock rate: 48 kHz Opus, 90 kHz VP8
	pkt   rtp.Packet
	sb    *samplebuilder.SampleBuilder

	// A frame's time is the wall-clock arrival of the track's first
	// packet (from the recording's start) plus the RTP time since, so
	// the party's audio and video line up as they were sent; RTP
	// timestamps are extended past their 32-bit wrap. The first sender
	// report about the track (sr, stored by the relay's RTCP reader)
	// then moves it onto the sender's own clock, which audio and video
	// share (recording.sync): arrival alone is off by the difference in
	// the two streams' encoding and network delays.
	sr       atomic.Pointer[senderReport]
	synced   bool
	started  bool
	anchorMs int64
	lastTS   uint32 // the newest RTP timestamp seen
	ext      int64  // lastTS's ticks since the first packet
	wrote    bool
	wroteExt int64 // the last frame's ticks since the first packet
	stopped  bool
}

func newTrackRecorder(r *recording, k int, clock uint32) *trackRecorder {
	tr := &trackRecorder{rec: r, kind: k, clock: int64(clock)}
	if k == kVideo {
		// pion's sample builder reorders packets in rings indexed by
		// sequence number (1 MiB), only for recorded video tracks.
		tr.sb = samplebuilder.New(videoMaxLate, &codecs.VP8Packet{}, clock, samplebuilder.WithMaxTimeDelay(videoMaxDelay))
	}
	return tr
}

// write records one RTP packet as read from the track (raw is reused by
// the caller afterwards). It reports false once the recording is over;
// a packet that is not RTP, or a late duplicate, is skipped.
func (tr *trackRecorder) write(raw []byte) bool {
	if tr.stopped {
		return false
	}
	if tr.kind == kAudio {
		if err := tr.pkt.Unmarshal(raw); err != nil || len(tr.pkt.Payload) == 0 {
			return true
		}
		tr.anchor(tr.pkt.Timestamp)
		tr.syncReported()
		e := tr.extend(tr.pkt.Timestamp)
		if tr.wrote && e <= tr.wroteExt {
			return true // late or repeated: the block would go back in time
		}
		return tr.frame(true, e, bytes.Clone(tr.pkt.Payload))
	}
	// The sample builder keeps packets until their frame is complete, so
	// each gets its own copy.
	p := &rtp.Packet{}
	if err := p.Unmarshal(bytes.Clone(raw)); err != nil {
		return true
	}
	tr.anchor(p.Timestamp)
	tr.syncReported()
	tr.sb.Push(p)
	return tr.popVideo()
}

// release writes the video frames still held and frees the track's kind
// in the recording: the track ended.
func (tr *trackRecorder) release() {
	if tr.sb != nil && !tr.stopped {
		tr.sb.Flush()
		tr.popVideo()
	}
	tr.rec.release(tr.kind)
}

func (tr *trackRecorder) popVideo() bool {
	for s := tr.sb.Pop(); s != nil; s = tr.sb.Pop() {
		if !tr.videoFrame(s) {
			return false
		}
	}
	return true
}

// videoFrame writes one VP8 frame. A keyframe is one whose first byte
// has the P bit clear (RFC 6386 section 9.1); frames before the first
// keyframe cannot be decoded and are dropped.
func (tr *trackRecorder) videoFrame(s *media.Sample) bool {
	e := tr.extend(s.PacketTimestamp)
	if len(s.Data) == 0 {
		return true
	}
	key := s.Data[0]&0x01 == 0
	if (!tr.wrote && !key) || (tr.wrote && e <= tr.wroteExt) {
		return true
	}
	// A keyframe's header holds the picture's size after its start code
	// (RFC 6386 section 9.1); the first one goes in the file's header.
	if key && !tr.wrote && len(s.Data) >= 10 && bytes.Equal(s.Data[3:6], []byte{0x9d, 0x01, 0x2a}) {
		w, h := binary.LittleEndian.Uint16(s.Data[6:])&0x3fff, binary.LittleEndian.Uint16(s.Data[8:])&0x3fff
		if w > 0 && h > 0 {
			tr.rec.videoSize(int(w), int(h))
		}
	}
	return tr.frame(key, e, s.Data)
}

func (tr *trackRecorder) frame(key bool, e int64, data []byte) bool {
	tr.wrote, tr.wroteExt = true, e
	if !tr.rec.write(tr.kind, key, tr.anchorMs+e*1000/tr.clock, data) {
		tr.stopped = true
		return false
	}
	return true
}

// anchor notes the track's first packet: its arrival and RTP timestamp.
func (tr *trackRecorder) anchor(ts uint32) {
	if tr.started {
		return
	}
	tr.started = true
	tr.anchorMs = tr.rec.now().Sub(tr.rec.start).Milliseconds()
	tr.lastTS = ts
}

// senderReport is what the recording needs of an RTCP sender report: the
// sender's wall-clock time (ms) at RTP timestamp rtp.
type senderReport struct {
	ntpMs int64
	rtp   uint32
}

// senderReport hands the track a sender report about it (RFC 3550
// section 6.4.1: ntp is NTP time, 32.32 fixed point). It is called by the
// relay's RTCP reader, so it only stores; the forward goroutine uses it.
// Only the first is kept: it is the only one used.
func (tr *trackRecorder) senderReport(ntp uint64, rtpTS uint32) {
	if tr.sr.Load() != nil {
		return
	}
	frac := ntp & 0xffffffff
	ms := int64(ntp>>32)*1000 + int64((frac*1000+1<<31)>>32) // the fraction rounded to the nearest ms
	tr.sr.Store(&senderReport{ntpMs: ms, rtp: rtpTS})
}

// syncReported puts the track on its sender's clock with the first
// sender report about it, once the track has started. Only the first:
// later ones would move frames against those already written.
func (tr *trackRecorder) syncReported() {
	if tr.synced || !tr.started {
		return
	}
	sr := tr.sr.Load()
	if sr == nil {
		return
	}
	tr.synced = true
	// Where the report's RTP time falls on the track's arrival timeline.
	e := tr.ext + int64(int32(sr.rtp-tr.lastTS))
	tr.rec.sync(tr.kind, sr.ntpMs, tr.anchorMs+e*1000/tr.clock)
}

// extend places RTP timestamp ts on the track's 64-bit timeline: a step
// of less than half the 32-bit range forward is new, backward is late
// (RFC 3550's serial number arithmetic, as for sequence numbers).
func (tr *trackRecorder) extend(ts uint32) int64 {
	d := int64(int32(ts - tr.lastTS))
	e := tr.ext + d
	if d > 0 {
		tr.lastTS, tr.ext = ts, e
	}
	return e
}
