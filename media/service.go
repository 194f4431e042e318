package media

import (
	"context"
	"log/slog"
	"time"

	"github.com/switchboard/switchboard/state"
	"github.com/switchboard/switchboard/ticket"
)

// Service is the media domain: photos, their blobs and tus uploads.
type Service struct {
	st      state.Store
	blobs   Blobs
	tickets *ticket.Service
	cfg     Config
	log     *slog.Logger
	// slots bounds concurrent decoding (Config.Workers).
	slots chan struct{}
	now   func() time.Time
	key   urlKey
}

// Option tunes a Service.
type Option func(*Service)

// WithLogger sets the logger; the default discards.
func WithLogger(l *slog.Logger) Option {
	return func(s *Service) { s.log = l.With("component", "media") }
}

// New returns a Service storing bytes in blobs and records on st.
// cfg must have passed Validate.
func New(st state.Store, blobs Blobs, tickets *ticket.Service, cfg Config, opts ...Option) *Service {
	cfg = cfg.withDefaults()
	s := &Service{st: st, blobs: blobs, tickets: tickets, cfg: cfg,
		log: slog.New(slog.DiscardHandler), slots: make(chan struct{}, cfg.Workers), now: time.Now}
	for _, o := range opts {
		o(s)
	}
	return s
}

// Limits returns the effective limits, for the gateway's early checks
// and the tus Tus-Max-Size header.
func (s *Service) Limits() Config { return s.cfg }

// sweepEvery is how often Run looks for abandoned bytes: they cost only
// disk, so hourly is plenty.
const sweepEvery = time.Hour

// sweeper is implemented by blob stores that can find stale files (Disk).
type sweeper interface {
	Sweep(olderThan time.Duration, prefixes ...string) (int, error)
}

// Run removes what crashed writes and abandoned uploads left behind,
// until ctx ends. Upload records expire on the state seam after
// UploadTTL; their bytes go an hour later.
func (s *Service) Run(ctx context.Context) error {
	sw, ok := s.blobs.(sweeper)
	if !ok {
		<-ctx.Done()
		return nil
	}
	t := time.NewTicker(sweepEvery)
	defer t.Stop()
	for {
		n, err := sw.Sweep(s.cfg.UploadTTL+time.Hour, keyUploadPrefix, keySpoolPrefix)
		if err != nil {
			s.log.Warn("sweep failed", "err", err)
		} else if n > 0 {
			s.log.Info("swept abandoned upload files", "files", n)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// Blob keys and state keys. Blob keys hold hex digests and random IDs
// only.
const (
	keyPhotoPrefix  = "photo/"
	keyThumbPrefix  = "thumb/"
	keyUploadPrefix = "upload/"
	keySpoolPrefix  = "spool/"
)

func stPhoto(id string) string          { return "media:photo:" + id }
func stBlob(sum string) string          { return "media:blob:" + sum }
func stDup(ticketID, sum string) string { return "media:dup:" + ticketID + ":" + sum }
func stUpload(id string) string         { return "media:upload:" + id }
func stUploadLock(id string) string     { return "media:upload-lock:" + id }
func blobKey(prefix, sum string) string { return prefix + sum[:2] + "/" + sum }
func spoolKey(id string) string         { return keySpoolPrefix + id }
func uploadKey(id string) string        { return keyUploadPrefix + id }
