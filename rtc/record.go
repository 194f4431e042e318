package rtc

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/at-wat/ebml-go/mkvcore"
	"github.com/at-wat/ebml-go/webm"
	"github.com/pion/webrtc/v4"

	"github.com/switchboard/switchboard/api"
)

// maxRecordedBytes bounds one party's recording: 1 GiB is over four hours
// of 500 kbit/s video, longer than any support call; past it the party's
// file is finished (the call goes on) rather than fill the disk.
const maxRecordedBytes = 1 << 30

// The WebM file of a party: its Opus audio is track 1, its VP8 video (on
// a video call) track 2.
const (
	trackAudio = 1
	trackVideo = 2
	// maxClusterMs bounds a cluster, so a seek lands within 5s of its
	// target and a gateway killed mid-call loses at most the cluster it
	// was writing (recordfile.go). A video keyframe at least
	// minVideoClusterMs into a cluster starts the next one, so seeks
	// land on a picture where they can.
	maxClusterMs      = 5000
	minVideoClusterMs = 1000
	// cuesReserved is the space kept after the header for the seek index
	// written when the file is finished: about 20 bytes per cluster, so
	// a four-hour call of 5s clusters fits; a longer list is thinned by
	// ebml-go to fit.
	cuesReserved = 64 << 10
	// sortDepth is how many frames one track may run ahead of the other
	// while the muxer waits to write both in time order (50 Opus frames
	// are 1s): video that arrives later than that behind the audio is
	// dropped, since a block before its cluster's start would need a
	// negative offset, which some players refuse.
	sortDepth = 50
	// videoMaxLate and videoMaxDelay bound how long an incomplete video
	// frame waits for a missing packet (a retransmission answers a NACK
	// within a round trip) before it is dropped; both stay below what
	// sortDepth tolerates.
	videoMaxLate  = 256
	videoMaxDelay = 500 * time.Millisecond
	// maxSyncShiftMs bounds how far a sender report may move a track
	// against the other: streams of one device are a few tens of
	// milliseconds apart, so a report claiming more is wrong (a reset
	// or bogus clock) and is ignored.
	maxSyncShiftMs = 1000
	// The video size written in the header until the first keyframe
	// tells the real one (recordfile.go patches it in place).
	placeholderWidth, placeholderHeight = 640, 480
)

// sorter interleaves a party's audio and video blocks in time order. It
// keeps no state of its own between files, so one serves them all.
var sorter = mkvcore.MustBlockInterceptor(mkvcore.NewMultiTrackBlockSorter(
	mkvcore.WithMaxDelayedPackets(sortDepth), mkvcore.WithSortRule(mkvcore.BlockSorterDropOutdated)))

// segmentInfo is WebM's Info with Duration always present: it stays 0
// ("unknown" to players) in a file cut off mid-call, and ebml-go writes
// the real one in place when the file is finished. webm.Info omits a
// zero Duration, and ebml-go would give it a placeholder that reads as a
// file of no length (and write it into webm.DefaultSegmentInfo, shared
// by every file).
type segmentInfo struct {
	TimecodeScale uint64    `ebml:"TimecodeScale"`
	MuxingApp     string    `ebml:"MuxingApp"`
	WritingApp    string    `ebml:"WritingApp"`
	Duration      float64   `ebml:"Duration"`
	DateUTC       time.Time `ebml:"DateUTC"`
}

// recording is one party's recording: a WebM file holding the party's
// Opus audio and, on a video call, its VP8 video, as they arrived (no
// transcoding). The party's forward goroutines write into it through a
// trackRecorder each; mu serializes their frames and the end.
type recording struct {
	log   *slog.Logger
	path  string
	start time.Time
	now   func() time.Time

	mu     sync.Mutex
	file   *recordFile
	tracks [2]webm.BlockWriteCloser // by kind; no video on an audio call
	busy   [2]bool                  // a forward goroutine records this kind
	lastMs [2]int64                 // each track's last block time
	left   int                      // bytes the size bound still allows
	sized  bool                     // the video's size was written
	done   bool                     // finished: closed, bounded or failed
	err    error                    // what finishing the file returned

	// The party's clock (see sync): recording ms = sender ms - clockBase,
	// set by the first track to get a sender report; shift moves the
	// other track onto it.
	based     bool
	clockBase int64
	shift     [2]int64
}

