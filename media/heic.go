package media

import (
	"encoding/binary"
	"fmt"
)

// HEIC (HEIF, ISO/IEC 23008-12) is an ISO BMFF file: nested boxes. No
// HEVC decoder ships with Go, so a HEIC photo is stored as uploaded,
// except that its Exif and XMP items are overwritten with zeros in place
// (their offsets stay valid, so viewers still open the file), and it gets
// no thumbnail. Its size for the pixel limit comes from the ispe boxes.

// maxBoxes bounds the boxes one HEIC walk visits. An iPhone HEIC has a
// few hundred (one per grid tile and property); hostile input with
// millions of empty boxes stops here.
const maxBoxes = 1 << 14

type box struct {
	typ        string
	start, end int // payload bounds in the file
}

// boxes lists the boxes in b[start:end].
func boxes(b []byte, start, end int, budget *int) ([]box, error) {
	var out []box
	for pos := start; pos < end; {
		if *budget--; *budget < 0 {
			return nil, fmt.Errorf("%w: too many boxes", ErrCorrupt)
		}
		if pos+8 > end {
			return nil, fmt.Errorf("%w: box header cut short", ErrCorrupt)
		}
		size := int64(binary.BigEndian.Uint32(b[pos:]))
		typ := string(b[pos+4 : pos+8])
		hdr := int64(8)
		switch size {
		case 0: // to the end of the enclosing box
			size = int64(end - pos)
		case 1: // 64-bit size follows
			if pos+16 > end {
				return nil, fmt.Errorf("%w: box header cut short", ErrCorrupt)
			}
			size = int64(binary.BigEndian.Uint64(b[pos+8:]))
			hdr = 16
		}
		if size < hdr || size > int64(end-pos) {
			return nil, fmt.Errorf("%w: box size out of bounds", ErrCorrupt)
		}
		out = append(out, box{typ: typ, start: pos + int(hdr), end: pos + int(size)})
		pos += int(size)
	}
	return out, nil
}

func find(bs []box, typ string) (box, bool) {
	for _, x := range bs {
		if x.typ == typ {
			return x, true
		}
	}
	return box{}, false
}

// heicInfo walks a HEIC file for its largest declared image size and the
// byte ranges of its metadata items (Exif, XMP).
func heicInfo(b []byte) (w, h int, meta [][2]int, err error) {
	budget := maxBoxes
	top, err := boxes(b, 0, len(b), &budget)
	if err != nil {
		return 0, 0, nil, err
	}
	mb, ok := find(top, "meta")
	if !ok || mb.end-mb.start < 4 {
		return 0, 0, nil, fmt.Errorf("%w: no meta box", ErrCorrupt)
	}
	inner, err := boxes(b, mb.start+4, mb.end, &budget) // meta is a full box
	if err != nil {
		return 0, 0, nil, err
	}
	if iprp, ok := find(inner, "iprp"); ok {
		props, err := boxes(b, iprp.start, iprp.end, &budget)
		if err != nil {
			return 0, 0, nil, err
		}
		if ipco, ok := find(props, "ipco"); ok {
			items, err := boxes(b, ipco.start, ipco.end, &budget)
			if err != nil {
				return 0, 0, nil, err
			}
			for _, x := range items {
				if x.typ == "ispe" && x.end-x.start >= 12 {
					iw := int(binary.BigEndian.Uint32(b[x.start+4:]))
					ih := int(binary.BigEndian.Uint32(b[x.start+8:]))
					if int64(iw)*int64(ih) > int64(w)*int64(h) {
						w, h = iw, ih
					}
				}
			}
		}
	}
	if w <= 0 || h <= 0 {
		return 0, 0, nil, fmt.Errorf("%w: no image size (ispe)", ErrCorrupt)
	}
	ids := map[uint32]bool{}
	if iinf, ok := find(inner, "iinf"); ok {
		if ids, err = metadataItems(b, iinf, &budget); err != nil {
			return 0, 0, nil, err
		}
	}
	if iloc, ok := find(inner, "iloc"); ok && len(ids) > 0 {
		if meta, err = itemRanges(b, iloc, ids); err != nil {
			return 0, 0, nil, err
		}
	}
	return w, h, meta, nil
}

