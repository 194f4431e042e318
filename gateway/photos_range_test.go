package gateway

import "testing"

func TestParseRange(t *testing.T) {
	for _, tc := range []struct {
		h           string
		first, last int64
		err         error
	}{
		{"bytes=0-9", 0, 9, nil},
		{"bytes=10-", 10, 99, nil},
		{"bytes=-10", 90, 99, nil},
		{"bytes=-1000", 0, 99, nil},
		{"bytes=50-1000", 50, 99, nil},
		{"bytes=100-", 0, 0, errRangeUnsatisfiable},
		{"bytes=-0", 0, 0, errRangeUnsatisfiable},
		{"bytes=9-3", 0, 0, errRangeIgnored},
		{"bytes=0-1,5-6", 0, 0, errRangeIgnored},
		{"items=0-1", 0, 0, errRangeIgnored},
		{"bytes=+1-2", 0, 0, errRangeIgnored},
	} {
		f, l, err := parseRange(tc.h, 100)
		if err != tc.err || (err == nil && (f != tc.first || l != tc.last)) {
			t.Errorf("%q: %d-%d %v, want %d-%d %v", tc.h, f, l, err, tc.first, tc.last, tc.err)
		}
	}
}

// FuzzParseRange: any Range header yields either a range inside the
// content or one of the two errors.
func FuzzParseRange(f *testing.F) {
	f.Add("bytes=0-9", int64(100))
	f.Add("bytes=-5", int64(3))
	f.Add("bytes=99999999999999999999-", int64(10))
	f.Fuzz(func(t *testing.T, h string, size int64) {
		if size < 0 {
			size = -size
		}
		first, last, err := parseRange(h, size)
		if err == nil && (first < 0 || last < first || last >= size) {
			t.Fatalf("%q on %d: %d-%d", h, size, first, last)
		}
	})
}
