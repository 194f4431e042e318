package rtc

import (
	"bytes"
	"context"
	"encoding/binary"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/at-wat/ebml-go"
	"github.com/at-wat/ebml-go/webm"
	"github.com/pion/rtp"
)

// TestPruneRecordings: call directories older than the retention go,
// younger ones and anything that is not a call's directory stay.
func TestPruneRecordings(t *testing.T) {
	dir := t.TempDir()
	now := time.Now()
	mk := func(name string, age time.Duration) {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(p, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(p, "caller.webm"), []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(p, now.Add(-age), now.Add(-age)); err != nil {
			t.Fatal(err)
		}
	}
	mk("call_old", 31*24*time.Hour)
	mk("call_new", 29*24*time.Hour)
	mk("not-a-call", 400*24*time.Hour)
	s := &Service{cfg: Config{Media: MediaConfig{RecordDir: dir}}.withDefaults(), now: func() time.Time { return now }}
	s.log = s.cfg.Logger
	if err := s.PruneRecordings(context.Background()); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]bool{"call_old": false, "call_new": true, "not-a-call": true} {
		if _, err := os.Stat(filepath.Join(dir, name)); (err == nil) != want {
			t.Errorf("%s: exists %v, want %v", name, err == nil, want)
		}
	}
}

// webmDoc is a recorded file as ebml-go reads it back.
type webmDoc struct {
	Header  webm.EBMLHeader `ebml:"EBML"`
	Segment webm.Segment    `ebml:"Segment"`
}

type recBlock struct {
	ms   int64
	key  bool
	data []byte
}

// parseWebM reads a WebM recording: its header, and its blocks by track
// number with their times from the file's start.
func parseWebM(t *testing.T, raw []byte) (webmDoc, map[uint64][]recBlock) {
	t.Helper()
	var doc webmDoc
	if err := ebml.Unmarshal(bytes.NewReader(raw), &doc); err != nil {
		t.Fatalf("ebml: %v", err)
	}
	if doc.Header.DocType != "webm" {
		t.Fatalf("doc type %q", doc.Header.DocType)
	}
	blocks := map[uint64][]recBlock{}
	for _, c := range doc.Segment.Cluster {
		for _, b := range c.SimpleBlock {
			if len(b.Data) != 1 {
				t.Fatalf("block of %d frames", len(b.Data))
			}
			blocks[b.TrackNumber] = append(blocks[b.TrackNumber], recBlock{int64(c.Timecode) + int64(b.Timecode), b.Keyframe, b.Data[0]})
		}
	}
	return doc, blocks
}

func readWebM(t *testing.T, path string) (webmDoc, map[uint64][]recBlock) {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return parseWebM(t, raw)
}

// testClock is a recording's clock that a test moves.
type testClock struct{ at time.Time }

func (c *testClock) now() time.Time { return c.at }

func openTestRecording(t *testing.T, video bool, limit int) (*recording, *testClock) {
	t.Helper()
	r, err := openRecording(filepath.Join(t.TempDir(), "call_x"), "caller", video, limit, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	clk := &testClock{at: r.start}
	r.now = clk.now
	t.Cleanup(func() { _ = r.close() })
	return r, clk
}

func rtpPacket(t *testing.T, pt uint8, seq uint16, ts uint32, marker bool, payload []byte) []byte {
	t.Helper()
	raw, err := (&rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: pt, SequenceNumber: seq, Timestamp: ts, SSRC: 7,
		Marker: marker}, Payload: payload}).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// opus is an Opus RTP packet of n payload bytes, the sequence number
// marked in it.
func opus(t *testing.T, seq uint16, ts uint32, n int) []byte {
	p := make([]byte, n)
	binary.BigEndian.PutUint16(p, seq)
	return rtpPacket(t, 111, seq, ts, false, p)
}

