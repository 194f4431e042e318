package auth

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// TestVerifyRefuses runs every bad token we know of through Verify, once
// on a Verifier of our key alone and once on one that also trusts an
// outside provider (which routes by kid first).
func TestVerifyRefuses(t *testing.T) {
	cfg := Config{}
	key := newTestKey(t)
	idp := newTestIdP(t)
	otherEd := newTestKey(t)
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	rsaKey := idp.rsa

	good := signWith(t, jwt.SigningMethodEdDSA, key.signer, key.id, claimsMap(cfg))
	mod := func(f func(jwt.MapClaims)) string {
		c := claimsMap(cfg)
		f(c)
		return signWith(t, jwt.SigningMethodEdDSA, key.signer, key.id, c)
	}
	withHeader := func(f func(map[string]any)) string {
		tok := jwt.NewWithClaims(jwt.SigningMethodEdDSA, claimsMap(cfg))
		tok.Header["kid"] = key.id
		f(tok.Header)
		s, err := tok.SignedString(key.signer)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	seg := strings.Split(good, ".")
	enc := base64.RawURLEncoding

	pubDER, err := x509.MarshalPKIXPublicKey(key.pub)
	if err != nil {
		t.Fatal(err)
	}
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})
	jwks, err := key.JWKS()
	if err != nil {
		t.Fatal(err)
	}

	tampered := func() string {
		payload, err := enc.DecodeString(seg[1])
		if err != nil {
			t.Fatal(err)
		}
		p := strings.Replace(string(payload), `"customer"`, `"admin"`, 1)
		if p == string(payload) {
			t.Fatal("tamper found nothing to change")
		}
		return seg[0] + "." + enc.EncodeToString([]byte(p)) + "." + seg[2]
	}()
	flippedSig := func() string {
		sig, _ := enc.DecodeString(seg[2])
		sig[0] ^= 1
		return seg[0] + "." + seg[1] + "." + enc.EncodeToString(sig)
	}()
	none := func() string {
		tok := jwt.NewWithClaims(jwt.SigningMethodNone, claimsMap(cfg))
		tok.Header["kid"] = key.id
		s, err := tok.SignedString(jwt.UnsafeAllowNoneSignatureType)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}()

	cases := []struct {
		name  string
		token string
		want  error // beyond ErrInvalidToken; nil for just that
	}{
		{"alg none", none, nil},
		{"alg none, signature kept", strings.TrimSuffix(none, ".") + "." + seg[2], nil},
		{"HS256 keyed with our raw public key", signWith(t, jwt.SigningMethodHS256, []byte(key.pub.(ed25519.PublicKey)), key.id, claimsMap(cfg)), nil},
		{"HS256 keyed with our public key PEM", signWith(t, jwt.SigningMethodHS256, pubPEM, key.id, claimsMap(cfg)), nil},
		{"HS256 keyed with our JWK x", signWith(t, jwt.SigningMethodHS256, []byte(key.jwk.X), key.id, claimsMap(cfg)), nil},
		{"HS256 keyed with our JWKS", signWith(t, jwt.SigningMethodHS256, jwks, key.id, claimsMap(cfg)), nil},
		{"HS256 keyed with the IdP's RSA public key PEM", signWith(t, jwt.SigningMethodHS256, idp.rsaPubPEM, idp.rsaKID, idp.claims()), nil},
		{"tampered payload", tampered, nil},
		{"tampered signature", flippedSig, nil},
		{"signature stripped", seg[0] + "." + seg[1] + ".", nil},
		{"signed by another Ed25519 key under our kid", signWith(t, jwt.SigningMethodEdDSA, otherEd.signer, key.id, claimsMap(cfg)), nil},
		{"ES256 under our EdDSA kid", signWith(t, jwt.SigningMethodES256, ecKey, key.id, claimsMap(cfg)), nil},
		{"RS256 under our kid", signWith(t, jwt.SigningMethodRS256, rsaKey, key.id, claimsMap(cfg)), nil},
		{"EdDSA by a stranger under his own kid", signWith(t, jwt.SigningMethodEdDSA, otherEd.signer, otherEd.id, claimsMap(cfg)), ErrUnknownKey},
		{"no exp", mod(func(c jwt.MapClaims) { delete(c, "exp") }), nil},
		{"exp not a number", mod(func(c jwt.MapClaims) { c["exp"] = "tomorrow" }), nil},
		{"expired", mod(func(c jwt.MapClaims) { c["exp"] = time.Now().Add(-5 * time.Minute).Unix() }), ErrExpired},
		{"nbf in the future", mod(func(c jwt.MapClaims) { c["nbf"] = time.Now().Add(5 * time.Minute).Unix() }), nil},
		{"iat in the future", mod(func(c jwt.MapClaims) { c["iat"] = time.Now().Add(5 * time.Minute).Unix() }), nil},
		{"wrong aud", mod(func(c jwt.MapClaims) { c["aud"] = "someone-else" }), nil},
		{"no aud", mod(func(c jwt.MapClaims) { delete(c, "aud") }), nil},
		{"wrong iss", mod(func(c jwt.MapClaims) { c["iss"] = "evil" }), nil},
		{"no iss", mod(func(c jwt.MapClaims) { delete(c, "iss") }), nil},
		{"no sub", mod(func(c jwt.MapClaims) { delete(c, "sub") }), nil},
		{"unknown role", mod(func(c jwt.MapClaims) { c["role"] = "root" }), ErrInvalidRole},
		{"no role", mod(func(c jwt.MapClaims) { delete(c, "role") }), ErrInvalidRole},
		{"refresh token as access token", mod(func(c jwt.MapClaims) { c["typ"] = TypeRefresh; c["fam"] = "F" }), ErrWrongTokenType},
		{"no typ", mod(func(c jwt.MapClaims) { delete(c, "typ") }), ErrWrongTokenType},
		{"unknown kid", withHeader(func(h map[string]any) { h["kid"] = "nope" }), ErrUnknownKey},
		{"path traversal kid", withHeader(func(h map[string]any) { h["kid"] = "../../etc/passwd" }), ErrUnknownKey},
		{"SQL kid", withHeader(func(h map[string]any) { h["kid"] = "' OR 1=1 --" }), ErrUnknownKey},
		{"huge kid", withHeader(func(h map[string]any) { h["kid"] = strings.Repeat("k", 4000) }), ErrUnknownKey},
		{"no kid", withHeader(func(h map[string]any) { delete(h, "kid") }), ErrUnknownKey},
		{"numeric kid", withHeader(func(h map[string]any) { h["kid"] = 42 }), ErrUnknownKey},
		{"kid in other case", withHeader(func(h map[string]any) { delete(h, "kid"); h["KID"] = key.id }), ErrUnknownKey},
		{"crit header", withHeader(func(h map[string]any) { h["crit"] = []string{"exp"} }), nil},
		{"megabyte of dots", strings.Repeat(".", 1<<20), ErrTokenTooLarge},
		{"one byte over the cap", good + strings.Repeat("A", MaxTokenLen+1-len(good)), ErrTokenTooLarge},
		{"empty", "", nil},
		{"garbage", "not a token", nil},
		{"two segments", seg[0] + "." + seg[1], nil},
		{"four segments", good + "." + seg[2], nil},
		{"padded segments", seg[0] + "==." + seg[1] + "." + seg[2], nil},
		{"header not JSON", enc.EncodeToString([]byte("{")) + "." + seg[1] + "." + seg[2], nil},
		{"payload not JSON", seg[0] + "." + enc.EncodeToString([]byte("[1,2]")) + "." + seg[2], nil},
	}

	verifiers := map[string]*Verifier{
		"own":          NewVerifier(cfg, key),
		"own+external": NewVerifier(cfg, key, idp.provider()),
	}
	for vname, v := range verifiers {
		for _, tc := range cases {
			t.Run(vname+"/"+tc.name, func(t *testing.T) {
				c, err := v.Verify(context.Background(), tc.token)
				mustRefuse(t, err, tc.want)
				if c != nil {
					t.Fatalf("claims %+v returned with error", c)
				}
			})
		}
	}

	// The good token the cases were made from does verify.
	for vname, v := range verifiers {
		if _, err := v.Verify(context.Background(), good); err != nil {
			t.Fatalf("%s: good token refused: %v", vname, err)
		}
	}
}

