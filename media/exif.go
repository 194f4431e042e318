package media

import "encoding/binary"

// maxIFDEntries bounds the IFD0 walk. Camera IFD0s hold a few dozen tags;
// TIFF allows 65,535, and every entry is bounds-checked anyway, so this
// only caps the work a hostile header can ask for.
const maxIFDEntries = 1024

// exifOrientation reads the Orientation tag (0x0112) from an Exif TIFF
// structure (the APP1 payload after "Exif\0\0"). Anything it cannot read
// means 1, "as stored": a damaged Exif block must not fail the photo,
// which is re-encoded without it anyway.
func exifOrientation(tiff []byte) int {
	if len(tiff) < 8 {
		return 1
	}
	var bo binary.ByteOrder
	switch string(tiff[:2]) {
	case "II":
		bo = binary.LittleEndian
	case "MM":
		bo = binary.BigEndian
	default:
		return 1
	}
	if bo.Uint16(tiff[2:]) != 42 {
		return 1
	}
	off := int64(bo.Uint32(tiff[4:]))
	if off < 8 || off+2 > int64(len(tiff)) {
		return 1
	}
	n := int(bo.Uint16(tiff[off:]))
	if n > maxIFDEntries {
		n = maxIFDEntries
	}
	for i := 0; i < n; i++ {
		e := off + 2 + int64(i)*12
		if e+12 > int64(len(tiff)) {
			return 1
		}
		tag, typ, count := bo.Uint16(tiff[e:]), bo.Uint16(tiff[e+2:]), bo.Uint32(tiff[e+4:])
		if tag != 0x0112 {
			continue
		}
		if typ != 3 || count != 1 { // SHORT, one value, stored inline
			return 1
		}
		if v := int(bo.Uint16(tiff[e+8:])); v >= 1 && v <= 8 {
			return v
		}
		return 1
	}
	return 1
}
