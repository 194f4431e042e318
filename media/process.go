package media

import (
	"bytes"
	"errors"
	"fmt"
	"image"
	"image/jpeg"
	"image/png"

	"golang.org/x/image/webp"
)

// Limits bound what Process accepts.
type Limits struct {
	// MaxPixels is the largest width×height a header may declare; larger
	// is ErrTooManyPixels, refused before decoding (a 40-megapixel image
	// decodes to 60 MB as YCbCr, 160 MB as RGBA).
	MaxPixels int64
	// ThumbSize is the thumbnail's long side in pixels.
	ThumbSize int
}

// Quality of the JPEGs this package encodes: 90 for a photo it had to
// re-encode (rotated; visually lossless), 80 for thumbnails (libjpeg's
// and ImageMagick's usual defaults sit in between).
const (
	qualityFull  = 90
	qualityThumb = 80
)

// Processed is a photo ready to store.
type Processed struct {
	// Format is what Full holds.
	Format Format
	// Full is the photo with its metadata stripped and its orientation
	// applied.
	Full []byte
	// Thumb is a JPEG of at most ThumbSize on the long side; nil for HEIC.
	Thumb         []byte
	Width, Height int
}

// Process validates b by its content and makes it safe to serve. For JPEG,
// PNG and WebP every byte of image data is decoded (a truncated or damaged
// file is ErrCorrupt), metadata is stripped losslessly when the image
// needs no turning, and the thumbnail is made from the decoded pixels.
// The header's size is checked against MaxPixels before any decoding.
func Process(b []byte, lim Limits) (*Processed, error) {
	f, err := Sniff(b[:min(len(b), sniffLen)])
	if err != nil {
		return nil, err
	}
	if f == HEIC {
		w, h, meta, err := heicInfo(b)
		if err != nil {
			return nil, err
		}
		if err := checkPixels(w, h, lim); err != nil {
			return nil, err
		}
		return &Processed{Format: HEIC, Full: stripHEIC(b, meta), Width: w, Height: h}, nil
	}

	var cfg image.Config
	switch f {
	case JPEG:
		cfg, err = jpeg.DecodeConfig(bytes.NewReader(b))
	case PNG:
		cfg, err = png.DecodeConfig(bytes.NewReader(b))
	case WebP:
		cfg, err = webp.DecodeConfig(bytes.NewReader(b))
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %s header: %v", ErrCorrupt, f, err)
	}
	if err := checkPixels(cfg.Width, cfg.Height, lim); err != nil {
		return nil, err
	}

	var stripped []byte
	orientation := 1
	var img image.Image
	switch f {
	case JPEG:
		if stripped, orientation, err = stripJPEG(b); err == nil {
			img, err = jpeg.Decode(bytes.NewReader(stripped))
		}
	case PNG:
		if stripped, err = stripPNG(b); err == nil {
			img, err = png.Decode(bytes.NewReader(stripped))
		}
	case WebP:
		if stripped, err = stripWebP(b); err == nil {
			img, err = webp.Decode(bytes.NewReader(stripped))
		}
	}
	if err != nil {
		if isDomain(err) {
			return nil, err
		}
		return nil, fmt.Errorf("%w: %v", ErrCorrupt, err)
	}

	p := &Processed{Format: f, Full: stripped}
	b0 := img.Bounds()
	p.Width, p.Height = orientedSize(b0.Dx(), b0.Dy(), orientation)
	if orientation > 1 {
		// Turning the pixels means re-encoding; only JPEG carries the
		// orientation tag in practice, and a JPEG it stays.
		var buf bytes.Buffer
		buf.Grow(len(b))
		if err := jpeg.Encode(&buf, orient(img, orientation), &jpeg.Options{Quality: qualityFull}); err != nil {
			return nil, err
		}
		p.Full, p.Format = buf.Bytes(), JPEG
	}
	// Shrink first, then turn the small image: the same result for a
	// fraction of the work.
	tw, th := thumbSize(b0.Dx(), b0.Dy(), lim.ThumbSize)
	var tb bytes.Buffer
	if err := jpeg.Encode(&tb, orient(shrink(img, tw, th), orientation), &jpeg.Options{Quality: qualityThumb}); err != nil {
		return nil, err
	}
	p.Thumb = tb.Bytes()
	return p, nil
}

func checkPixels(w, h int, lim Limits) error {
	if w <= 0 || h <= 0 {
		return fmt.Errorf("%w: the image has no size", ErrCorrupt)
	}
	if int64(w)*int64(h) > lim.MaxPixels {
		return fmt.Errorf("%w: %d×%d is more than %d pixels", ErrTooManyPixels, w, h, lim.MaxPixels)
	}
	return nil
}

// isDomain reports whether err is already one of this package's errors.
func isDomain(err error) bool {
	for _, e := range []error{ErrCorrupt, ErrUnsupported, ErrTooManyPixels, ErrEmpty} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// encodeJPEG is jpeg.Encode at a quality; tests and benchmarks use it.
func encodeJPEG(w *bytes.Buffer, img image.Image, q int) error {
	return jpeg.Encode(w, img, &jpeg.Options{Quality: q})
}
