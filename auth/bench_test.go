package auth

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"strings"
	"testing"
)

func benchVerify(b *testing.B, v *Verifier, token string) {
	b.Helper()
	ctx := context.Background()
	if _, err := v.Verify(ctx, token); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.Verify(ctx, token); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "verifies/s")
}

// BenchmarkVerify is the per-request cost of an access token signed with
// our default Ed25519 key.
func BenchmarkVerify(b *testing.B) {
	key := newTestKey(b)
	tok, _, err := NewIssuer(Config{}, key, nil).Access("cust-1", RoleCustomer, []string{"appliance:A1"}, 0)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("EdDSA", func(b *testing.B) { benchVerify(b, NewVerifier(Config{}, key), tok) })
	b.Run("EdDSA+provider", func(b *testing.B) {
		benchVerify(b, NewVerifier(Config{}, key, newTestIdP(b).provider()), tok)
	})
	b.Run("ES256", func(b *testing.B) {
		priv, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		k, err := NewKey(priv)
		if err != nil {
			b.Fatal(err)
		}
		tok, _, err := NewIssuer(Config{}, k, nil).Access("cust-1", RoleCustomer, nil, 0)
		if err != nil {
			b.Fatal(err)
		}
		benchVerify(b, NewVerifier(Config{}, k), tok)
	})
	b.Run("provider-RS256", func(b *testing.B) {
		idp := newTestIdP(b)
		benchVerify(b, NewVerifier(Config{}, key, idp.provider()), idp.signRSA(b, idp.claims()))
	})
}

// BenchmarkVerifyOversized is the cost of refusing a megabyte of dots.
func BenchmarkVerifyOversized(b *testing.B) {
	v := NewVerifier(Config{}, newTestKey(b))
	dots := strings.Repeat(".", 1<<20)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.Verify(ctx, dots); err == nil {
			b.Fatal("accepted")
		}
	}
}
