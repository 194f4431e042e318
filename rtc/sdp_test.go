package rtc

import (
	"errors"
	"strings"
	"testing"
)

const minimalOffer = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n" +
	"a=fingerprint:sha-256 AB:CD\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\na=ice-ufrag:x\r\n"

func TestValidateOffer(t *testing.T) {
	for name, tc := range map[string]struct {
		sdp string
		ok  bool
	}{
		"minimal":        {minimalOffer, true},
		"empty":          {"", false},
		"garbage":        {"hello", false},
		"huge":           {strings.Repeat("x", 1<<20), false},
		"no media":       {"v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=fingerprint:sha-256 AB\r\n", false},
		"no fingerprint": {strings.Replace(minimalOffer, "a=fingerprint:sha-256 AB:CD\r\n", "", 1), false},
		"500 m-lines":    {minimalOffer + strings.Repeat("m=audio 9 UDP/TLS/RTP/SAVPF 111\r\n", 500), false},
	} {
		err := ValidateOffer(tc.sdp)
		if tc.ok != (err == nil) || (err != nil && !errors.Is(err, ErrBadSDP)) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// FuzzValidateOffer: no input panics the validator, and whatever passes
// is within the bounds.
func FuzzValidateOffer(f *testing.F) {
	f.Add(minimalOffer)
	f.Add("v=0\r\n")
	f.Add(minimalOffer + "m=video 9 UDP/TLS/RTP/SAVPF 96\r\n")
	f.Fuzz(func(t *testing.T, s string) {
		if ValidateOffer(s) == nil && len(s) > MaxSDP {
			t.Fatalf("accepted %d bytes", len(s))
		}
	})
}
