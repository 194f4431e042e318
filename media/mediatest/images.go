// Package mediatest makes test images: JPEGs with Exif (orientation, GPS),
// PNGs with text chunks, a WebP, a minimal HEIC with an Exif item, and
// pixel bombs. Tests of media, gateway and mobile-sdk share it; it
// imports only the standard library.
package mediatest

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
)

// GPSMarker is a string carried inside the GPS tags of the images made
// here, so a test can prove it is gone from what is stored and served.
const GPSMarker = "GPS-51.5007N-0.1246W-JOES-HOUSE"

// Picture is a w×h test card: a gradient with a dark top-left quadrant,
// so a test can tell which way up a decoded image is.
func Picture(w, h int) *image.RGBA {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			c := color.RGBA{uint8(x * 255 / max(w, 1)), uint8(y * 255 / max(h, 1)), 200, 255}
			if x < w/2 && y < h/2 {
				c = color.RGBA{10, 10, 10, 255}
			}
			img.Set(x, y, c)
		}
	}
	return img
}

// JPEG encodes Picture(w, h); orientation > 0 adds an Exif APP1 with that
// Orientation, and gps adds a GPS IFD holding GPSMarker.
func JPEG(w, h, orientation int, gps bool) []byte {
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, Picture(w, h), &jpeg.Options{Quality: 85}); err != nil {
		panic(err)
	}
	if orientation == 0 && !gps {
		return buf.Bytes()
	}
	return WithExif(buf.Bytes(), orientation, gps)
}

// WithExif inserts after the SOI of jpg an Exif APP1 with orientation (0:
// none) and, if gps, a GPS IFD holding GPSMarker, plus a comment holding
// it too.
func WithExif(jpg []byte, orientation int, gps bool) []byte {
	app1 := append([]byte("Exif\x00\x00"), tiff(orientation, gps)...)
	seg := []byte{0xFF, 0xE1, 0, 0}
	binary.BigEndian.PutUint16(seg[2:], uint16(len(app1)+2))
	seg = append(seg, app1...)
	out := append([]byte{}, jpg[:2]...)
	out = append(out, seg...)
	out = append(out, []byte{0xFF, 0xFE, 0, byte(2 + len(GPSMarker))}...)
	out = append(out, GPSMarker...)
	return append(out, jpg[2:]...)
}