// vp8Frame is a VP8 frame of n bytes split into RTP packets of at most
// 500 payload bytes (RFC 7741: a one-byte descriptor, S on the first);
// a keyframe carries its start code and size (RFC 6386 section 9.1).
func vp8Frame(t *testing.T, seq *uint16, ts uint32, key bool, n, width, height int) [][]byte {
	t.Helper()
	f := make([]byte, n)
	if key {
		copy(f, []byte{0x10, 0x02, 0x00, 0x9d, 0x01, 0x2a})
		binary.LittleEndian.PutUint16(f[6:], uint16(width))
		binary.LittleEndian.PutUint16(f[8:], uint16(height))
	} else {
		f[0] = 0x11 // P bit set: an interframe
	}
	var pkts [][]byte
	for off := 0; off < n; off += 500 {
		end := min(off+500, n)
		desc := byte(0x00)
		if off == 0 {
			desc = 0x10
		}
		*seq++
		pkts = append(pkts, rtpPacket(t, 96, *seq, ts, end == n, append([]byte{desc}, f[off:end]...)))
	}
	return pkts
}

func trackOf(t *testing.T, doc webmDoc, n uint64) webm.TrackEntry {
	t.Helper()
	for _, e := range doc.Segment.Tracks.TrackEntry {
		if e.TrackNumber == n {
			return e
		}
	}
	t.Fatalf("no track %d in %+v", n, doc.Segment.Tracks)
	return webm.TrackEntry{}
}

// An audio call's recording holds one Opus track, with a block per
// packet 20ms apart; packets that are not RTP, late or repeated are
// skipped; the file is private and finished with its duration and seek
// index. A video track is not recorded on an audio call, nor a second
// audio track beside the first.
func TestRecordingAudioOnly(t *testing.T) {
	r, _ := openTestRecording(t, false, maxRecordedBytes)
	if r.track(codecVP8) != nil {
		t.Fatal("video recorded on an audio call")
	}
	a := r.track(codecOpus)
	if a == nil {
		t.Fatal("audio not recorded")
	}
	if r.track(codecOpus) != nil {
		t.Fatal("a second audio track recorded into the same track")
	}
	const n = 100
	for i := range n {
		if !a.write(opus(t, uint16(i), 5000+uint32(i)*960, 80)) {
			t.Fatalf("packet %d refused", i)
		}
		if i == 50 {
			a.write([]byte("not rtp"))
			a.write(opus(t, 40, 5000+40*960, 80)) // a late retransmission
			a.write(opus(t, 50, 5000+50*960, 80)) // a duplicate
		}
	}
	a.release()
	if err := r.close(); err != nil {
		t.Fatal(err)
	}

	if filepath.Base(r.path) != "caller.webm" {
		t.Errorf("file %s", r.path)
	}
	if fi, err := os.Stat(r.path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("file mode %v %v", fi.Mode(), err)
	}
	if fi, err := os.Stat(filepath.Dir(r.path)); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("dir mode %v %v", fi.Mode(), err)
	}
	doc, blocks := readWebM(t, r.path)
	if len(doc.Segment.Tracks.TrackEntry) != 1 {
		t.Fatalf("tracks %+v", doc.Segment.Tracks.TrackEntry)
	}
	tr := trackOf(t, doc, trackAudio)
	if tr.CodecID != "A_OPUS" || !bytes.HasPrefix(tr.CodecPrivate, []byte("OpusHead")) || tr.Audio == nil || tr.Audio.SamplingFrequency != 48000 {
		t.Fatalf("audio track %+v", tr)
	}
	got := blocks[trackAudio]
	if len(got) != n || len(blocks) != 1 {
		t.Fatalf("%d audio blocks, %d tracks with blocks; want %d, 1", len(got), len(blocks), n)
	}
	for i, b := range got {
		if b.ms != int64(i)*20 || !b.key || binary.BigEndian.Uint16(b.data) != uint16(i) {
			t.Fatalf("block %d: %d ms, key %v, packet %d", i, b.ms, b.key, binary.BigEndian.Uint16(b.data))
		}
	}
	if doc.Segment.Info.Duration != (n-1)*20 || doc.Segment.Cues == nil || len(doc.Segment.Cues.CuePoint) == 0 {
		t.Fatalf("not finished: duration %v, cues %+v", doc.Segment.Info.Duration, doc.Segment.Cues)
	}
}