func TestVerifyRefreshRefusesAccessToken(t *testing.T) {
	key := newTestKey(t)
	iss := NewIssuer(Config{}, key, newMemKV())
	v := NewVerifier(Config{}, key)
	ctx := context.Background()

	pair, err := iss.Pair(ctx, "cust-1", RoleCustomer, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = v.VerifyRefresh(ctx, pair.AccessToken)
	mustRefuse(t, err, ErrWrongTokenType)
	_, err = v.Verify(ctx, pair.RefreshToken)
	mustRefuse(t, err, ErrWrongTokenType)

	// A refresh token without family or jti is refused.
	for _, drop := range []string{"fam", "jti"} {
		c := claimsMap(Config{})
		c["typ"], c["fam"] = TypeRefresh, "F"
		delete(c, drop)
		_, err = v.VerifyRefresh(ctx, signWith(t, jwt.SigningMethodEdDSA, key.signer, key.id, c))
		mustRefuse(t, err, nil)
	}
}

func TestVerifyLeeway(t *testing.T) {
	key := newTestKey(t)
	v := NewVerifier(Config{Leeway: 30 * time.Second}, key)
	for name, f := range map[string]func(jwt.MapClaims){
		"exp 10s ago":       func(c jwt.MapClaims) { c["exp"] = time.Now().Add(-10 * time.Second).Unix() },
		"nbf 10s ahead":     func(c jwt.MapClaims) { c["nbf"] = time.Now().Add(10 * time.Second).Unix() },
		"iat 10s ahead":     func(c jwt.MapClaims) { c["iat"] = time.Now().Add(10 * time.Second).Unix() },
		"aud as one string": func(c jwt.MapClaims) { c["aud"] = DefaultAudience },
		"aud among others":  func(c jwt.MapClaims) { c["aud"] = []string{"x", DefaultAudience} },
	} {
		t.Run(name, func(t *testing.T) {
			c := claimsMap(Config{})
			f(c)
			if _, err := v.Verify(context.Background(), signWith(t, jwt.SigningMethodEdDSA, key.signer, key.id, c)); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestVerifyTooLargeIsFlat shows that an oversized token is answered
// without allocating, whatever its size.
func TestVerifyTooLargeIsFlat(t *testing.T) {
	v := NewVerifier(Config{}, newTestKey(t), newTestIdP(t).provider())
	dots := strings.Repeat(".", 1<<20)
	ctx := context.Background()
	start := time.Now()
	allocs := testing.AllocsPerRun(1000, func() {
		if _, err := v.Verify(ctx, dots); !errors.Is(err, ErrTokenTooLarge) {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per oversized token; want 0", allocs)
	}
	if d := time.Since(start); d > time.Second { // about 3 µs in all, measured
		t.Fatalf("1000 oversized tokens took %v", d)
	}
}

func TestVerifyES256OwnKey(t *testing.T) {
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	key, err := NewKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	if key.Algorithm() != "ES256" {
		t.Fatalf("algorithm %s", key.Algorithm())
	}
	iss := NewIssuer(Config{}, key, nil)
	tok, _, err := iss.Access("tech-1", RoleTechnician, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	c, err := NewVerifier(Config{}, key).Verify(context.Background(), tok)
	if err != nil {
		t.Fatal(err)
	}
	if c.Role != RoleTechnician {
		t.Fatalf("role %s", c.Role)
	}
	// EdDSA under the ES256 kid is refused.
	other := newTestKey(t)
	_, err = NewVerifier(Config{}, key).Verify(context.Background(), signWith(t, jwt.SigningMethodEdDSA, other.signer, key.id, claimsMap(Config{})))
	mustRefuse(t, err, nil)
}

func TestNewVerifierPanicsOnBareKeySource(t *testing.T) {
	idp := newTestIdP(t)
	for name, src := range map[string]KeySource{
		"bare":         idp.keys,
		"no audience":  Provider{Keys: idp.keys, Issuer: "https://idp"},
		"our issuer":   Provider{Keys: idp.keys, Issuer: DefaultIssuer, Audience: "a"},
		"nil provider": (*Provider)(nil),
		"bad role":     Provider{Keys: idp.keys, Issuer: "https://idp", Audience: "a", DefaultRole: "root"},
	} {
		t.Run(name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Fatal("no panic")
				}
			}()
			NewVerifier(Config{}, nil, src)
		})
	}
}

func TestConfigValidate(t *testing.T) {
	if err := (Config{}).Validate(); err != nil {
		t.Fatal(err)
	}
	for _, c := range []Config{
		{AccessTTL: -1},
		{RefreshTTL: -1},
		{Leeway: -1},
		{Leeway: time.Hour},
		{AccessTTL: time.Hour, RefreshTTL: time.Minute},
	} {
		if err := c.Validate(); err == nil {
			t.Errorf("%+v: no error", c)
		}
	}
}

func TestRoles(t *testing.T) {
	for _, s := range []string{"customer", "technician", "agent", "admin", "device"} {
		r, err := ParseRole(s)
		if err != nil || string(r) != s || !r.Valid() {
			t.Errorf("ParseRole(%q) = %q, %v", s, r, err)
		}
	}
	for _, s := range []string{"", "Admin", "root", " admin", strings.Repeat("x", 100)} {
		if _, err := ParseRole(s); !errors.Is(err, ErrInvalidRole) {
			t.Errorf("ParseRole(%q): %v", s, err)
		}
	}
}
