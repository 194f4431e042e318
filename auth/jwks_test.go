package auth

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// testIdP is an outside identity provider with an RS256 and an ES256 key.
type testIdP struct {
	rsa       *rsa.PrivateKey
	rsaKID    string
	rsaPubPEM []byte
	ec        *ecdsa.PrivateKey
	ecKID     string
	issuer    string
	audience  string
	keys      KeySource // both keys, from the JWKS document
}

// idpKeys are generated once: RSA key generation is slow.
var idpKeys = sync.OnceValues(func() (*rsa.PrivateKey, *ecdsa.PrivateKey) {
	r, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	e, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		panic(err)
	}
	return r, e
})

func newTestIdP(t testing.TB) *testIdP {
	t.Helper()
	r, e := idpKeys()
	der, err := x509.MarshalPKIXPublicKey(&r.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	p := &testIdP{
		rsa: r, rsaKID: "idp-rsa-1",
		rsaPubPEM: pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}),
		ec:        e, ecKID: "idp-ec-1",
		issuer: "https://idp.example.com/", audience: "switchboard-app",
	}
	keys, err := parseJWKS(p.jwks(p.rsaJWK(), p.ecJWK()))
	if err != nil {
		t.Fatal(err)
	}
	p.keys = staticKeys(keys)
	return p
}

func rsaJWK(kid string, pub *rsa.PublicKey) jwk {
	return jwk{Kty: "RSA", Kid: kid, Use: "sig", Alg: "RS256",
		N: b64(pub.N.Bytes()), E: b64(big.NewInt(int64(pub.E)).Bytes())}
}

func ecJWK(kid string, pub *ecdsa.PublicKey) jwk {
	pt, err := pub.Bytes()
	if err != nil {
		panic(err)
	}
	return jwk{Kty: "EC", Crv: "P-256", Kid: kid, X: b64(pt[1:33]), Y: b64(pt[33:])}
}

func (p *testIdP) rsaJWK() jwk { return rsaJWK(p.rsaKID, &p.rsa.PublicKey) }
func (p *testIdP) ecJWK() jwk  { return ecJWK(p.ecKID, &p.ec.PublicKey) }

func (p *testIdP) jwks(keys ...jwk) []byte {
	b, err := json.Marshal(jwkSet{Keys: keys})
	if err != nil {
		panic(err)
	}
	return b
}

// claims are those of a good token from this provider, shaped like a
// real one: a string aud, a string scp, an unrelated typ.
func (p *testIdP) claims() jwt.MapClaims {
	now := time.Now()
	return jwt.MapClaims{
		"iss": p.issuer, "sub": "idp-user-7", "aud": p.audience,
		"exp": now.Add(time.Hour).Unix(), "iat": now.Unix(),
		"scp": "openid profile", "typ": "Bearer", "email": "joe@example.com",
	}
}

func (p *testIdP) provider() Provider {
	return Provider{Keys: p.keys, Issuer: p.issuer, Audience: p.audience}
}

func (p *testIdP) signRSA(t testing.TB, c jwt.MapClaims) string {
	return signWith(t, jwt.SigningMethodRS256, p.rsa, p.rsaKID, c)
}

func (p *testIdP) signEC(t testing.TB, c jwt.MapClaims) string {
	return signWith(t, jwt.SigningMethodES256, p.ec, p.ecKID, c)
}