// The RTP timestamp wraps past 2^32 mid-recording: the blocks go on 20ms
// apart instead of jumping back (or a day ahead).
func TestRecordingTimestampWrap(t *testing.T) {
	r, _ := openTestRecording(t, false, maxRecordedBytes)
	a := r.track(codecOpus)
	start := uint32(1<<32 - 10*960)
	for i := range 30 {
		a.write(opus(t, uint16(65530+i), start+uint32(i)*960, 80))
	}
	a.release()
	if err := r.close(); err != nil {
		t.Fatal(err)
	}
	_, blocks := readWebM(t, r.path)
	got := blocks[trackAudio]
	if len(got) != 30 {
		t.Fatalf("%d blocks", len(got))
	}
	for i, b := range got {
		if b.ms != int64(i)*20 {
			t.Fatalf("block %d at %d ms, want %d", i, b.ms, i*20)
		}
	}
}

// A video call's recording: Opus and VP8 tracks in one file. The video
// starts with an interframe, which is dropped: the first video block is
// the keyframe, whose size replaces the header's placeholder. The video
// track's first packet arrived 500ms after the audio's, and its blocks
// sit there on the audio's timeline, across its RTP timestamp's wrap.
func TestRecordingVideoSync(t *testing.T) {
	r, clk := openTestRecording(t, true, maxRecordedBytes)
	a, v := r.track(codecOpus), r.track(codecVP8)
	if a == nil || v == nil {
		t.Fatal("tracks not recorded")
	}
	start := clk.at
	var vseq uint16 = 65000
	vts := uint32(1<<32 - 20*3600) // wraps 20 frames in
	frames := 0
	for ms := 0; ms < 3000; ms += 20 {
		clk.at = start.Add(time.Duration(ms) * time.Millisecond)
		if !a.write(opus(t, uint16(ms/20), uint32(ms*48), 60)) {
			t.Fatal("audio refused")
		}
		if ms >= 500 && (ms-500)%40 == 0 {
			key := frames == 1 || frames == 40 // the first frame is an interframe
			for _, p := range vp8Frame(t, &vseq, vts+uint32(frames)*3600, key, 1200, 320, 240) {
				if !v.write(p) {
					t.Fatal("video refused")
				}
			}
			frames++
		}
	}
	a.release()
	v.release()
	if err := r.close(); err != nil {
		t.Fatal(err)
	}

	doc, blocks := readWebM(t, r.path)
	if len(doc.Segment.Tracks.TrackEntry) != 2 {
		t.Fatalf("tracks %+v", doc.Segment.Tracks.TrackEntry)
	}
	if tr := trackOf(t, doc, trackVideo); tr.CodecID != "V_VP8" || tr.Video == nil || tr.Video.PixelWidth != 320 || tr.Video.PixelHeight != 240 {
		t.Fatalf("video track %+v %+v", tr, tr.Video)
	}
	if tr := trackOf(t, doc, trackAudio); tr.CodecID != "A_OPUS" {
		t.Fatalf("audio track %+v", tr)
	}
	au, vi := blocks[trackAudio], blocks[trackVideo]
	if len(au) != 150 || len(vi) != frames-1 {
		t.Fatalf("%d audio blocks, %d video blocks; want 150, %d", len(au), len(vi), frames-1)
	}
	if !vi[0].key || vi[0].ms != 540 || au[0].ms != 0 {
		t.Fatalf("first video block key %v at %d ms, first audio at %d ms; want a keyframe at 540, 0", vi[0].key, vi[0].ms, au[0].ms)
	}
	for i, b := range vi {
		if b.ms != 540+int64(i)*40 {
			t.Fatalf("video block %d at %d ms, want %d", i, b.ms, 540+i*40)
		}
		if b.key != (i == 0 || i == 39) {
			t.Fatalf("video block %d keyframe %v", i, b.key)
		}
	}
	if last := vi[len(vi)-1].ms - au[len(au)-1].ms; last < -40 || last > 40 {
		t.Fatalf("video ends %d ms from the audio", last)
	}
}