// recorder returns the recorder of p's track t when the call is recorded:
// the caller consented, the node has a RecordDir, and p is not a
// listener. The party's file, RecordDir/<call id>/<role>.webm, is opened
// by its first track with the tracks the call's media says (Opus, and
// VP8 on a video call); the call's directory is private to the gateway's
// user (recordings are personal data). nil means not recorded; a failure
// to open is logged and the call goes on.
func (rm *room) recorder(p *party, t *webrtc.TrackRemote) *trackRecorder {
	dir := rm.relay.cfg.RecordDir
	rm.mu.Lock()
	consented := rm.rec != nil && rm.rec.Recording
	video := rm.rec != nil && rm.rec.Media == api.MediaVideo
	rm.mu.Unlock()
	if dir == "" || !consented || p.role == roleListener {
		return nil
	}
	log := rm.relay.svc.log.With("call", rm.id)
	p.recMu.Lock()
	defer p.recMu.Unlock()
	if p.recEnded {
		return nil
	}
	if p.recording == nil {
		r, err := openRecording(filepath.Join(dir, rm.id), roleName(p.role), video, maxRecordedBytes, log)
		if err != nil {
			log.Error("recording not started", "err", err)
			return nil
		}
		p.recording = r
	}
	return p.recording.track(t.Codec().RTPCodecCapability)
}

// closeRecording finishes p's file at the end of the room; no track of p
// is recorded after it.
func (p *party) closeRecording(log *slog.Logger) {
	p.recMu.Lock()
	p.recEnded = true
	r := p.recording
	p.recMu.Unlock()
	if r == nil {
		return
	}
	if err := r.close(); err != nil {
		log.Error("recording not finished", "call", p.room.id, "file", r.path, "err", err)
	}
}

// maxRecordingNames bounds the names tried for one party's file.
const maxRecordingNames = 100

// openRecording creates a party's WebM file in dir and writes its header.
// An existing file is never overwritten: a call whose media came back to
// this node (a restart mid-call, a failover) records the party again to
// <role>-2.webm and on.
func openRecording(dir, role string, video bool, limit int, log *slog.Logger) (*recording, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	var (
		f    *os.File
		path string
		err  error
	)
	for i := 1; i <= maxRecordingNames; i++ {
		path = filepath.Join(dir, role+".webm")
		if i > 1 {
			path = filepath.Join(dir, fmt.Sprintf("%s-%d.webm", role, i))
		}
		f, err = os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if !errors.Is(err, fs.ErrExist) {
			break
		}
	}
	if err != nil {
		return nil, err
	}
	start := time.Now()
	r := &recording{log: log.With("file", path), path: path, start: start, now: time.Now,
		file: &recordFile{f: f, sizeAt: -1}, left: limit}
	tracks := []webm.TrackEntry{{
		TrackNumber: trackAudio, TrackUID: trackAudio, TrackType: 2, CodecID: "A_OPUS",
		// RFC 7845's ID header, which the Matroska Opus mapping asks for:
		// version 1, stereo as the relay negotiates, no pre-skip (a
		// WebRTC stream is decoded from its first packet), 48 kHz.
		CodecPrivate: []byte{'O', 'p', 'u', 's', 'H', 'e', 'a', 'd', 1, 2, 0, 0, 0x80, 0xbb, 0, 0, 0, 0, 0},
		// 80 ms, the Opus decoder's convergence time after a seek
		// (Matroska's Opus codec mapping).
		SeekPreRoll: 80_000_000,
		Audio:       &webm.Audio{SamplingFrequency: 48000, Channels: 2},
	}}
	opts := []mkvcore.BlockWriterOption{
		mkvcore.WithSegmentInfo(&segmentInfo{TimecodeScale: 1_000_000, MuxingApp: "ebml-go", WritingApp: "switchboard",
			DateUTC: start.UTC()}),
		mkvcore.WithSeekHead(true),
		mkvcore.WithCues(cuesReserved),
		// Writes to r.file never fail (recordFile keeps its errors), so
		// ebml-go's writer never stops and never panics; what is left is
		// a bug, noted for the next frame to end the recording on.
		mkvcore.WithOnFatalHandler(r.file.fatal),
	}
	if video {
		tracks = append(tracks, webm.TrackEntry{
			TrackNumber: trackVideo, TrackUID: trackVideo, TrackType: 1, CodecID: "V_VP8",
			Video: &webm.Video{PixelWidth: placeholderWidth, PixelHeight: placeholderHeight},
		})
		opts = append(opts, mkvcore.WithBlockInterceptor(sorter),
			mkvcore.WithMinMaxClusterDuration(trackVideo, minVideoClusterMs, maxClusterMs))
	} else {
		// One track needs no sorting: its blocks go straight to the file.
		opts = append(opts, mkvcore.WithBlockInterceptor(nil),
			mkvcore.WithMinMaxClusterDuration(trackAudio, maxClusterMs, maxClusterMs))
	}
	ws, err := webm.NewSimpleBlockWriter(r.file, tracks, opts...)
	if err == nil && !r.file.header(video) {
		for _, w := range ws {
			_ = w.Close()
		}
		err = fmt.Errorf("rtc: recording header not written: %w", r.file.err)
	}
	if err != nil {
		_ = f.Close()
		_ = os.Remove(path)
		return nil, err
	}
	for i, w := range ws {
		r.tracks[i] = w
	}
	return r, nil
}