func writeFile(t *testing.T, data []byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "jwks.json")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestJWKSFile(t *testing.T) {
	idp := newTestIdP(t)
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	edPub, _, _ := ed25519.GenerateKey(rand.Reader)
	enc := ecJWK("enc-key", &idp.ec.PublicKey)
	enc.Use = "enc"
	rs512 := rsaJWK("rs512", &idp.rsa.PublicKey)
	rs512.Alg = "RS512"
	noKID := ecJWK("", &idp.ec.PublicKey)
	p384JWK := jwk{Kty: "EC", Crv: "P-384", Kid: "p384", X: b64(p384.X.Bytes()), Y: b64(p384.Y.Bytes())}

	path := writeFile(t, idp.jwks(idp.rsaJWK(), idp.ecJWK(),
		rsaJWK("small", &small.PublicKey), p384JWK, enc, rs512, noKID,
		jwk{Kty: "OKP", Crv: "Ed25519", Kid: "ed", X: b64(edPub)},
	))
	src, err := NewJWKSFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(src.(staticKeys)); n != 2 {
		t.Fatalf("%d keys kept; want the RS256 and the ES256 one", n)
	}
	ourKey := newTestKey(t)
	prov := Provider{Keys: src, Issuer: idp.issuer, Audience: idp.audience}
	v := NewVerifier(Config{}, ourKey, prov)
	ctx := context.Background()

	for name, tok := range map[string]string{"RS256": idp.signRSA(t, idp.claims()), "ES256": idp.signEC(t, idp.claims())} {
		t.Run(name, func(t *testing.T) {
			c, err := v.Verify(ctx, tok)
			if err != nil {
				t.Fatal(err)
			}
			if c.Subject != ExternalSubject(idp.issuer, "idp-user-7") || c.Issuer != idp.issuer || c.Role != RoleCustomer || c.Type != TypeAccess || c.Scopes != nil || c.Family != "" {
				t.Fatalf("claims %+v", c)
			}
			if _, err := v.VerifyRefresh(ctx, tok); !errors.Is(err, ErrInvalidToken) {
				t.Fatalf("outside token accepted as refresh token: %v", err)
			}
		})
	}

	// Our own tokens still verify next to the provider.
	own, _, err := NewIssuer(Config{}, ourKey, nil).Access("cust-1", RoleCustomer, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify(ctx, own); err != nil {
		t.Fatal(err)
	}

	mod := func(f func(jwt.MapClaims)) jwt.MapClaims {
		c := idp.claims()
		f(c)
		return c
	}
	cases := []struct {
		name  string
		token string
		want  error
	}{
		{"wrong iss", idp.signRSA(t, mod(func(c jwt.MapClaims) { c["iss"] = "https://evil.example/" })), nil},
		{"our iss, signed by the provider", idp.signRSA(t, mod(func(c jwt.MapClaims) { c["iss"] = DefaultIssuer; c["aud"] = DefaultAudience })), nil},
		{"no iss", idp.signRSA(t, mod(func(c jwt.MapClaims) { delete(c, "iss") })), nil},
		{"wrong aud", idp.signRSA(t, mod(func(c jwt.MapClaims) { c["aud"] = "another-app" })), nil},
		{"our aud", idp.signRSA(t, mod(func(c jwt.MapClaims) { c["aud"] = DefaultAudience })), nil},
		{"no aud", idp.signRSA(t, mod(func(c jwt.MapClaims) { delete(c, "aud") })), nil},
		{"no exp", idp.signEC(t, mod(func(c jwt.MapClaims) { delete(c, "exp") })), nil},
		{"expired", idp.signEC(t, mod(func(c jwt.MapClaims) { c["exp"] = time.Now().Add(-time.Hour).Unix() })), ErrExpired},
		{"nbf in the future", idp.signEC(t, mod(func(c jwt.MapClaims) { c["nbf"] = time.Now().Add(time.Hour).Unix() })), nil},
		{"no sub", idp.signEC(t, mod(func(c jwt.MapClaims) { delete(c, "sub") })), nil},
		{"RS256 under the EC kid", signWith(t, jwt.SigningMethodRS256, idp.rsa, idp.ecKID, idp.claims()), nil},
		{"ES256 under the RSA kid", signWith(t, jwt.SigningMethodES256, idp.ec, idp.rsaKID, idp.claims()), nil},
		{"PS256", signWith(t, jwt.SigningMethodPS256, idp.rsa, idp.rsaKID, idp.claims()), nil},
		{"RS512 (published key)", signWith(t, jwt.SigningMethodRS512, idp.rsa, "rs512", idp.claims()), nil},
		{"HS256 keyed with the RSA public key PEM", signWith(t, jwt.SigningMethodHS256, idp.rsaPubPEM, idp.rsaKID, idp.claims()), nil},
		{"RS256 with a 1024-bit key", signWith(t, jwt.SigningMethodRS256, small, "small", idp.claims()), ErrUnknownKey},
		{"encryption key", signWith(t, jwt.SigningMethodES256, idp.ec, "enc-key", idp.claims()), ErrUnknownKey},
		{"unknown kid", signWith(t, jwt.SigningMethodES256, idp.ec, "idp-ec-2", idp.claims()), ErrUnknownKey},
		{"path kid", signWith(t, jwt.SigningMethodES256, idp.ec, "../../etc/passwd", idp.claims()), ErrUnknownKey},
		{"no kid", signWith(t, jwt.SigningMethodES256, idp.ec, "", idp.claims()), ErrUnknownKey},
		{"tampered", func() string {
			parts := strings.Split(idp.signEC(t, idp.claims()), ".")
			other := strings.Split(idp.signEC(t, mod(func(c jwt.MapClaims) { c["sub"] = "admin" })), ".")
			return parts[0] + "." + other[1] + "." + parts[2]
		}(), nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := v.Verify(ctx, tc.token)
			mustRefuse(t, err, tc.want)
		})
	}
}