// tiff builds a big-endian Exif TIFF: IFD0 with Orientation and a GPS IFD
// pointer, and a GPS IFD whose GPSProcessingMethod holds GPSMarker.
func tiff(orientation int, gps bool) []byte {
	be := binary.BigEndian
	var t []byte
	t = append(t, 'M', 'M', 0, 42, 0, 0, 0, 8)
	var entries [][12]byte
	entry := func(tag, typ uint16, count, value uint32, short bool) [12]byte {
		var e [12]byte
		be.PutUint16(e[0:], tag)
		be.PutUint16(e[2:], typ)
		be.PutUint32(e[4:], count)
		if short {
			be.PutUint16(e[8:], uint16(value))
		} else {
			be.PutUint32(e[8:], value)
		}
		return e
	}
	if orientation > 0 {
		entries = append(entries, entry(0x0112, 3, 1, uint32(orientation), true))
	}
	ifd0Size := 2 + 12*(len(entries)+btoi(gps)) + 4
	gpsOff := 8 + ifd0Size
	if gps {
		entries = append(entries, entry(0x8825, 4, 1, uint32(gpsOff), false))
	}
	t = be.AppendUint16(t, uint16(len(entries)))
	for _, e := range entries {
		t = append(t, e[:]...)
	}
	t = append(t, 0, 0, 0, 0)
	if gps {
		dataOff := gpsOff + 2 + 12*2 + 4
		t = be.AppendUint16(t, 2)
		lat := entry(0x0001, 2, 2, 0, false) // GPSLatitudeRef "N"
		lat[8], lat[9] = 'N', 0
		t = append(t, lat[:]...)
		m := entry(0x001B, 7, uint32(len(GPSMarker)), uint32(dataOff), false)
		t = append(t, m[:]...)
		t = append(t, 0, 0, 0, 0)
		t = append(t, GPSMarker...)
	}
	return t
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// PNG encodes Picture(w, h) with a tEXt chunk holding GPSMarker.
func PNG(w, h int) []byte {
	var buf bytes.Buffer
	if err := png.Encode(&buf, Picture(w, h)); err != nil {
		panic(err)
	}
	b := buf.Bytes()
	// Insert tEXt after IHDR (8 signature + 25 IHDR chunk bytes).
	text := append([]byte("Comment\x00"), GPSMarker...)
	chunk := be32(uint32(len(text)))
	chunk = append(chunk, "tEXt"...)
	chunk = append(chunk, text...)
	chunk = append(chunk, be32(crc(append([]byte("tEXt"), text...)))...)
	out := append([]byte{}, b[:33]...)
	out = append(out, chunk...)
	return append(out, b[33:]...)
}

func be32(v uint32) []byte { return binary.BigEndian.AppendUint32(nil, v) }

func crc(b []byte) uint32 {
	c := ^uint32(0)
	for _, x := range b {
		c ^= uint32(x)
		for range 8 {
			if c&1 != 0 {
				c = c>>1 ^ 0xEDB88320
			} else {
				c >>= 1
			}
		}
	}
	return ^c
}

// WebP is a 1×1 lossless WebP (no encoder ships with Go) wrapped in a
// VP8X container with an EXIF chunk holding GPSMarker.
func WebP() []byte {
	simple, _ := base64.StdEncoding.DecodeString("UklGRhoAAABXRUJQVlA4TA0AAAAvAAAAEAcQERGIiP4HAA==")
	vp8l := simple[12:] // the VP8L chunk
	vp8x := []byte("VP8X")
	vp8x = binary.LittleEndian.AppendUint32(vp8x, 10)
	vp8x = append(vp8x, 0x08, 0, 0, 0, 0, 0, 0, 0, 0, 0) // EXIF flag; 1×1 (stored minus one)
	exif := append([]byte("MM\x00\x2a"), GPSMarker...)
	if len(exif)%2 == 1 {
		exif = append(exif, ' ')
	}
	ec := append([]byte("EXIF"), binary.LittleEndian.AppendUint32(nil, uint32(len(exif)))...)
	ec = append(ec, exif...)
	body := append(append(append([]byte("WEBP"), vp8x...), vp8l...), ec...)
	out := append([]byte("RIFF"), binary.LittleEndian.AppendUint32(nil, uint32(len(body)))...)
	return append(out, body...)
}

// PNGHeader is a valid PNG signature and IHDR declaring w×h, followed by
// nothing: a pixel bomb's header, which must be refused before decoding.
func PNGHeader(w, h uint32) []byte {
	out := []byte("\x89PNG\r\n\x1a\n")
	ihdr := append(be32(w), be32(h)...)
	ihdr = append(ihdr, 8, 6, 0, 0, 0)
	out = append(out, be32(13)...)
	out = append(out, "IHDR"...)
	out = append(out, ihdr...)
	out = append(out, be32(crc(append([]byte("IHDR"), ihdr...)))...)
	// An IDAT of zeros would inflate to w*h*4 bytes; never reached.
	return out
}

// HEIC is a minimal HEIF file: ftyp heic, a meta box with an ispe of w×h
// and an Exif item whose bytes (in mdat) hold GPSMarker. It has no image
// data: this package stores HEIC without decoding it.
func HEIC(w, h uint32) []byte {
	box := func(typ string, payload ...[]byte) []byte {
		var p []byte
		for _, x := range payload {
			p = append(p, x...)
		}
		return append(append(be32(uint32(8+len(p))), typ...), p...)
	}
	full := func(version byte) []byte { return []byte{version, 0, 0, 0} }
	ftyp := box("ftyp", []byte("heic"), be32(0), []byte("mif1heic"))
	hdlr := box("hdlr", full(0), be32(0), []byte("pict"), make([]byte, 12), []byte{0})
	infe := box("infe", full(2), []byte{0, 1}, []byte{0, 0}, []byte("Exif"), []byte{0})
	iinf := box("iinf", full(0), []byte{0, 1}, infe)
	ispe := box("ispe", full(0), be32(w), be32(h))
	iprp := box("iprp", box("ipco", ispe))
	exifData := append([]byte("\x00\x00\x00\x06Exif\x00\x00MM\x00\x2a"), GPSMarker...)
	// iloc v0: offset_size 4, length_size 4, base_offset_size 0.
	mkIloc := func(off uint32) []byte {
		return box("iloc", full(0), []byte{0x44, 0x00}, []byte{0, 1}, []byte{0, 1}, []byte{0, 0}, []byte{0, 1}, be32(off), be32(uint32(len(exifData))))
	}
	meta := func(off uint32) []byte { return box("meta", full(0), hdlr, iinf, mkIloc(off), iprp) }
	head := append(append([]byte{}, ftyp...), meta(0)...)
	off := uint32(len(head) + 8) // mdat payload starts after its header
	head = append(append([]byte{}, ftyp...), meta(off)...)
	return append(head, box("mdat", exifData)...)
}

// NoisyJPEG is a w×h JPEG of noise (seeded, so the same arguments give
// the same bytes): noise does not compress, so it makes large files, as
// phone photos are, with few pixels.
func NoisyJPEG(w, h int, seed uint64) []byte {
	img := image.NewYCbCr(image.Rect(0, 0, w, h), image.YCbCrSubsampleRatio420)
	x := seed | 1
	next := func() uint8 { // xorshift64: fast, and enough for noise
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		return uint8(x)
	}
	for i := range img.Y {
		img.Y[i] = next()
	}
	for i := range img.Cb {
		img.Cb[i], img.Cr[i] = next(), next()
	}
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, img, &jpeg.Options{Quality: 90}); err != nil {
		panic(err)
	}
	return buf.Bytes()
}