// TestRecordingSenderReportSync: the caller's video takes 120 ms longer
// than its audio from capture to the relay (encoding, a bigger frame), so
// arrival alone records the video 120 ms late. The sender reports, on the
// sender's one clock, move the audio onto it: from the second report on,
// audio and video captured together are written at the same time.
func TestRecordingSenderReportSync(t *testing.T) {
	r, clk := openTestRecording(t, true, maxRecordedBytes)
	a, v := r.track(codecOpus), r.track(codecVP8)
	start := clk.at
	const (
		audioDelay, videoDelay = 30, 150                  // ms from capture to arrival
		a0, v0                 = uint32(5000), uint32(7)  // the streams' first RTP times
		epoch                  = int64(3_900_000_000_000) // the sender's clock at capture 0, in ms
	)
	ntp := func(ms int64) uint64 { return uint64(ms/1000)<<32 | uint64(ms%1000)<<32/1000 }
	var vseq uint16
	frames := 0
	videoAt := map[int64]int{} // capture ms -> video frame number
	for at := 0; at <= 4000; at += 10 {
		clk.at = start.Add(time.Duration(at) * time.Millisecond)
		if c := at - audioDelay; c >= 0 && c%20 == 0 {
			a.write(opus(t, uint16(c/20), a0+uint32(c*48), 60))
		}
		if c := at - videoDelay; c >= 0 && c%40 == 0 {
			for _, p := range vp8Frame(t, &vseq, v0+uint32(c*90), frames == 0 || frames == 50, 1200, 320, 240) {
				v.write(p)
			}
			videoAt[int64(c)] = frames
			frames++
		}
		switch at {
		case 1200: // the video's report: capture 1000 is its RTP time v0+90000
			v.senderReport(ntp(epoch+1000), v0+1000*90)
		case 2000: // the audio's
			a.senderReport(ntp(epoch+1800), a0+1800*48)
		}
	}
	a.release()
	v.release()
	if err := r.close(); err != nil {
		t.Fatal(err)
	}
	_, blocks := readWebM(t, r.path)
	au, vi := blocks[trackAudio], blocks[trackVideo]
	if len(au) == 0 || len(vi) != frames {
		t.Fatalf("%d audio blocks, %d video blocks; want some, %d", len(au), len(vi), frames)
	}
	// Times count from the first block, the audio captured at 0. The
	// video, reported first, keeps its arrival timeline: captured at c,
	// written at c+120 ms.
	for i, b := range vi {
		if want := int64(i)*40 + videoDelay - audioDelay; b.ms != want {
			t.Fatalf("video block %d at %d ms, want %d", i, b.ms, want)
		}
	}
	// Before the audio's report, audio captured at c is written at c;
	// after it, at c+120 ms, with the video captured then.
	if au[0].ms != 0 || au[50].ms != 1000 {
		t.Fatalf("audio blocks 0 and 50 at %d and %d ms, want 0 and 1000 (arrival time, before the report)", au[0].ms, au[50].ms)
	}
	last := au[len(au)-1]
	capture := int64(binary.BigEndian.Uint16(last.data)) * 20 // opus marks its sequence number, one per 20 ms
	if want := capture + videoDelay - audioDelay; last.ms != want {
		t.Fatalf("last audio block (captured at %d ms) at %d ms, want %d with the video captured then", capture, last.ms, want)
	}
}