func TestProviderRoleClaim(t *testing.T) {
	idp := newTestIdP(t)
	p := idp.provider()
	p.RoleClaim, p.DefaultRole = "sb_role", RoleTechnician
	v := NewVerifier(Config{}, nil, p)
	ctx := context.Background()
	for _, tc := range []struct {
		value any // nil: claim absent
		want  Role
		err   error
	}{
		{nil, RoleTechnician, nil},
		{"agent", RoleAgent, nil},
		{"admin", RoleAdmin, nil},
		{"root", "", ErrInvalidRole},
		{"Agent", "", ErrInvalidRole},
		{42, "", ErrInvalidRole},
		{[]string{"agent"}, "", ErrInvalidRole},
	} {
		c := idp.claims()
		if tc.value != nil {
			c["sb_role"] = tc.value
		}
		got, err := v.Verify(ctx, idp.signEC(t, c))
		if tc.err != nil {
			mustRefuse(t, err, tc.err)
			continue
		}
		if err != nil {
			t.Fatalf("%v: %v", tc.value, err)
		}
		if got.Role != tc.want {
			t.Fatalf("%v: role %s, want %s", tc.value, got.Role, tc.want)
		}
	}
	// Without RoleClaim a "role" claim in the token is ignored.
	c := idp.claims()
	c["role"] = "admin"
	got, err := NewVerifier(Config{}, nil, idp.provider()).Verify(ctx, idp.signEC(t, c))
	if err != nil || got.Role != RoleCustomer {
		t.Fatalf("role %v, %v; want customer", got, err)
	}
}

func TestJWKSFileInvalid(t *testing.T) {
	idp := newTestIdP(t)
	offCurve := idp.ecJWK()
	offCurve.Y = offCurve.X
	badN := idp.rsaJWK()
	badN.N = "!!"
	evenE := idp.rsaJWK()
	evenE.E = b64([]byte{2})
	for name, doc := range map[string][]byte{
		"not JSON":        []byte("{"),
		"no keys":         []byte(`{"keys":[]}`),
		"keys not a list": []byte(`{"keys":{}}`),
		"only skipped":    []byte(`{"keys":[{"kty":"oct","kid":"h","k":"c2VjcmV0"}]}`),
		"duplicate kid":   idp.jwks(idp.ecJWK(), ecJWK(idp.ecKID, &idp.ec.PublicKey)),
		"point off curve": idp.jwks(offCurve),
		"bad modulus":     idp.jwks(badN),
		"even exponent":   idp.jwks(evenE),
		"too large":       append(idp.jwks(idp.ecJWK()), make([]byte, maxJWKSSize)...),
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := NewJWKSFile(writeFile(t, doc)); !errors.Is(err, ErrInvalidJWKS) {
				t.Fatalf("error %v; want ErrInvalidJWKS", err)
			}
		})
	}
	if _, err := NewJWKSFile(filepath.Join(t.TempDir(), "missing.json")); err == nil {
		t.Fatal("missing file accepted")
	}
}

// fakeClock is a clock tests move by hand.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// jwksServer serves a JWK Set that tests can change, and counts fetches.
type jwksServer struct {
	*httptest.Server
	hits   atomic.Int64
	mu     sync.Mutex
	doc    []byte
	status int
	paths  []string
	gate   chan struct{} // if set, each request waits for it to close
}

func newJWKSServer(t *testing.T, doc []byte) *jwksServer {
	s := &jwksServer{doc: doc, status: http.StatusOK}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.hits.Add(1)
		s.mu.Lock()
		doc, status, gate := s.doc, s.status, s.gate
		s.paths = append(s.paths, r.URL.RequestURI())
		s.mu.Unlock()
		if gate != nil {
			<-gate
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		w.Write(doc)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *jwksServer) set(doc []byte, status int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.doc, s.status = doc, status
}

func newURLSource(t *testing.T, s *jwksServer) (*jwksURL, *fakeClock) {
	t.Helper()
	clock := &fakeClock{t: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)}
	src := NewJWKSURL(s.URL+"/jwks.json", s.Client(), time.Hour).(*jwksURL)
	src.now = clock.Now
	return src, clock
}

