package media

import (
	"encoding/binary"
	"fmt"
)

// pngKeep are the PNG chunks a stripped copy keeps: the image and how to
// show its colours (PNG 3rd edition §5.6). Text (tEXt, zTXt, iTXt), Exif
// (eXIf), times, animation and unknown chunks are dropped.
var pngKeep = map[string]bool{
	"IHDR": true, "PLTE": true, "IDAT": true, "IEND": true, "tRNS": true,
	"gAMA": true, "cHRM": true, "sRGB": true, "iCCP": true, "sBIT": true, "pHYs": true, "bKGD": true,
}

// stripPNG copies a PNG keeping only pngKeep chunks, losslessly, and
// drops anything after IEND. Chunk CRCs are copied, not checked: the
// decoder that runs next checks them.
func stripPNG(b []byte) ([]byte, error) {
	const sig = 8
	out := make([]byte, 0, len(b))
	out = append(out, b[:sig]...)
	for pos := sig; ; {
		if pos+12 > len(b) {
			return nil, fmt.Errorf("%w: the data ends before IEND", ErrCorrupt)
		}
		n := int64(binary.BigEndian.Uint32(b[pos:]))
		end := int64(pos) + 12 + n
		if end > int64(len(b)) {
			return nil, fmt.Errorf("%w: chunk length out of bounds", ErrCorrupt)
		}
		typ := string(b[pos+4 : pos+8])
		if pngKeep[typ] {
			out = append(out, b[pos:end]...)
		}
		if typ == "IEND" {
			return out, nil
		}
		pos = int(end)
	}
}
