package media

import (
	"encoding/binary"
	"fmt"
)

// VP8X flags (WebP container spec, "Extended file format").
const (
	vp8xAnimation = 0x02
	vp8xXMP       = 0x04
	vp8xExif      = 0x08
)

// stripWebP copies a WebP keeping only its image, alpha and colour
// profile chunks (so no EXIF, XMP or unknown ones), clearing their
// flags in VP8X, losslessly. Animated WebP is refused (ErrUnsupported): a
// photo of a broken appliance is a still image.
func stripWebP(b []byte) ([]byte, error) {
	if len(b) < 12 {
		return nil, fmt.Errorf("%w: RIFF header cut short", ErrCorrupt)
	}
	riff := int64(binary.LittleEndian.Uint32(b[4:])) + 8
	if riff > int64(len(b)) {
		return nil, fmt.Errorf("%w: the data ends before the RIFF size", ErrCorrupt)
	}
	b = b[:riff] // anything after the RIFF container is not part of it
	out := make([]byte, 12, len(b))
	copy(out, b[:12])
	for pos := 12; pos < len(b); {
		if pos+8 > len(b) {
			return nil, fmt.Errorf("%w: chunk header cut short", ErrCorrupt)
		}
		n := int64(binary.LittleEndian.Uint32(b[pos+4:]))
		end := int64(pos) + 8 + n + n&1 // chunks are padded to even sizes
		if end > int64(len(b)) {
			if end == int64(len(b))+1 && n&1 == 1 {
				end = int64(len(b)) // a missing final pad byte is tolerated
			} else {
				return nil, fmt.Errorf("%w: chunk length out of bounds", ErrCorrupt)
			}
		}
		switch fourcc := string(b[pos : pos+4]); fourcc {
		case "VP8 ", "VP8L", "ALPH", "ICCP":
			out = append(out, b[pos:end]...)
		case "VP8X":
			if n < 10 {
				return nil, fmt.Errorf("%w: VP8X chunk too short", ErrCorrupt)
			}
			if b[pos+8]&vp8xAnimation != 0 {
				return nil, fmt.Errorf("%w: animated WebP", ErrUnsupported)
			}
			start := len(out)
			out = append(out, b[pos:end]...)
			out[start+8] &^= vp8xExif | vp8xXMP
		case "ANIM", "ANMF":
			return nil, fmt.Errorf("%w: animated WebP", ErrUnsupported)
		default:
			// EXIF, XMP and unknown chunks: metadata, dropped.
		}
		pos = int(end)
	}
	binary.LittleEndian.PutUint32(out[4:], uint32(len(out)-8))
	return out, nil
}
