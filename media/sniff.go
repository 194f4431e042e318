package media

import (
	"bytes"
	"encoding/binary"
)

// Format is an image format this package accepts.
type Format string

// Accepted formats, by their served content type.
const (
	JPEG Format = "image/jpeg"
	PNG  Format = "image/png"
	WebP Format = "image/webp"
	HEIC Format = "image/heic"
)

// sniffLen is how many leading bytes Sniff needs: the longest signature
// (an ISO BMFF ftyp box with its major brand) fits in 12.
const sniffLen = 32

// heicBrands are the ftyp brands of HEIF still images (ISO/IEC 23008-12
// and Apple's). AVIF ("avif") is a different codec and is not accepted.
var heicBrands = map[string]bool{"heic": true, "heix": true, "heim": true, "heis": true, "mif1": true, "msf1": true}

// Sniff tells the format from the leading bytes alone: names and
// Content-Type headers are not trusted. Anything else (HTML, SVG, GIF,
// PDF, an executable) is ErrUnsupported; no bytes at all is ErrEmpty.
func Sniff(head []byte) (Format, error) {
	switch {
	case len(head) == 0:
		return "", ErrEmpty
	case len(head) >= 3 && head[0] == 0xFF && head[1] == 0xD8 && head[2] == 0xFF:
		return JPEG, nil
	case bytes.HasPrefix(head, []byte("\x89PNG\r\n\x1a\n")):
		return PNG, nil
	case len(head) >= 12 && string(head[:4]) == "RIFF" && string(head[8:12]) == "WEBP":
		return WebP, nil
	case len(head) >= 12 && string(head[4:8]) == "ftyp":
		// The major brand, then compatible brands up to the box's end.
		size := int(binary.BigEndian.Uint32(head[:4]))
		if heicBrands[string(head[8:12])] {
			return HEIC, nil
		}
		for i := 16; i+4 <= size && i+4 <= len(head); i += 4 {
			if heicBrands[string(head[i:i+4])] && string(head[8:12]) != "avif" {
				return HEIC, nil
			}
		}
	}
	return "", ErrUnsupported
}
