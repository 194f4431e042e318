package mobilecall

import (
	"strings"
	"sync/atomic"
	"time"

	"github.com/pion/rtp/codecs"
	"github.com/pion/webrtc/v4"
	"github.com/pion/webrtc/v4/pkg/media"
	"github.com/pion/webrtc/v4/pkg/media/samplebuilder"
)

// maxFrameMs bounds one frame's duration: Opus frames last at most 120 ms
// (RFC 6716) and a video frame longer than a second is a stalled
// encoder's, which would throw the agent's playout clock off.
const maxFrameMs = 1000

// How long the sample builders wait for a missing packet before they give
// its frame up: in a conversation a late frame is worse than a lost one.
const (
	audioLate = 10 // packets: 200 ms of 20 ms Opus frames
	// videoLate leaves room for a keyframe's tens of packets; the time
	// bound keeps a loss from stalling the picture for more than half a
	// second.
	videoLate      = 100
	videoLateDelay = 500 * time.Millisecond
)

// WriteAudio sends one Opus frame of the app's microphone, durationMs
// long (20 is usual). While audio is muted (SetMuted) frames are dropped.
func (c *Call) WriteAudio(opusFrame []byte, durationMs int) error {
	return c.write(c.audio, &c.muteAudio, opusFrame, durationMs)
}

// WriteVideo sends one VP8 frame of the app's camera, durationMs long
// (33 at 30 frames a second). While video is muted frames are dropped.
func (c *Call) WriteVideo(vp8Frame []byte, durationMs int) error {
	return c.write(c.video, &c.muteVideo, vp8Frame, durationMs)
}

func (c *Call) write(t *webrtc.TrackLocalStaticSample, muted *atomic.Bool, frame []byte, ms int) error {
	if _, err := c.live(); err != nil {
		return err
	}
	if t == nil {
		return ErrNoVideo
	}
	if len(frame) == 0 || ms <= 0 || ms > maxFrameMs {
		return ErrFrame
	}
	if muted.Load() {
		return nil
	}
	// The packetizer copies frame: gomobile lends the app's bytes only
	// for the length of the call.
	return t.WriteSample(media.Sample{Data: frame, Duration: time.Duration(ms) * time.Millisecond})
}

// onTrack reads a track the agent sends, in a goroutine that ends when
// the media connection closes.
func (c *Call) onTrack(t *webrtc.TrackRemote) {
	c.goTracked(func() { c.readTrack(t) })
}

// readTrack turns a remote track's RTP packets back into the frames the
// agent's encoder made and hands them to the listener.
func (c *Call) readTrack(t *webrtc.TrackRemote) {
	var sb *samplebuilder.SampleBuilder
	var deliver func(Listener, []byte, int)
	video := false
	switch codec := t.Codec(); {
	case strings.EqualFold(codec.MimeType, webrtc.MimeTypeOpus):
		sb, deliver = samplebuilder.New(audioLate, &codecs.OpusPacket{}, codec.ClockRate), Listener.OnAudioFrame
	case strings.EqualFold(codec.MimeType, webrtc.MimeTypeVP8):
		sb = samplebuilder.New(videoLate, &codecs.VP8Packet{}, codec.ClockRate, samplebuilder.WithMaxTimeDelay(videoLateDelay))
		deliver, video = Listener.OnVideoFrame, true
	default:
		return // call.DefaultAPI negotiates only Opus and VP8
	}
	for {
		p, _, err := t.ReadRTP()
		if err != nil {
			return // the media connection closed
		}
		sb.Push(p)
		for s := sb.Pop(); s != nil; s = sb.Pop() {
			// Packets the builder gave up (a frame it could not complete
			// in time) break the frames that build on theirs until the
			// next keyframe: ask for one rather than wait for the app's
			// decoder to notice.
			if video && s.PrevDroppedPackets > 0 {
				c.lostVideo(uint32(t.SSRC()))
			}
			c.callback(func(l Listener) { deliver(l, s.Data, int(s.Duration/time.Millisecond)) })
		}
	}
}

// onData hands a data channel message to the listener, on pion's
// goroutine.
func (c *Call) onData(msg []byte) {
	c.callback(func(l Listener) { l.OnData(msg) })
}
