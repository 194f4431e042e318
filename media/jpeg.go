package media

import (
	"bytes"
	"encoding/binary"
	"fmt"
)

// JPEG markers this file acts on (ITU T.81 table B.1).
const (
	mSOI  = 0xD8
	mEOI  = 0xD9
	mSOS  = 0xDA
	mAPP0 = 0xE0
	mAPP1 = 0xE1
	mAPP2 = 0xE2
	mAPPE = 0xEE // Adobe: says how to convert colours, so it stays
	mAPPF = 0xEF
	mCOM  = 0xFE
)

// stripJPEG copies a JPEG without its metadata, losslessly: the
// compressed image data is copied, not re-encoded. Dropped: Exif and XMP
// (APP1, where GPS lives), MPF and FlashPix (APP2), APP3 to APP13, APP15,
// comments, JFIF thumbnails, and everything after the first image's EOI
// (MPF secondary images, gain maps, trailers, each with Exif of its own).
// Kept: the image, the JFIF header without its thumbnail, the ICC colour
// profile (colours, no personal data) and the Adobe segment.
//
// It returns the Exif orientation found (1 if none) and ErrCorrupt when
// the structure is broken or the data ends before EOI (a truncated file).
// The walk is linear in len(b) with every length bounds-checked.
func stripJPEG(b []byte) (out []byte, orientation int, err error) {
	orientation = 1
	if len(b) < 4 || b[0] != 0xFF || b[1] != mSOI {
		return nil, 1, fmt.Errorf("%w: no JPEG start marker", ErrCorrupt)
	}
	out = make([]byte, 0, len(b))
	out = append(out, 0xFF, mSOI)
	pos := 2
	inScan := false
	for {
		if inScan {
			// Entropy-coded data: FF 00 is a stuffed FF and FF D0..D7 a
			// restart marker, both data; any other FF xx is a marker.
			start := pos
			for {
				i := bytes.IndexByte(b[pos:], 0xFF)
				if i < 0 || pos+i+1 >= len(b) {
					return nil, 1, fmt.Errorf("%w: the data ends before the end-of-image marker", ErrCorrupt)
				}
				pos += i
				if m := b[pos+1]; m == 0x00 || (m >= 0xD0 && m <= 0xD7) || m == 0xFF {
					pos++
					continue
				}
				break
			}
			out = append(out, b[start:pos]...)
			inScan = false
		}
		// A marker, possibly preceded by fill bytes (FF FF ...).
		fills := 0
		for pos < len(b) && b[pos] == 0xFF {
			pos++
			fills++
		}
		if pos >= len(b) || fills == 0 {
			return nil, 1, fmt.Errorf("%w: expected a marker at byte %d", ErrCorrupt, pos)
		}
		m := b[pos]
		pos++
		switch {
		case m == mEOI:
			return append(out, 0xFF, mEOI), orientation, nil
		case m >= 0xD0 && m <= 0xD7, m == 0x01, m == 0x00 || m == mSOI:
			if m == 0x00 || m == mSOI {
				return nil, 1, fmt.Errorf("%w: stray marker at byte %d", ErrCorrupt, pos)
			}
			out = append(out, 0xFF, m) // parameterless
			continue
		}
		if pos+2 > len(b) {
			return nil, 1, fmt.Errorf("%w: segment header cut short", ErrCorrupt)
		}
		n := int(binary.BigEndian.Uint16(b[pos:]))
		if n < 2 || pos+n > len(b) {
			return nil, 1, fmt.Errorf("%w: segment length out of bounds", ErrCorrupt)
		}
		seg := b[pos+2 : pos+n]
		keep := true
		switch {
		case m == mAPP0:
			// JFIF with no thumbnail is 14 bytes of payload; longer ones
			// (and JFXX) carry a thumbnail of the unstripped photo.
			keep = bytes.HasPrefix(seg, []byte("JFIF\x00")) && len(seg) <= 14
		case m == mAPP1:
			keep = false
			if t, ok := bytes.CutPrefix(seg, []byte("Exif\x00\x00")); ok && orientation == 1 {
				orientation = exifOrientation(t)
			}
		case m == mAPP2:
			keep = bytes.HasPrefix(seg, []byte("ICC_PROFILE\x00"))
		case m == mAPPE:
			keep = bytes.HasPrefix(seg, []byte("Adobe"))
		case m > mAPP2 && m <= mAPPF, m == mCOM:
			keep = false
		}
		if keep {
			out = append(out, 0xFF, m)
			out = append(out, b[pos:pos+n]...)
		}
		pos += n
		if m == mSOS {
			inScan = true
		}
	}
}
