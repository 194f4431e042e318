package state

import (
	"fmt"
	"strconv"
	"strings"
)

// ID is a parsed stream entry ID: milliseconds and a sequence number.
type ID struct {
	Ms, Seq uint64
}

// ParseID parses "ms-seq" (or "ms", meaning seq 0). "" and "0" are the zero ID.
func ParseID(s string) (ID, error) {
	if s == "" || s == "0" {
		return ID{}, nil
	}
	msPart, seqPart, hasSeq := strings.Cut(s, "-")
	ms, err := strconv.ParseUint(msPart, 10, 64)
	if err != nil {
		return ID{}, fmt.Errorf("%w: stream ID %q", ErrInvalidArgument, s)
	}
	var seq uint64
	if hasSeq {
		if seq, err = strconv.ParseUint(seqPart, 10, 64); err != nil {
			return ID{}, fmt.Errorf("%w: stream ID %q", ErrInvalidArgument, s)
		}
	}
	return ID{ms, seq}, nil
}

// String formats the ID as Redis does.
func (id ID) String() string {
	return strconv.FormatUint(id.Ms, 10) + "-" + strconv.FormatUint(id.Seq, 10)
}

// Less reports whether id sorts before o.
func (id ID) Less(o ID) bool {
	return id.Ms < o.Ms || (id.Ms == o.Ms && id.Seq < o.Seq)
}

// CompareIDs compares two stream IDs: -1, 0 or +1. Malformed IDs sort as zero.
func CompareIDs(a, b string) int {
	x, _ := ParseID(a)
	y, _ := ParseID(b)
	switch {
	case x.Less(y):
		return -1
	case y.Less(x):
		return 1
	}
	return 0
}

// IDMember is id as an ordered-index member: the sequence zero-padded to
// ten digits, so members that share a score (the millisecond) sort in ID
// order byte-wise. ParseID reads it back.
func IDMember(id ID) string {
	seq := strconv.FormatUint(id.Seq, 10)
	if len(seq) < 10 {
		seq = strings.Repeat("0", 10-len(seq)) + seq
	}
	return strconv.FormatUint(id.Ms, 10) + "-" + seq
}
