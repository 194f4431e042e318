package rtc

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
	"github.com/pion/webrtc/v4/pkg/media/ivfwriter"
	"github.com/pion/webrtc/v4/pkg/media/oggwriter"
)

// maxRecordedBytes bounds one recorded track: 1 GiB is over four hours of
// 500 kbit/s video, longer than any support call; past it the track stops
// recording (the call goes on) rather than fill the disk.
const maxRecordedBytes = 1 << 30

// mediaWriter is pion's oggwriter and ivfwriter.
type mediaWriter interface {
	WriteRTP(*rtp.Packet) error
	Close() error
}

// trackRecorder writes one party's incoming track to a file: Opus to Ogg,
// VP8 to IVF, the payloads as they arrived (no transcoding). It is used
// only by the track's forward goroutine.
type trackRecorder struct {
	w    mediaWriter
	path string
	left int
	errs int
	pkt  rtp.Packet
}

// recorder opens the recording of p's track t when the call is recorded:
// the caller consented and the node has a RecordDir. Files go to
// RecordDir/<call id>/<role>-<kind>-<ssrc>.{ogg,ivf}; the call's directory
// is private to the gateway's user (recordings are personal data). nil
// means not recorded; a failure to open is logged and the call goes on.
func (rm *room) recorder(p *party, t *webrtc.TrackRemote) *trackRecorder {
	dir := rm.relay.cfg.RecordDir
	rm.mu.Lock()
	consented := rm.rec != nil && rm.rec.Recording
	rm.mu.Unlock()
	if dir == "" || !consented || p.role == roleListener {
		return nil
	}
	r, err := openRecorder(filepath.Join(dir, rm.id), roleName(p.role), t.Codec().RTPCodecCapability, uint32(t.SSRC()))
	if err != nil {
		rm.relay.svc.log.Error("recording not started", "call", rm.id, "err", err)
		return nil
	}
	return r
}

func openRecorder(dir, role string, c webrtc.RTPCodecCapability, ssrc uint32) (*trackRecorder, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	base := filepath.Join(dir, fmt.Sprintf("%s-%%s-%d", role, ssrc))
	var (
		w    mediaWriter
		path string
		err  error
	)
	switch {
	case strings.EqualFold(c.MimeType, webrtc.MimeTypeOpus):
		path = fmt.Sprintf(base, "audio") + ".ogg"
		channels := c.Channels
		if channels == 0 {
			channels = 2
		}
		w, err = oggwriter.New(path, c.ClockRate, channels)
	case strings.EqualFold(c.MimeType, webrtc.MimeTypeVP8):
		path = fmt.Sprintf(base, "video") + ".ivf"
		w, err = ivfwriter.New(path, ivfwriter.WithCodec(webrtc.MimeTypeVP8))
	default:
		return nil, fmt.Errorf("rtc: no recording for %s", c.MimeType)
	}
	if err != nil {
		return nil, err
	}
	return &trackRecorder{w: w, path: path, left: maxRecordedBytes}, nil
}

// maxRecordErrors bounds consecutive packets the writer refuses: one bad
// packet (a malformed VP8 descriptor) is skipped, but a writer that fails
// this many times in a row (a full disk) is closed.
const maxRecordErrors = 50

// write records one RTP packet as read from the track. It reports false
// once the recording has stopped (bounded size, or repeated errors).
func (r *trackRecorder) write(raw []byte) bool {
	if r.w == nil {
		return false
	}
	if err := r.pkt.Unmarshal(raw); err != nil {
		return true // not RTP: skip the packet, keep the recording
	}
	r.left -= len(r.pkt.Payload)
	if r.left < 0 {
		_ = r.close()
		return false
	}
	if err := r.w.WriteRTP(&r.pkt); err != nil {
		if r.errs++; r.errs >= maxRecordErrors {
			_ = r.close()
			return false
		}
		return true
	}
	r.errs = 0
	return true
}

// close finishes the file (Ogg end of stream, IVF frame count).
func (r *trackRecorder) close() error {
	if r.w == nil {
		return nil
	}
	err := r.w.Close()
	r.w = nil
	return err
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
