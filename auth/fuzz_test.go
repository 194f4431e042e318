package auth

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// fuzzFixture has fixed keys, so that the checked-in corpus
// (testdata/fuzz/FuzzVerify) holds tokens that really verify and the
// fuzzer mutates its way through the whole path, not just the parser.
type fuzzFixture struct {
	key *Key
	idp *ecdsa.PrivateKey
	v   *Verifier
}

const (
	fuzzIdPIssuer = "https://idp.fuzz/"
	fuzzIdPKID    = "fuzz-ec"
)

func newFuzzFixture(t testing.TB) *fuzzFixture {
	t.Helper()
	key, err := NewKey(ed25519.NewKeyFromSeed(bytes.Repeat([]byte{0x42}, ed25519.SeedSize)))
	if err != nil {
		t.Fatal(err)
	}
	idp, err := ecdsa.ParseRawPrivateKey(elliptic.P256(), bytes.Repeat([]byte{0x17}, 32))
	if err != nil {
		t.Fatal(err)
	}
	prov := Provider{
		Keys:   staticKeys{fuzzIdPKID: &idp.PublicKey},
		Issuer: fuzzIdPIssuer, Audience: "fuzz-app", RoleClaim: "r",
	}
	return &fuzzFixture{key: key, idp: idp, v: NewVerifier(Config{}, key, prov)}
}

// seeds are good tokens of every kind, valid until 2100, and the classic
// bad ones.
func (fx *fuzzFixture) seeds(t testing.TB) []string {
	exp := time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC).Unix()
	own := func(typ string) jwt.MapClaims {
		return jwt.MapClaims{"iss": DefaultIssuer, "sub": "cust-1", "aud": []string{DefaultAudience},
			"exp": exp, "iat": 1700000000, "jti": "J", "role": "device", "typ": typ,
			"scp": []string{"appliance:A1"}, "fam": "F"}
	}
	ext := jwt.MapClaims{"iss": fuzzIdPIssuer, "sub": "u", "aud": "fuzz-app", "exp": exp, "r": "agent", "scp": "a b"}
	access := signWith(t, jwt.SigningMethodEdDSA, fx.key.signer, fx.key.id, own(TypeAccess))
	refresh := signWith(t, jwt.SigningMethodEdDSA, fx.key.signer, fx.key.id, own(TypeRefresh))
	external := signWith(t, jwt.SigningMethodES256, fx.idp, fuzzIdPKID, ext)
	none := jwt.NewWithClaims(jwt.SigningMethodNone, own(TypeAccess))
	none.Header["kid"] = fx.key.id
	noneTok, _ := none.SignedString(jwt.UnsafeAllowNoneSignatureType)
	hs := signWith(t, jwt.SigningMethodHS256, []byte(fx.key.pub.(ed25519.PublicKey)), fx.key.id, own(TypeAccess))
	return []string{
		access, refresh, external, noneTok, hs,
		"", ".", "..", "...", "a.b.c", strings.Repeat(".", MaxTokenLen+1),
		"eyJhbGciOiJFZERTQSIsImtpZCI6Ii4uLy4uL2V0Yy9wYXNzd2QifQ.e30.",
	}
}

func FuzzVerify(f *testing.F) {
	fx := newFuzzFixture(f)
	for _, s := range fx.seeds(f) {
		f.Add(s)
	}
	ctx := context.Background()
	f.Fuzz(func(t *testing.T, token string) {
		for _, verify := range []func(context.Context, string) (*Claims, error){fx.v.Verify, fx.v.VerifyRefresh} {
			c, err := verify(ctx, token)
			if err != nil {
				if c != nil {
					t.Fatalf("claims returned with error %v", err)
				}
				if !errors.Is(err, ErrInvalidToken) {
					t.Fatalf("refusal %v does not match ErrInvalidToken", err)
				}
				continue
			}
			if c == nil || c.Subject == "" || !c.Role.Valid() || c.ExpiresAt == nil ||
				(c.Type != TypeAccess && c.Type != TypeRefresh) {
				t.Fatalf("accepted token with claims %+v", c)
			}
		}
	})
}

// TestWriteFuzzCorpus regenerates testdata/fuzz/FuzzVerify from seeds:
// SWITCHBOARD_WRITE_FUZZ_CORPUS=1 go test -run TestWriteFuzzCorpus ./auth/
func TestWriteFuzzCorpus(t *testing.T) {
	if os.Getenv("SWITCHBOARD_WRITE_FUZZ_CORPUS") == "" {
		t.Skip("set SWITCHBOARD_WRITE_FUZZ_CORPUS=1 to regenerate the seed corpus")
	}
	fx := newFuzzFixture(t)
	dir := filepath.Join("testdata", "fuzz", "FuzzVerify")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	names := []string{"access", "refresh", "external", "alg-none", "hs256-public-key",
		"empty", "dot", "two-dots", "three-dots", "abc", "over-cap", "path-kid"}
	for i, s := range fx.seeds(t) {
		data := fmt.Sprintf("go test fuzz v1\nstring(%s)\n", strconv.Quote(s))
		if err := os.WriteFile(filepath.Join(dir, "seed-"+names[i]), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// TestFuzzCorpusVerifies keeps the checked-in corpus meaningful: its good
// tokens must still verify with the fixture's keys.
func TestFuzzCorpusVerifies(t *testing.T) {
	fx := newFuzzFixture(t)
	ctx := context.Background()
	for name, verify := range map[string]func(context.Context, string) (*Claims, error){
		"seed-access": fx.v.Verify, "seed-refresh": fx.v.VerifyRefresh, "seed-external": fx.v.Verify,
	} {
		data, err := os.ReadFile(filepath.Join("testdata", "fuzz", "FuzzVerify", name))
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(strings.TrimSpace(string(data)), "\n")
		tok, err := strconv.Unquote(strings.TrimSuffix(strings.TrimPrefix(lines[1], "string("), ")"))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := verify(ctx, tok); err != nil {
			t.Errorf("%s no longer verifies: %v", name, err)
		}
	}
}
