package media

import (
	"errors"
	"runtime"
	"time"
)

// Config holds the media settings. Every zero value means the default
// stated beside the field.
type Config struct {
	// MaxBytes is the largest photo upload in bytes. Zero means 20 MB: a
	// 48-megapixel phone JPEG at high quality is 12 to 15 MB.
	MaxBytes int64
	// MaxPixels is the largest width×height accepted, checked from the
	// header before decoding. Zero means 40 megapixels: above the 24 and
	// 48 MP phone sensors' default 12 MP output, below what decodes to more
	// than about 160 MB.
	MaxPixels int64
	// ThumbSize is the thumbnail's long side in pixels. Zero means 320:
	// a console timeline tile at 2× density.
	ThumbSize int
	// Workers is how many photos are decoded at once; uploads beyond it
	// wait with their bytes on disk, which bounds memory. Zero means
	// GOMAXPROCS: decoding is CPU-bound.
	Workers int
	// UploadTTL is how long an unfinished tus upload may be resumed. Zero
	// means 24h: a phone on a train reconnects well within a day.
	UploadTTL time.Duration
	// URLTTL is the lifetime of a signed photo URL. Zero means 5m: long
	// enough for a console to load the page's images, short enough that a
	// leaked URL soon stops working.
	URLTTL time.Duration
}

func (c Config) withDefaults() Config {
	if c.MaxBytes == 0 {
		c.MaxBytes = 20 << 20
	}
	if c.MaxPixels == 0 {
		c.MaxPixels = 40_000_000
	}
	if c.ThumbSize == 0 {
		c.ThumbSize = 320
	}
	if c.Workers == 0 {
		c.Workers = runtime.GOMAXPROCS(0)
	}
	if c.UploadTTL == 0 {
		c.UploadTTL = 24 * time.Hour
	}
	if c.URLTTL == 0 {
		c.URLTTL = 5 * time.Minute
	}
	return c
}

// Validate reports the first setting that cannot work.
func (c Config) Validate() error {
	switch {
	case c.MaxBytes < 0 || c.MaxPixels < 0 || c.ThumbSize < 0 || c.Workers < 0:
		return errors.New("limits must not be negative")
	case c.ThumbSize > 0 && (c.ThumbSize < 16 || c.ThumbSize > 2048):
		return errors.New("thumbnail size must be between 16 and 2048 pixels")
	case c.UploadTTL < 0 || c.URLTTL < 0:
		return errors.New("lifetimes must not be negative")
	case c.URLTTL > time.Hour:
		return errors.New("signed URLs must not live longer than 1h")
	}
	return nil
}