// Past its size bound a recording stops and its file is finished with
// what fit; the party's other track stops with it.
func TestRecordingSizeBound(t *testing.T) {
	r, _ := openTestRecording(t, true, 10_000)
	a, v := r.track(codecOpus), r.track(codecVP8)
	var vseq uint16
	for _, p := range vp8Frame(t, &vseq, 0, true, 600, 320, 240) {
		v.write(p)
	}
	// The keyframe is written once the next frame's first packet shows
	// it complete, so the bound is all audio's: 10 packets of 1000 bytes.
	n := 0
	for ; n < 100 && a.write(opus(t, uint16(n), uint32(n)*960, 1000)); n++ {
	}
	if n != 10 {
		t.Fatalf("audio stopped after %d packets of 1000 bytes, want 10 under a 10,000 byte bound", n)
	}
	stopped := false
	for i := 1; i < 5 && !stopped; i++ {
		for _, p := range vp8Frame(t, &vseq, uint32(i)*3000, false, 600, 0, 0) {
			if !v.write(p) {
				stopped = true
			}
		}
	}
	if !stopped {
		t.Fatal("video went on past the bound")
	}
	// Finished at the bound, before close.
	doc, blocks := readWebM(t, r.path)
	if len(blocks[trackAudio]) != n || doc.Segment.Info.Duration == 0 {
		t.Fatalf("%d audio blocks (want %d), duration %v", len(blocks[trackAudio]), n, doc.Segment.Info.Duration)
	}
	if err := r.close(); err != nil {
		t.Fatal(err)
	}
}

// A gateway killed mid-call leaves a file that reads up to its last
// complete cluster (5s each), with no duration; closed, the file has all.
func TestRecordingCutOff(t *testing.T) {
	r, _ := openTestRecording(t, false, maxRecordedBytes)
	a := r.track(codecOpus)
	for i := range 601 { // 0 to 12s
		a.write(opus(t, uint16(i), uint32(i)*960, 80))
	}
	// The block at 12s went through the muxer only once the one at
	// 10s had started a cluster, which wrote out the two before it.
	raw, err := os.ReadFile(r.path)
	if err != nil {
		t.Fatal(err)
	}
	doc, blocks := parseWebM(t, raw)
	got := blocks[trackAudio]
	if len(got) != 500 || got[len(got)-1].ms != 9980 || doc.Segment.Info.Duration != 0 {
		t.Fatalf("cut off: %d blocks, duration %v", len(got), doc.Segment.Info.Duration)
	}
	if err := r.close(); err != nil {
		t.Fatal(err)
	}
	doc, blocks = readWebM(t, r.path)
	if len(blocks[trackAudio]) != 601 || doc.Segment.Info.Duration != 12000 {
		t.Fatalf("closed: %d blocks, duration %v", len(blocks[trackAudio]), doc.Segment.Info.Duration)
	}
}

// A disk that refuses every write (Linux's /dev/full) ends the recording
// after maxRecordErrors tries; the recording's end reports the error.
func TestRecordingDiskFull(t *testing.T) {
	full, err := os.OpenFile("/dev/full", os.O_WRONLY, 0)
	if err != nil {
		t.Skip("no /dev/full:", err)
	}
	r, _ := openTestRecording(t, false, maxRecordedBytes)
	header := r.file.f
	defer header.Close()
	r.file.f = full
	a := r.track(codecOpus)
	n := 0
	for ; n < 20_000 && a.write(opus(t, uint16(n), uint32(n)*960, 200)); n++ {
	}
	if n == 20_000 {
		t.Fatal("recording went on writing to a full disk")
	}
	if err := r.close(); err == nil {
		t.Fatal("no error from a recording the disk refused")
	}
}

// A party recorded again in the same call (its media came back to this
// node) gets a new file: an existing one is never overwritten.
func TestRecordingNeverOverwrites(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "call_y")
	var paths []string
	for range 2 {
		r, err := openRecording(dir, "agent", false, maxRecordedBytes, slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		paths = append(paths, filepath.Base(r.path))
		if err := r.close(); err != nil {
			t.Fatal(err)
		}
	}
	if paths[0] != "agent.webm" || paths[1] != "agent-2.webm" {
		t.Fatalf("files %v", paths)
	}
}
