package auth

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"os"
	"sync"
	"time"
)

// KeySource finds the public key an outside identity provider signed a
// token with. Wrap it in a Provider to give it to NewVerifier.
type KeySource interface {
	// Key returns the RS256 (*rsa.PublicKey) or ES256 (P-256
	// *ecdsa.PublicKey) key named kid, or an error wrapping ErrUnknownKey.
	// kid comes from an unverified token: an implementation uses it only
	// as a map key, never in a path, URL or query.
	Key(ctx context.Context, kid string) (crypto.PublicKey, error)
}

const (
	// maxJWKSSize bounds a JWKS file or response. Real ones are a few KB
	// (about 10 KB with x5c certificate chains); 256 KiB is generous and
	// still cheap to parse.
	maxJWKSSize = 256 << 10
	// maxKIDLen bounds the kid we look up. Thumbprints are 43 characters,
	// UUIDs 36, and the identity providers we know stay under 64.
	maxKIDLen = 256
	// Bounds on RSA moduli: 2048 bits is the NIST SP 800-131A minimum;
	// above 8192 a verification gets expensive enough to be a lever.
	minRSABits, maxRSABits = 2048, 8192

	// jwksMinRefetch is how often at most a JWKS URL is fetched again,
	// whatever unknown kids arrive: an attacker inventing kids must not
	// make us hammer the identity provider.
	jwksMinRefetch = time.Minute
	// jwksDefaultRefresh is the cache age after which keys are fetched
	// again, so a key the provider withdraws stops being trusted.
	jwksDefaultRefresh = time.Hour
	// jwksFetchTimeout bounds one fetch, connection to last byte.
	jwksFetchTimeout = 10 * time.Second
)

// jwk is one JSON Web Key (RFC 7517 §4, RFC 7518 §6, RFC 8037 §2) with the
// members we read or write.
type jwk struct {
	Kty string `json:"kty"`
	Crv string `json:"crv,omitempty"`
	X   string `json:"x,omitempty"`
	Y   string `json:"y,omitempty"`
	N   string `json:"n,omitempty"`
	E   string `json:"e,omitempty"`
	Kid string `json:"kid,omitempty"`
	Use string `json:"use,omitempty"`
	Alg string `json:"alg,omitempty"`
}

type jwkSet struct {
	Keys []jwk `json:"keys"`
}

// parseJWKS returns the usable signing keys of a JWK Set by kid. Keys we
// do not verify with (other types, curves or algorithms, encryption keys,
// RSA keys outside the size bounds, keys without a kid) are skipped; a
// malformed key of a type we use, or a duplicate kid, fails the document.
func parseJWKS(data []byte) (map[string]crypto.PublicKey, error) {
	if len(data) > maxJWKSSize {
		return nil, fmt.Errorf("%w: larger than %d bytes", ErrInvalidJWKS, maxJWKSSize)
	}
	var set jwkSet
	if err := json.Unmarshal(data, &set); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidJWKS, err)
	}
	keys := make(map[string]crypto.PublicKey, len(set.Keys))
	for i, j := range set.Keys {
		if j.Kid == "" || len(j.Kid) > maxKIDLen || (j.Use != "" && j.Use != "sig") {
			continue
		}
		pub, err := j.publicKey()
		if err != nil {
			return nil, fmt.Errorf("%w: key %d (kid %.64q): %w", ErrInvalidJWKS, i, j.Kid, err)
		}
		if pub == nil {
			continue
		}
		if _, dup := keys[j.Kid]; dup {
			return nil, fmt.Errorf("%w: duplicate kid %.64q", ErrInvalidJWKS, j.Kid)
		}
		keys[j.Kid] = pub
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("%w: no RS256 or ES256 signing key", ErrInvalidJWKS)
	}
	return keys, nil
}

// publicKey returns the key, nil for a key we skip, or an error for a
// malformed one.
func (j jwk) publicKey() (crypto.PublicKey, error) {
	dec := base64.RawURLEncoding
	switch j.Kty {
	case "RSA":
		if j.Alg != "" && j.Alg != "RS256" {
			return nil, nil
		}
		n, err := dec.DecodeString(j.N)
		if err != nil || len(n) == 0 {
			return nil, errors.New("bad modulus")
		}
		e, err := dec.DecodeString(j.E)
		if err != nil || len(e) == 0 || len(e) > 4 {
			return nil, errors.New("bad exponent")
		}
		var exp uint64
		for _, b := range e {
			exp = exp<<8 | uint64(b)
		}
		if exp < 3 || exp%2 == 0 || exp > 1<<31-1 {
			return nil, errors.New("bad exponent")
		}
		mod := new(big.Int).SetBytes(n)
		if bits := mod.BitLen(); bits < minRSABits || bits > maxRSABits {
			return nil, nil
		}
		return &rsa.PublicKey{N: mod, E: int(exp)}, nil
	case "EC":
		if j.Crv != "P-256" || (j.Alg != "" && j.Alg != "ES256") {
			return nil, nil
		}
		x, errX := dec.DecodeString(j.X)
		y, errY := dec.DecodeString(j.Y)
		if errX != nil || errY != nil || len(x) != 32 || len(y) != 32 {
			return nil, errors.New("bad P-256 coordinates")
		}
		pt := make([]byte, 0, 65)
		pt = append(append(append(pt, 4), x...), y...)
		pub, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), pt) // checks the point is on the curve
		if err != nil {
			return nil, err
		}
		return pub, nil
	}
	return nil, nil
}