// metadataItems returns the IDs of Exif items and of XMP ("mime" items
// of type application/rdf+xml) in iinf.
func metadataItems(b []byte, iinf box, budget *int) (map[uint32]bool, error) {
	p := iinf.start
	if p+4 > iinf.end {
		return nil, fmt.Errorf("%w: iinf cut short", ErrCorrupt)
	}
	hdr := 6
	if b[p] != 0 {
		hdr = 8
	}
	if p+hdr > iinf.end {
		return nil, fmt.Errorf("%w: iinf cut short", ErrCorrupt)
	}
	entries, err := boxes(b, p+hdr, iinf.end, budget)
	if err != nil {
		return nil, err
	}
	ids := map[uint32]bool{}
	for _, e := range entries {
		q, end := e.start, e.end
		if e.typ != "infe" || q+4 > end || b[q] < 2 {
			continue // versions 0 and 1 predate item types: not HEIC items
		}
		version := b[q]
		q += 4
		var id uint32
		if version == 2 {
			if q+2 > end {
				continue
			}
			id = uint32(binary.BigEndian.Uint16(b[q:]))
			q += 2
		} else {
			if q+4 > end {
				continue
			}
			id = binary.BigEndian.Uint32(b[q:])
			q += 4
		}
		q += 2 // item_protection_index
		if q+4 > end {
			continue
		}
		typ := string(b[q : q+4])
		q += 4
		switch typ {
		case "Exif":
			ids[id] = true
		case "mime":
			// item_name (NUL-terminated), then content_type.
			for q < end && b[q] != 0 {
				q++
			}
			q++
			ct := q
			for q < end && b[q] != 0 {
				q++
			}
			if ct < end && string(b[ct:q]) == "application/rdf+xml" {
				ids[id] = true
			}
		}
	}
	return ids, nil
}

// itemRanges returns the file byte ranges of the items ids from iloc
// (ISO/IEC 14496-12 §8.11.3), for extents stored by file offset.
func itemRanges(b []byte, iloc box, ids map[uint32]bool) ([][2]int, error) {
	p, end := iloc.start, iloc.end
	bad := fmt.Errorf("%w: iloc out of bounds", ErrCorrupt)
	uint := func(n int) (uint64, bool) {
		if n == 0 {
			return 0, true
		}
		if p+n > end || (n != 4 && n != 8 && n != 2) {
			return 0, false
		}
		var v uint64
		switch n {
		case 2:
			v = uint64(binary.BigEndian.Uint16(b[p:]))
		case 4:
			v = uint64(binary.BigEndian.Uint32(b[p:]))
		case 8:
			v = binary.BigEndian.Uint64(b[p:])
		}
		p += n
		return v, true
	}
	if p+6 > end {
		return nil, bad
	}
	version := b[p]
	p += 4
	offSize, lenSize, baseSize := int(b[p]>>4), int(b[p]&15), int(b[p+1]>>4)
	idxSize := 0
	if version == 1 || version == 2 {
		idxSize = int(b[p+1] & 15)
	}
	p += 2
	countSize := 2
	if version == 2 {
		countSize = 4
	}
	count, ok := uint(countSize)
	if !ok {
		return nil, bad
	}
	var out [][2]int
	total := 0
	for i := uint64(0); i < count; i++ {
		idSize := 2
		if version == 2 {
			idSize = 4
		}
		id, ok := uint(idSize)
		if !ok {
			return nil, bad
		}
		method := uint64(0)
		if version == 1 || version == 2 {
			if method, ok = uint(2); !ok {
				return nil, bad
			}
			method &= 15
		}
		if _, ok = uint(2); !ok { // data_reference_index
			return nil, bad
		}
		base, ok := uint(baseSize)
		if !ok {
			return nil, bad
		}
		extents, ok := uint(2)
		if !ok {
			return nil, bad
		}
		for j := uint64(0); j < extents; j++ {
			// Zero-width fields consume no bytes, so bound the work.
			if total++; total > maxBoxes {
				return nil, fmt.Errorf("%w: too many extents", ErrCorrupt)
			}
			if _, ok = uint(idxSize); !ok {
				return nil, bad
			}
			off, ok1 := uint(offSize)
			n, ok2 := uint(lenSize)
			if !ok1 || !ok2 {
				return nil, bad
			}
			if !ids[uint32(id)] || method != 0 {
				continue
			}
			s, e := base+off, base+off+n
			if n == 0 || e < s || e > uint64(len(b)) {
				return nil, fmt.Errorf("%w: metadata item out of bounds", ErrCorrupt)
			}
			out = append(out, [2]int{int(s), int(e)})
		}
	}
	return out, nil
}

// stripHEIC returns a copy of b with its metadata items zeroed.
func stripHEIC(b []byte, meta [][2]int) []byte {
	out := append([]byte(nil), b...)
	for _, r := range meta {
		clear(out[r[0]:r[1]])
	}
	return out
}
