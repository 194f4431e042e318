package gateway

import (
	"errors"
	"strconv"
	"strings"
)

var (
	// errRangeUnsatisfiable: a well-formed range outside the content: 416.
	errRangeUnsatisfiable = errors.New("range not satisfiable")
	// errRangeIgnored: a range the server may ignore (malformed, several
	// ranges, another unit): the whole content is sent with 200.
	errRangeIgnored = errors.New("range ignored")
)

// maxRangeHeader bounds the Range header parsed; a single range fits in
// well under 64 bytes.
const maxRangeHeader = 256

// parseRange parses a Range header holding one byte range against content
// of size bytes and returns its first and last byte, inclusive
// (RFC 9110 §14.1.2).
func parseRange(h string, size int64) (first, last int64, err error) {
	spec, ok := strings.CutPrefix(h, "bytes=")
	if !ok || len(h) > maxRangeHeader || strings.Contains(spec, ",") {
		return 0, 0, errRangeIgnored
	}
	a, b, ok := strings.Cut(strings.TrimSpace(spec), "-")
	if !ok {
		return 0, 0, errRangeIgnored
	}
	num := func(s string) (int64, bool) {
		if s == "" || len(s) > 19 {
			return 0, false
		}
		for i := 0; i < len(s); i++ {
			if s[i] < '0' || s[i] > '9' {
				return 0, false
			}
		}
		v, err := strconv.ParseInt(s, 10, 64)
		return v, err == nil
	}
	if a == "" { // suffix: the last b bytes
		n, ok := num(b)
		if !ok {
			return 0, 0, errRangeIgnored
		}
		if n == 0 || size == 0 {
			return 0, 0, errRangeUnsatisfiable
		}
		return max(size-n, 0), size - 1, nil
	}
	first, ok = num(a)
	if !ok {
		return 0, 0, errRangeIgnored
	}
	last = size - 1
	if b != "" {
		if last, ok = num(b); !ok || last < first {
			return 0, 0, errRangeIgnored
		}
		last = min(last, size-1)
	}
	if first >= size {
		return 0, 0, errRangeUnsatisfiable
	}
	return first, last, nil
}