func TestJWKSURL(t *testing.T) {
	checkGoroutines(t)
	idp := newTestIdP(t)
	srv := newJWKSServer(t, idp.jwks(idp.rsaJWK()))
	src, clock := newURLSource(t, srv)
	prov := idp.provider()
	prov.Keys = src
	v := NewVerifier(Config{}, newTestKey(t), prov)
	ctx := context.Background()
	rsaTok, ecTok := idp.signRSA(t, idp.claims()), idp.signEC(t, idp.claims())
	unknownTok := signWith(t, jwt.SigningMethodES256, idp.ec, "../../etc/passwd?x=1", idp.claims())

	expect := func(step string, tok string, ok bool, hits int64) {
		t.Helper()
		_, err := v.Verify(ctx, tok)
		if ok && err != nil {
			t.Fatalf("%s: %v", step, err)
		}
		if !ok {
			mustRefuse(t, err, ErrUnknownKey)
		}
		if got := srv.hits.Load(); got != hits {
			t.Fatalf("%s: %d fetches; want %d", step, got, hits)
		}
	}

	expect("first use fetches", rsaTok, true, 1)
	expect("cached", rsaTok, true, 1)
	expect("unknown kid within a minute of the first fetch", unknownTok, false, 1)
	clock.Advance(61 * time.Second)
	expect("unknown kid refetches once", unknownTok, false, 2)
	for range 20 {
		expect("more unknown kids within the minute", unknownTok, false, 2)
	}
	srv.set(idp.jwks(idp.rsaJWK(), idp.ecJWK()), http.StatusOK)
	expect("new key, still rate-limited", ecTok, false, 2)
	clock.Advance(61 * time.Second)
	expect("new key after a minute", ecTok, true, 3)
	expect("cached again", rsaTok, true, 3)

	srv.set([]byte("oops"), http.StatusInternalServerError)
	clock.Advance(2 * time.Hour)
	expect("stale keys survive a failed refresh", rsaTok, true, 4)
	expect("failed refresh is rate-limited too", ecTok, true, 4)
	_, err := v.Verify(ctx, unknownTok)
	if mustRefuse(t, err, ErrUnknownKey); !strings.Contains(err.Error(), "500") {
		t.Fatalf("error %q does not carry the fetch failure", err)
	}

	srv.set(idp.jwks(idp.ecJWK()), http.StatusOK) // the provider withdraws its RSA key
	clock.Advance(61 * time.Second)
	expect("withdrawn key is dropped on refresh", rsaTok, false, 5)
	expect("the other key stays", ecTok, true, 5)

	srv.mu.Lock()
	defer srv.mu.Unlock()
	for _, p := range srv.paths {
		if p != "/jwks.json" {
			t.Fatalf("fetched %q: the kid leaked into the request", p)
		}
	}
}

func TestJWKSURLConcurrentUnknownKids(t *testing.T) {
	checkGoroutines(t)
	idp := newTestIdP(t)
	srv := newJWKSServer(t, idp.jwks(idp.rsaJWK()))
	gate := make(chan struct{})
	srv.mu.Lock()
	srv.gate = gate // hold the first fetch until everyone is waiting on it
	srv.mu.Unlock()
	src, _ := newURLSource(t, srv)
	prov := idp.provider()
	prov.Keys = src
	v := NewVerifier(Config{}, nil, prov)
	tok := signWith(t, jwt.SigningMethodES256, idp.ec, "unknown", idp.claims())

	const n = 32
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for range n {
		wg.Go(func() {
			_, err := v.Verify(context.Background(), tok)
			errs <- err
		})
	}
	// Poll until the one fetch is in flight, then let it finish.
	for deadline := time.Now().Add(5 * time.Second); srv.hits.Load() == 0; {
		if time.Now().After(deadline) {
			t.Fatal("no fetch started")
		}
		time.Sleep(time.Millisecond)
	}
	close(gate)
	wg.Wait()
	close(errs)
	for err := range errs {
		mustRefuse(t, err, ErrUnknownKey)
	}
	if got := srv.hits.Load(); got != 1 {
		t.Fatalf("%d fetches for %d concurrent unknown kids; want 1", got, n)
	}
}

func TestJWKSURLBadResponses(t *testing.T) {
	checkGoroutines(t)
	idp := newTestIdP(t)
	huge := append([]byte(`{"keys":[]}`), make([]byte, maxJWKSSize)...)
	for name, doc := range map[string][]byte{
		"too large": huge,
		"not JSON":  []byte("<html>"),
	} {
		t.Run(name, func(t *testing.T) {
			srv := newJWKSServer(t, doc)
			src, _ := newURLSource(t, srv)
			_, err := src.Key(context.Background(), idp.ecKID)
			if !errors.Is(err, ErrUnknownKey) || !errors.Is(err, ErrInvalidJWKS) {
				t.Fatalf("error %v; want ErrUnknownKey carrying ErrInvalidJWKS", err)
			}
		})
	}
	t.Run("bad URL", func(t *testing.T) {
		src := NewJWKSURL("://nope", nil, 0)
		if _, err := src.Key(context.Background(), "k"); !errors.Is(err, ErrUnknownKey) {
			t.Fatal(err)
		}
	})
}