// track hands the recording of one kind to the forward goroutine of a
// track of the party; nil when that kind is not recorded: the call has no
// video, another track of the kind records already, the codec is not the
// one recorded, or the recording is over.
func (r *recording) track(c webrtc.RTPCodecCapability) *trackRecorder {
	k, clock := kAudio, uint32(48000)
	if !strings.EqualFold(c.MimeType, webrtc.MimeTypeOpus) {
		if !strings.EqualFold(c.MimeType, webrtc.MimeTypeVP8) {
			r.log.Warn("track not recorded", "codec", c.MimeType)
			return nil
		}
		k, clock = kVideo, 90000
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.done || r.tracks[k] == nil || r.busy[k] {
		return nil
	}
	r.busy[k] = true
	return newTrackRecorder(r, k, clock)
}

// write adds one frame of kind k at ms from the recording's start. It
// reports false once the recording is over: closed, at its size bound,
// or given up on after repeated write errors; the last two finish the
// file there and are logged.
func (r *recording) write(k int, key bool, ms int64, frame []byte) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.done {
		return false
	}
	if r.file.failed.Load() {
		r.log.Error("recording stopped: repeated write errors", "err", r.file.err)
		r.finish()
		return false
	}
	if r.left -= len(frame); r.left < 0 {
		r.log.Warn("recording stopped: size bound")
		r.finish()
		return false
	}
	// A track moved back by sync repeats its last time for as long as
	// the move: blocks may not go back in time.
	ms = max(ms+r.shift[k], r.lastMs[k])
	r.lastMs[k] = ms
	// ebml-go's writer hands the frame to its muxer goroutine, which
	// sorts it among the other track's and writes it to r.file.
	_, _ = r.tracks[k].Write(key, ms, frame)
	return true
}

// sync puts track k on the sender's clock, given a sender report: the
// sender's time (ms) at a moment the track's arrival timeline places at
// arrivalMs. The first track reported defines the clock, so it does not
// move; the other moves by its difference, once, so that audio and video
// captured together are written together.
func (r *recording) sync(k int, senderMs, arrivalMs int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.based {
		r.based, r.clockBase = true, senderMs-arrivalMs
		return
	}
	d := senderMs - r.clockBase - arrivalMs
	if d < -maxSyncShiftMs || d > maxSyncShiftMs {
		r.log.Warn("recording: sender report ignored", "shift_ms", d)
		return
	}
	r.shift[k] = d
}

// videoSize writes the size of the first keyframe into the header, in
// place of the placeholder: players scale the picture to it.
func (r *recording) videoSize(width, height int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.done || r.sized {
		return
	}
	r.sized = true
	r.file.patchSize(width, height)
}

// release frees kind k for another track of the party (a renegotiation).
func (r *recording) release(k int) {
	r.mu.Lock()
	r.busy[k] = false
	r.shift[k] = 0 // a new track of the kind is placed afresh
	r.mu.Unlock()
}

// close finishes the file: the blocks still sorted flushed, the seek
// index and duration written, the file closed. Later frames are dropped.
func (r *recording) close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.done {
		r.finish()
	}
	return r.err
}

// finish ends the recording with r.mu held. Closing the last track makes
// ebml-go finish the file, and returns when it has (recordfile.go).
func (r *recording) finish() {
	r.done = true
	for _, w := range r.tracks {
		if w != nil {
			_ = w.Close()
		}
	}
	r.err = r.file.closeErr
}

// pruneEvery is how often recordings past their retention are looked for.
const pruneEvery = time.Hour

// PruneRecordings deletes the recordings whose call directory under
// RecordDir was last changed more than RecordRetention ago. Only call
// directories are touched, never anything else in RecordDir.
func (s *Service) PruneRecordings(context.Context) error {
	dir := s.cfg.Media.RecordDir
	if dir == "" {
		return nil
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	cutoff := s.now().Add(-s.cfg.Media.RecordRetention)
	for _, e := range entries {
		if !e.IsDir() || !strings.HasPrefix(e.Name(), "call_") {
			continue
		}
		info, err := e.Info()
		if err != nil || !info.ModTime().Before(cutoff) {
			continue
		}
		if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
			return err
		}
		s.log.Info("recording deleted after its retention", "call", e.Name())
	}
	return nil
}
