package gateway

import (
	"context"
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/switchboard/switchboard/auth"
)

// countingVerifier accepts tokens named in ok, with exp, and counts calls.
type countingVerifier struct {
	calls int
	exp   time.Time
}

func (v *countingVerifier) Verify(_ context.Context, tok string) (*auth.Claims, error) {
	v.calls++
	if tok == "bad" {
		return nil, auth.ErrInvalidToken
	}
	return &auth.Claims{RegisteredClaims: jwt.RegisteredClaims{Subject: tok, ExpiresAt: jwt.NewNumericDate(v.exp)}}, nil
}

func TestTokenCache(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	v := &countingVerifier{exp: now.Add(time.Minute)}
	tc := newTokenCache(v)
	tc.now = func() time.Time { return now }
	ctx := context.Background()

	for i := 0; i < 3; i++ {
		if cl, err := tc.Verify(ctx, "good"); err != nil || cl.Subject != "good" {
			t.Fatal(cl, err)
		}
	}
	if v.calls != 1 {
		t.Fatalf("verified %d times, want 1 (cached)", v.calls)
	}
	// Failures are never cached.
	for i := 0; i < 3; i++ {
		if _, err := tc.Verify(ctx, "bad"); !errors.Is(err, auth.ErrInvalidToken) {
			t.Fatal(err)
		}
	}
	if v.calls != 4 || len(tc.entries) != 1 {
		t.Fatalf("calls %d, entries %d", v.calls, len(tc.entries))
	}
	// Past its expiry a cached token is verified again, not served.
	now = now.Add(time.Minute)
	tc.Verify(ctx, "good")
	if v.calls != 5 {
		t.Fatalf("expired entry served from cache (calls %d)", v.calls)
	}
	// The cache never grows past its bound.
	v.exp = now.Add(time.Hour)
	for i := 0; i < tokenCacheSize+10; i++ {
		tc.Verify(ctx, "t"+strconv.Itoa(i))
	}
	if len(tc.entries) > tokenCacheSize {
		t.Fatalf("%d entries", len(tc.entries))
	}
}