// staticKeys is a KeySource over a fixed key set.
type staticKeys map[string]crypto.PublicKey

func (s staticKeys) Key(_ context.Context, kid string) (crypto.PublicKey, error) {
	if pub, ok := s[kid]; ok {
		return pub, nil
	}
	return nil, ErrUnknownKey
}

// NewJWKSFile reads the JWK Set at path once and serves its RS256 and
// ES256 keys. To pick up a rotated file, build a new Verifier.
func NewJWKSFile(path string) (KeySource, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("auth: JWKS file: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxJWKSSize+1))
	if err != nil {
		return nil, fmt.Errorf("auth: JWKS file: %w", err)
	}
	keys, err := parseJWKS(data)
	if err != nil {
		return nil, fmt.Errorf("%w (%s)", err, path)
	}
	return staticKeys(keys), nil
}

// NewJWKSURL serves the RS256 and ES256 keys of the JWK Set at url (use
// https). Nothing is fetched until the first Key call, and no goroutine
// runs in the background: the call that needs a fetch makes it, while
// others keep using the keys they have.
//
// Keys are fetched again when the cache is older than refresh (zero: one
// hour; at least one minute), or when an unknown kid arrives, but never
// more than once a minute, so unknown kids cannot make us hammer the
// identity provider; between fetches an unknown kid is ErrUnknownKey. A
// failed fetch keeps the keys already cached. A fetch is bounded by a
// 10-second timeout and a 256 KiB body. client nil means a client with
// that timeout.
func NewJWKSURL(url string, client *http.Client, refresh time.Duration) KeySource {
	if client == nil {
		client = &http.Client{Timeout: jwksFetchTimeout}
	}
	if refresh <= 0 {
		refresh = jwksDefaultRefresh
	}
	refresh = max(refresh, jwksMinRefetch)
	return &jwksURL{url: url, client: client, refresh: refresh, now: time.Now}
}

type jwksURL struct {
	url     string
	client  *http.Client
	refresh time.Duration
	now     func() time.Time // tests move the clock

	mu       sync.Mutex
	keys     map[string]crypto.PublicKey
	fetched  time.Time     // last successful fetch
	tried    time.Time     // last fetch attempt; zero before the first
	inflight chan struct{} // non-nil while a fetch runs; closed when it ends
	lastErr  error         // of the last attempt
}

func (s *jwksURL) Key(ctx context.Context, kid string) (crypto.PublicKey, error) {
	s.mu.Lock()
	pub, known := s.keys[kid]
	now := s.now()
	if known && now.Sub(s.fetched) < s.refresh {
		s.mu.Unlock()
		return pub, nil
	}
	if ch := s.inflight; ch != nil {
		s.mu.Unlock()
		if known {
			return pub, nil // stale but still ours; the running fetch renews it
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return nil, fmt.Errorf("%w: waiting for JWKS: %w", ErrUnknownKey, ctx.Err())
		}
		return s.lookup(kid)
	}
	if !s.tried.IsZero() && now.Sub(s.tried) < jwksMinRefetch {
		err := s.lastErr
		s.mu.Unlock()
		if known {
			return pub, nil
		}
		if err != nil {
			return nil, fmt.Errorf("%w (last JWKS fetch: %w)", ErrUnknownKey, err)
		}
		return nil, ErrUnknownKey
	}
	ch := make(chan struct{})
	s.inflight, s.tried = ch, now
	s.mu.Unlock()

	keys, err := s.fetch(ctx)

	s.mu.Lock()
	if err == nil {
		s.keys, s.fetched = keys, s.now()
	}
	s.lastErr = err
	s.inflight = nil
	close(ch)
	s.mu.Unlock()
	return s.lookup(kid)
}

func (s *jwksURL) lookup(kid string) (crypto.PublicKey, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if pub, ok := s.keys[kid]; ok {
		return pub, nil
	}
	if s.lastErr != nil {
		return nil, fmt.Errorf("%w (last JWKS fetch: %w)", ErrUnknownKey, s.lastErr)
	}
	return nil, ErrUnknownKey
}

// fetch GETs the key set. It is detached from the caller's cancellation
// (but not its values): other callers wait on this fetch, and a rate
// limit slot spent on an aborted fetch would leave new keys unknown for a
// minute.
func (s *jwksURL) fetch(ctx context.Context) (map[string]crypto.PublicKey, error) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), jwksFetchTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.url, nil)
	if err != nil {
		return nil, fmt.Errorf("auth: JWKS URL: %w", err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := s.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("auth: JWKS fetch: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("auth: JWKS fetch: status %s", resp.Status)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxJWKSSize+1))
	if err != nil {
		return nil, fmt.Errorf("auth: JWKS fetch: %w", err)
	}
	return parseJWKS(data)
}
