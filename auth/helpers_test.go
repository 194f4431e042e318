package auth

import (
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"runtime"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// newTestKey returns a fresh Ed25519 signing key.
func newTestKey(t testing.TB) *Key {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	k, err := NewKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// claimsMap returns the claims of a good access token from cfg's issuer,
// as a map so that cases can delete or change any of them.
func claimsMap(cfg Config) jwt.MapClaims {
	cfg = cfg.withDefaults()
	now := time.Now()
	return jwt.MapClaims{
		"iss":  cfg.Issuer,
		"sub":  "cust-1",
		"aud":  []string{cfg.Audience},
		"exp":  now.Add(10 * time.Minute).Unix(),
		"iat":  now.Unix(),
		"jti":  "jti-1",
		"role": "customer",
		"typ":  TypeAccess,
	}
}

// signWith signs claims with any method and key, setting kid when not "".
func signWith(t testing.TB, m jwt.SigningMethod, key any, kid string, claims jwt.Claims) string {
	t.Helper()
	tok := jwt.NewWithClaims(m, claims)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// mustRefuse fails unless err matches ErrInvalidToken and, if want is not
// nil, want as well.
func mustRefuse(t *testing.T, err, want error) {
	t.Helper()
	if err == nil {
		t.Fatal("token accepted; want refusal")
	}
	if !errors.Is(err, ErrInvalidToken) {
		t.Fatalf("error %v does not match ErrInvalidToken", err)
	}
	if want != nil && !errors.Is(err, want) {
		t.Fatalf("error %v does not match %v", err, want)
	}
}

// checkGoroutines fails the test if it leaves goroutines behind: it
// records the count now and polls for it in Cleanup (a stand-in for
// goleak, which the module does not require). Tests using it must not run
// in parallel.
func checkGoroutines(t *testing.T) {
	t.Helper()
	before := runtime.NumGoroutine()
	t.Cleanup(func() {
		deadline := time.Now().Add(5 * time.Second)
		for {
			n := runtime.NumGoroutine()
			if n <= before {
				return
			}
			if time.Now().After(deadline) {
				buf := make([]byte, 1<<16)
				t.Errorf("%d goroutines leaked:\n%s", n-before, buf[:runtime.Stack(buf, true)])
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
	})
}
