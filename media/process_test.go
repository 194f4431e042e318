package media

import (
	"bytes"
	"errors"
	"image"
	"image/jpeg"
	"strings"
	"testing"

	"github.com/switchboard/switchboard/media/mediatest"
)

var testLimits = Limits{MaxPixels: 40_000_000, ThumbSize: 320}

// noMetadata fails if b still holds anything identifying.
func noMetadata(t *testing.T, what string, b []byte) {
	t.Helper()
	for _, bad := range []string{mediatest.GPSMarker, "Exif\x00", "GPS"} {
		if bytes.Contains(b, []byte(bad)) {
			t.Fatalf("%s still contains %q", what, bad)
		}
	}
}

func decodeJPEG(t *testing.T, b []byte) image.Image {
	t.Helper()
	img, err := jpeg.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func dark(img image.Image, x, y int) bool {
	r, g, b, _ := img.At(x, y).RGBA()
	return r < 0x3000 && g < 0x3000 && b < 0x3000
}

func TestProcessStripsGPSAndAppliesOrientation(t *testing.T) {
	in := mediatest.JPEG(400, 200, 6, true)
	if !bytes.Contains(in, []byte(mediatest.GPSMarker)) {
		t.Fatal("fixture has no GPS marker")
	}
	p, err := Process(in, testLimits)
	if err != nil {
		t.Fatal(err)
	}
	noMetadata(t, "photo", p.Full)
	noMetadata(t, "thumbnail", p.Thumb)
	if p.Format != JPEG || p.Width != 200 || p.Height != 400 {
		t.Fatalf("format %s %dx%d, want image/jpeg 200x400 (turned)", p.Format, p.Width, p.Height)
	}
	img := decodeJPEG(t, p.Full)
	if b := img.Bounds(); b.Dx() != 200 || b.Dy() != 400 {
		t.Fatalf("stored %v", b)
	}
	// Stored top-left dark; orientation 6 turns it clockwise: top-right.
	if !dark(img, 190, 10) || dark(img, 10, 10) {
		t.Fatal("orientation 6 not applied to the photo")
	}
	th := decodeJPEG(t, p.Thumb)
	if b := th.Bounds(); b.Dx() != 160 || b.Dy() != 320 {
		t.Fatalf("thumbnail %v, want 160x320", b)
	}
	if !dark(th, 150, 10) || dark(th, 10, 10) {
		t.Fatal("orientation 6 not applied to the thumbnail")
	}
}

func TestProcessLosslessStripKeepsImageData(t *testing.T) {
	in := mediatest.JPEG(640, 480, 1, true)
	p, err := Process(in, testLimits)
	if err != nil {
		t.Fatal(err)
	}
	noMetadata(t, "photo", p.Full)
	// Orientation 1 needs no turning: the scan data is copied as is.
	plain := mediatest.JPEG(640, 480, 0, false)
	if !bytes.Equal(p.Full, plain) {
		t.Fatalf("stripped %d bytes, want the plain encoding's %d", len(p.Full), len(plain))
	}
	if b := decodeJPEG(t, p.Thumb).Bounds(); b.Dx() != 320 || b.Dy() != 240 {
		t.Fatalf("thumbnail %v", b)
	}
}

func TestProcessOtherFormats(t *testing.T) {
	for _, tc := range []struct {
		name   string
		in     []byte
		format Format
		w, h   int
		thumb  bool
	}{
		{"png", mediatest.PNG(300, 100), PNG, 300, 100, true},
		{"webp", mediatest.WebP(), WebP, 1, 1, true},
		{"heic", mediatest.HEIC(4032, 3024), HEIC, 4032, 3024, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if !bytes.Contains(tc.in, []byte(mediatest.GPSMarker)) {
				t.Fatal("fixture has no marker")
			}
			p, err := Process(tc.in, testLimits)
			if err != nil {
				t.Fatal(err)
			}
			if tc.format == HEIC {
				// The item table still names an (emptied) Exif item.
				if bytes.Contains(p.Full, []byte(mediatest.GPSMarker)) {
					t.Fatal("HEIC still holds the GPS marker")
				}
			} else {
				noMetadata(t, tc.name, p.Full)
			}
			if p.Format != tc.format || p.Width != tc.w || p.Height != tc.h || (p.Thumb != nil) != tc.thumb {
				t.Fatalf("got %s %dx%d thumb=%v", p.Format, p.Width, p.Height, p.Thumb != nil)
			}
			if tc.thumb {
				decodeJPEG(t, p.Thumb)
			}
			if tc.format != HEIC {
				if _, _, err := image.Decode(bytes.NewReader(p.Full)); err != nil {
					t.Fatalf("stripped %s does not decode: %v", tc.name, err)
				}
			}
		})
	}
}

func TestProcessRefusesBadInput(t *testing.T) {
	jpg := mediatest.JPEG(64, 64, 0, false)
	for _, tc := range []struct {
		name string
		in   []byte
		want error
	}{
		{"empty", nil, ErrEmpty},
		{"html renamed .jpg", []byte("<!doctype html><html><script>alert(1)</script></html>"), ErrUnsupported},
		{"svg renamed .jpg", []byte(`<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>`), ErrUnsupported},
		{"gif", []byte("GIF89a\x01\x00\x01\x00\x00\x00\x00;"), ErrUnsupported},
		{"truncated jpeg", jpg[:len(jpg)/2], ErrCorrupt},
		{"jpeg header only", jpg[:4], ErrCorrupt},
		{"png pixel bomb", mediatest.PNGHeader(100_000, 100_000), ErrTooManyPixels},
		{"heic pixel bomb", mediatest.HEIC(50_000, 50_000), ErrTooManyPixels},
		{"avif", append([]byte("\x00\x00\x00\x18ftypavif\x00\x00\x00\x00mif1"), make([]byte, 8)...), ErrUnsupported},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Process(tc.in, testLimits)
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
		})
	}
}

func TestCleanFilename(t *testing.T) {
	for in, want := range map[string]string{
		"../../etc/passwd":       "passwd",
		"a\x00b.jpg":             "ab.jpg",
		`C:\Users\joe\photo.jpg`: "photo.jpg",
		"..":                     "",
		"ok name.heic":           "ok name.heic",
		strings.Repeat("é", 300): strings.Repeat("é", 127),
	} {
		if got := CleanFilename(in); got != want {
			t.Errorf("CleanFilename(%q) = %q, want %q", in, got, want)
		}
	}
}
