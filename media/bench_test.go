package media

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/switchboard/switchboard/media/mediatest"
)

// photo12MP is a 4000×3000 JPEG (a phone camera's default 12 MP) with
// Exif and GPS, and content that compresses like a photo: a gradient
// with noise.
func photo12MP(b *testing.B, orientation int) []byte {
	b.Helper()
	img := mediatest.Picture(4000, 3000)
	for i := 0; i < len(img.Pix); i += 97 {
		img.Pix[i] ^= 0x3F
	}
	var buf bytes.Buffer
	if err := encodeJPEG(&buf, img, 90); err != nil {
		b.Fatal(err)
	}
	return mediatest.WithExif(buf.Bytes(), orientation, true)
}

// BenchmarkProcess12MP measures the whole pipeline on one 12 MP JPEG:
// sniff, pixel check, strip, orient, decode, thumbnail; and, in the same
// run, ImageMagick's convert doing the same job (auto-orient, strip, write
// the photo, 320 px thumbnail) in one process per photo, single-threaded
// like ours. Install it with `apt-get install imagemagick`.
//
//	go test ./media -run XXX -bench Process12MP -benchtime 20x -cpu 1
func BenchmarkProcess12MP(b *testing.B) {
	for _, o := range []int{1, 6} {
		in := photo12MP(b, o)
		name := "upright"
		if o == 6 {
			name = "turned"
		}
		b.Run("go/"+name, func(b *testing.B) {
			b.SetBytes(int64(len(in)))
			start := time.Now()
			for b.Loop() {
				if _, err := Process(in, Limits{MaxPixels: 40_000_000, ThumbSize: 320}); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "photos/s")
		})
		b.Run("imagemagick/"+name, func(b *testing.B) {
			convert, err := exec.LookPath("convert")
			if err != nil || !isImageMagick(convert) {
				b.Skip("ImageMagick's convert is not installed (apt-get install imagemagick)")
			}
			dir := b.TempDir()
			src := filepath.Join(dir, "in.jpg")
			if err := os.WriteFile(src, in, 0o600); err != nil {
				b.Fatal(err)
			}
			b.SetBytes(int64(len(in)))
			start := time.Now()
			for b.Loop() {
				cmd := exec.Command(convert, src, "-auto-orient", "-strip", "-quality", "90", "-write", filepath.Join(dir, "full.jpg"),
					"-thumbnail", "320x320", "-quality", "80", filepath.Join(dir, "thumb.jpg"))
				cmd.Env = append(os.Environ(), "MAGICK_THREAD_LIMIT=1", "OMP_NUM_THREADS=1")
				if out, err := cmd.CombinedOutput(); err != nil {
					b.Fatalf("convert: %v: %s", err, out)
				}
			}
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "photos/s")
		})
	}
}

func isImageMagick(convert string) bool {
	out, _ := exec.Command(convert, "-version").Output()
	return bytes.Contains(out, []byte("ImageMagick"))
}
