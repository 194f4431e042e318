package main

import (
	"log/slog"
	"path/filepath"
	"time"

	"github.com/switchboard/switchboard/media"
	"github.com/switchboard/switchboard/state"
	"github.com/switchboard/switchboard/ticket"
)

// mediaConfig holds the photo settings of `switchboard serve`.
type mediaConfig struct {
	Dir       string
	MaxBytes  int
	MaxPixels int
	ThumbSize int
	Workers   int
	UploadTTL time.Duration
	URLTTL    time.Duration
}

func registerMedia(s *settings, c *mediaConfig) {
	s.str(&c.Dir, "media-dir", "", "photo blob directory; empty means DATA/media (local disk: see README for several nodes)")
	s.num(&c.MaxBytes, "photo-max-bytes", 20<<20, "largest photo upload in bytes")
	s.num(&c.MaxPixels, "photo-max-pixels", 40_000_000, "largest photo width×height, checked before decoding")
	s.num(&c.ThumbSize, "thumb-size", 320, "thumbnail long side in pixels")
	s.num(&c.Workers, "photo-workers", 0, "photos decoded at once (0: one per CPU)")
	s.dur(&c.UploadTTL, "upload-ttl", 24*time.Hour, "how long an unfinished resumable upload may be resumed")
	s.dur(&c.URLTTL, "photo-url-ttl", 5*time.Minute, "lifetime of signed photo URLs (at most 1h)")
}

func (c mediaConfig) config() media.Config {
	return media.Config{MaxBytes: int64(c.MaxBytes), MaxPixels: int64(c.MaxPixels), ThumbSize: c.ThumbSize,
		Workers: c.Workers, UploadTTL: c.UploadTTL, URLTTL: c.URLTTL}
}

// validate names the first bad photo setting and why.
func (c mediaConfig) validate() (name, why string) {
	switch {
	case c.MaxBytes <= 0:
		return "photo-max-bytes", "must be positive"
	case c.MaxPixels <= 0:
		return "photo-max-pixels", "must be positive"
	case c.ThumbSize < 16 || c.ThumbSize > 2048:
		return "thumb-size", "must be between 16 and 2048"
	case c.Workers < 0:
		return "photo-workers", "must not be negative"
	case c.UploadTTL <= 0:
		return "upload-ttl", "must be positive"
	case c.URLTTL <= 0 || c.URLTTL > time.Hour:
		return "photo-url-ttl", "must be positive and at most 1h"
	}
	return "", ""
}

// newMedia opens the blob directory and the photo service.
func newMedia(c mediaConfig, data string, st state.Store, tickets *ticket.Service, log *slog.Logger) (*media.Service, error) {
	dir := c.Dir
	if dir == "" {
		dir = filepath.Join(data, "media")
	}
	disk, err := media.NewDisk(dir)
	if err != nil {
		return nil, err
	}
	return media.New(st, disk, tickets, c.config(), media.WithLogger(log)), nil
}
