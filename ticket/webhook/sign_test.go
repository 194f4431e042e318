package webhook

import (
	"errors"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestSignKnownVector checks Sign against the Standard Webhooks reference
// vector (standard-webhooks/libraries, the spec's test), so receivers'
// libraries agree with us byte for byte.
func TestSignKnownVector(t *testing.T) {
	secret := "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	id := "msg_p5jXN8AQM9LWM0D4loKWxJek"
	ts := time.Unix(1614265330, 0)
	body := []byte(`{"test": 2432232314}`)
	got, err := Sign(secret, id, ts, body)
	if err != nil {
		t.Fatal(err)
	}
	if want := "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="; got != want {
		t.Fatalf("Sign = %s, want %s", got, want)
	}
	h := http.Header{}
	h.Set(HeaderID, id)
	h.Set(HeaderTimestamp, strconv.FormatInt(ts.Unix(), 10))
	h.Set(HeaderSignature, "v1,bogus "+got) // several signatures: any may match
	if err := Verify(secret, h, body, ts.Add(time.Minute)); err != nil {
		t.Fatalf("Verify: %v", err)
	}
	for name, tc := range map[string]struct {
		body []byte
		now  time.Time
		hdr  func(http.Header)
	}{
		"tampered body": {body: []byte(`{"test": 1}`), now: ts},
		"old timestamp": {body: body, now: ts.Add(VerifyTolerance + time.Second)},
		"future":        {body: body, now: ts.Add(-VerifyTolerance - time.Second)},
		"other id":      {body: body, now: ts, hdr: func(h http.Header) { h.Set(HeaderID, "msg_other") }},
		"no signature":  {body: body, now: ts, hdr: func(h http.Header) { h.Del(HeaderSignature) }},
		"other version": {body: body, now: ts, hdr: func(h http.Header) { h.Set(HeaderSignature, strings.Replace(got, "v1,", "v2,", 1)) }},
		"bad timestamp": {body: body, now: ts, hdr: func(h http.Header) { h.Set(HeaderTimestamp, "soon") }},
	} {
		t.Run(name, func(t *testing.T) {
			h := h.Clone()
			h.Set(HeaderSignature, got)
			if tc.hdr != nil {
				tc.hdr(h)
			}
			if err := Verify(secret, h, tc.body, tc.now); !errors.Is(err, ErrBadSignature) {
				t.Fatalf("Verify = %v, want ErrBadSignature", err)
			}
		})
	}
}

func TestSecrets(t *testing.T) {
	s := newSecret()
	if _, err := secretKey(s); err != nil {
		t.Fatalf("generated secret %q: %v", s, err)
	}
	if newSecret() == s {
		t.Fatal("two generated secrets are equal")
	}
	for _, bad := range []string{"", "hunter2", "whsec_", "whsec_!!!!", "whsec_c2hvcnQ=", "whsec_" + strings.Repeat("QUFB", 30)} {
		if _, err := secretKey(bad); !errors.Is(err, ErrInvalid) {
			t.Errorf("secretKey(%q) = %v, want ErrInvalid", bad, err)
		}
	}
}

func TestBackoff(t *testing.T) {
	base, maxD := 10*time.Second, time.Hour
	for n := 1; n <= 40; n++ {
		ceiling := min(maxD, base<<min(n-1, 20))
		for range 50 {
			if d := backoff(n, base, maxD); d < 0 || d > ceiling {
				t.Fatalf("backoff(%d) = %v, want within [0, %v]", n, d, ceiling)
			}
		}
	}
	// Full jitter: the delays spread out rather than bunch at the cap.
	seen := map[time.Duration]bool{}
	for range 20 {
		seen[backoff(5, base, maxD)] = true
	}
	if len(seen) < 10 {
		t.Fatalf("backoff has little jitter: %d distinct values of 20", len(seen))
	}
}
