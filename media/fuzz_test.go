package media

import (
	"bytes"
	"errors"
	"testing"

	"github.com/switchboard/switchboard/media/mediatest"
)

// fuzzLimits keep each fuzz input's decode small: the pixel check runs
// before decoding, so hostile headers are refused cheaply.
var fuzzLimits = Limits{MaxPixels: 1 << 20, ThumbSize: 64}

// FuzzProcess feeds arbitrary bytes through the whole pipeline: sniffing,
// the JPEG segment walker, the PNG and WebP chunk walkers, the HEIC box
// walker and the decoders. It must never panic, must answer only with
// this package's errors, and what it keeps must hold no GPS marker.
func FuzzProcess(f *testing.F) {
	for _, seed := range [][]byte{
		mediatest.JPEG(24, 16, 6, true), mediatest.JPEG(8, 8, 0, false), mediatest.PNG(9, 7),
		mediatest.WebP(), mediatest.HEIC(64, 48), mediatest.PNGHeader(1<<20, 1<<20), []byte("<html>"),
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := Process(b, fuzzLimits)
		if err != nil {
			if !isDomain(err) && !errors.Is(err, ErrUnsupported) {
				t.Fatalf("unexpected error kind: %v", err)
			}
			return
		}
		if len(p.Full) == 0 || (p.Format != HEIC) != (p.Thumb != nil) || p.Width <= 0 || p.Height <= 0 {
			t.Fatalf("accepted but incomplete: %s %dx%d", p.Format, p.Width, p.Height)
		}
	})
}

// FuzzExifOrientation: any TIFF bytes give an orientation in 1..8.
func FuzzExifOrientation(f *testing.F) {
	j := mediatest.JPEG(8, 8, 6, true)
	f.Add(j[12:])
	f.Add([]byte("II*\x00\x08\x00\x00\x00\xff\xff"))
	f.Fuzz(func(t *testing.T, b []byte) {
		if o := exifOrientation(b); o < 1 || o > 8 {
			t.Fatalf("orientation %d", o)
		}
	})
}

// FuzzParseMetadata: the tus Upload-Metadata parser never panics and
// honours its bounds.
func FuzzParseMetadata(f *testing.F) {
	f.Add("ticket_id dGtfMQ==,filename SU1HLmpwZw==")
	f.Add("a,b,c")
	f.Add("k !!!")
	f.Fuzz(func(t *testing.T, h string) {
		m, err := ParseMetadata(h)
		if err == nil && len(m) > maxMetadataPairs {
			t.Fatalf("%d pairs", len(m))
		}
	})
}

// FuzzParseChecksum: Upload-Checksum parsing never panics.
func FuzzParseChecksum(f *testing.F) {
	f.Add("sha1 Kq5sNclPz7QV2+lfQIuc6R7oRu0=")
	f.Add("md5 ")
	f.Fuzz(func(t *testing.T, h string) {
		if c, err := ParseChecksum(h); err == nil && len(c.sum) != c.hash.Size() {
			t.Fatal("digest size")
		}
	})
}

// FuzzCleanFilename: a cleaned name is never a path.
func FuzzCleanFilename(f *testing.F) {
	f.Add("../../etc/passwd")
	f.Add("a\x00b\\c")
	f.Fuzz(func(t *testing.T, name string) {
		c := CleanFilename(name)
		if len(c) > maxFilename || c == ".." || bytes.ContainsAny([]byte(c), "/\\\x00") {
			t.Fatalf("CleanFilename(%q) = %q", name, c)
		}
	})
}
