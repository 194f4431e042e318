package auth

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/golang-jwt/jwt/v5"
)

// MaxTokenLen is the longest token Verify looks at, in bytes. Longer ones
// are refused with ErrTokenTooLarge before any parsing, so a megabyte of
// junk costs one comparison and no memory. 8 KiB is the usual cap on a
// whole HTTP header line (nginx large_client_header_buffers 8k, Apache
// LimitRequestFieldSize 8190), so no longer token could reach us in an
// Authorization header through common proxies anyway; ours are about
// 500 bytes and identity providers' a few KB.
const MaxTokenLen = 8 << 10

// Algorithms allowed, per kind of key. Never "none", never HMAC: with
// HS256 allowed, our public key would be a valid HMAC secret.
var (
	ownMethods      = []string{jwt.SigningMethodEdDSA.Alg(), jwt.SigningMethodES256.Alg()}
	externalMethods = []string{jwt.SigningMethodRS256.Alg(), jwt.SigningMethodES256.Alg()}
)

// Verifier checks tokens signed with our key and, optionally, access
// tokens of outside identity providers. It is safe for concurrent use.
type Verifier struct {
	cfg       Config
	own       map[string]*Key // by kid
	ownParser *jwt.Parser
	ext       map[string]*Provider // by issuer
	extParser *jwt.Parser          // claims are checked per provider, see verifyExternal
	extCheck  map[string]*jwt.Validator
}

// NewVerifier returns a Verifier of tokens signed with key (nil: none of
// ours) and of access tokens from the outside providers in external.
//
// Each external source must be a Provider (or *Provider) that passes
// Validate, with an issuer of its own; NewVerifier panics otherwise, since
// a key trusted without an issuer and an audience to check would accept
// any token its owner ever signed. Check providers with Provider.Validate
// at startup to report a clear message instead.
func NewVerifier(cfg Config, key *Key, external ...KeySource) *Verifier {
	cfg = cfg.withDefaults()
	v := &Verifier{
		cfg: cfg,
		own: make(map[string]*Key, 1),
		ownParser: jwt.NewParser(
			jwt.WithValidMethods(ownMethods),
			jwt.WithExpirationRequired(),
			jwt.WithIssuer(cfg.Issuer),
			jwt.WithAudience(cfg.Audience),
			jwt.WithIssuedAt(),
			jwt.WithLeeway(cfg.Leeway),
			jwt.WithStrictDecoding(), // one encoding per token: no malleable variants
		),
	}
	if key != nil {
		v.own[key.id] = key
	}
	if len(external) == 0 {
		return v
	}
	v.ext = make(map[string]*Provider, len(external))
	v.extCheck = make(map[string]*jwt.Validator, len(external))
	v.extParser = jwt.NewParser(
		jwt.WithValidMethods(externalMethods),
		jwt.WithoutClaimsValidation(), // done right after, with the provider's validator
		jwt.WithStrictDecoding(),
	)
	for i, src := range external {
		var p Provider
		switch s := src.(type) {
		case Provider:
			p = s
		case *Provider:
			if s == nil {
				panic(fmt.Sprintf("auth: NewVerifier: external source %d is a nil *Provider", i))
			}
			p = *s
		default:
			panic(fmt.Sprintf("auth: NewVerifier: external source %d is a %T; wrap it in an auth.Provider with its issuer and audience", i, src))
		}
		if err := p.Validate(); err != nil {
			panic(fmt.Sprintf("auth: NewVerifier: external source %d: %v", i, err))
		}
		if p.Issuer == cfg.Issuer {
			panic(fmt.Sprintf("auth: NewVerifier: provider issuer %q is our own issuer", p.Issuer))
		}
		if _, dup := v.ext[p.Issuer]; dup {
			panic(fmt.Sprintf("auth: NewVerifier: two providers with issuer %q", p.Issuer))
		}
		v.ext[p.Issuer] = &p
		v.extCheck[p.Issuer] = jwt.NewValidator(
			jwt.WithExpirationRequired(),
			jwt.WithIssuer(p.Issuer),
			jwt.WithAudience(p.Audience),
			jwt.WithIssuedAt(),
			jwt.WithLeeway(cfg.Leeway),
		)
	}
	return v
}

// Verify checks an access token, ours or an outside provider's, and
// returns its claims. Every refusal matches ErrInvalidToken; see errors.go
// for the specific ones. ctx goes to an outside provider's KeySource; with
// NewJWKSURL it bounds waiting for a fetch another call started.
func (v *Verifier) Verify(ctx context.Context, token string) (*Claims, error) {
	return v.verify(ctx, token, TypeAccess)
}

// VerifyRefresh checks one of our refresh tokens (outside providers'
// tokens are never refresh tokens) and returns its claims. It does not
// consult the family record: Issuer.Refresh does.
func (v *Verifier) VerifyRefresh(ctx context.Context, token string) (*Claims, error) {
	return v.verify(ctx, token, TypeRefresh)
}

func (v *Verifier) verify(ctx context.Context, token, typ string) (*Claims, error) {
	if len(token) > MaxTokenLen {
		return nil, errTooLarge
	}
	if token == "" {
		return nil, refused(ErrInvalidToken, "empty", nil)
	}
	if len(v.ext) > 0 {
		// Route by kid before the payload is decoded: an outside token's
		// claims need not fit Claims (a string "scp", an array "role").
		kid, alg, err := peekHeader(token)
		if err != nil {
			return nil, err
		}
		if _, ours := v.own[kid]; !ours {
			if typ != TypeAccess {
				return nil, refused(ErrUnknownKey, "refresh tokens are ours only", nil)
			}
			if !slices.Contains(externalMethods, alg) {
				// Not our kid, and no provider signs like that.
				return nil, refused(ErrUnknownKey, "", nil)
			}
			return v.verifyExternal(ctx, token)
		}
	}
	return v.verifyOwn(token, typ)
}

func (v *Verifier) verifyOwn(token, typ string) (*Claims, error) {
	c := new(Claims)
	if _, err := v.ownParser.ParseWithClaims(token, c, v.ownKey); err != nil {
		return nil, classify(err)
	}
	if c.Type != typ {
		return nil, refused(ErrWrongTokenType, fmt.Sprintf("want %s, got %.16q", typ, c.Type), nil)
	}
	if c.Subject == "" {
		return nil, refused(ErrInvalidToken, "no subject", nil)
	}
	if !c.Role.Valid() {
		return nil, refused(ErrInvalidRole, fmt.Sprintf("%.32q", c.Role), nil)
	}
	if typ == TypeRefresh && (c.Family == "" || c.ID == "") {
		return nil, refused(ErrInvalidToken, "refresh token without family or jti", nil)
	}
	return c, nil
}

// ownKey is the jwt.Keyfunc for our tokens: kid is a map key, nothing else.
func (v *Verifier) ownKey(t *jwt.Token) (any, error) {
	if err := checkHeader(t); err != nil {
		return nil, err
	}
	kid, _ := t.Header["kid"].(string)
	k, ok := v.own[kid]
	if !ok {
		return nil, refused(ErrUnknownKey, "", nil)
	}
	if t.Method.Alg() != k.method.Alg() {
		return nil, refused(ErrInvalidToken, "algorithm does not match key", nil)
	}
	return k.pub, nil
}

// externalClaims decodes an outside token's registered claims and keeps
// the payload for a role claim; other claims may have any shape.
type externalClaims struct {
	jwt.RegisteredClaims
	payload []byte
}

func (c *externalClaims) UnmarshalJSON(b []byte) error {
	c.payload = bytes.Clone(b) // json.Unmarshaler must not keep b
	return json.Unmarshal(b, &c.RegisteredClaims)
}

func (v *Verifier) verifyExternal(ctx context.Context, token string) (*Claims, error) {
	var (
		ec externalClaims
		p  *Provider
	)
	_, err := v.extParser.ParseWithClaims(token, &ec, func(t *jwt.Token) (any, error) {
		if err := checkHeader(t); err != nil {
			return nil, err
		}
		// The unverified iss only picks which provider's keys to try; the
		// provider's validator checks it again once the signature holds.
		if p = v.ext[ec.Issuer]; p == nil {
			return nil, refused(ErrUnknownKey, "issuer not trusted", nil)
		}
		kid, _ := t.Header["kid"].(string)
		if kid == "" || len(kid) > maxKIDLen {
			return nil, refused(ErrUnknownKey, "", nil)
		}
		pub, err := p.Keys.Key(ctx, kid)
		if err != nil {
			return nil, refused(ErrUnknownKey, "", err)
		}
		if !keyFits(t.Method.Alg(), pub) {
			return nil, refused(ErrInvalidToken, "algorithm does not match key", nil)
		}
		return pub, nil
	})
	if err != nil {
		return nil, classify(err)
	}
	if err := v.extCheck[p.Issuer].Validate(&ec); err != nil {
		return nil, classify(fmt.Errorf("%w: %w", jwt.ErrTokenInvalidClaims, err))
	}
	if ec.Subject == "" {
		return nil, refused(ErrInvalidToken, "no subject", nil)
	}
	role, err := p.role(&ec)
	if err != nil {
		return nil, err
	}
	// Subjects are only unique per issuer: namespace outside ones so a
	// provider's "alice" can never act as our own "alice".
	ec.Subject = ExternalSubject(p.Issuer, ec.Subject)
	return &Claims{RegisteredClaims: ec.RegisteredClaims, Role: role, Type: TypeAccess}, nil
}

// ExternalSubject is the subject Verify reports for an outside provider's
// token: the provider's issuer, "|", and its subject.
func ExternalSubject(issuer, sub string) string { return issuer + "|" + sub }

// keyFits reports whether pub is the kind of key alg verifies with.
func keyFits(alg string, pub any) bool {
	switch alg {
	case jwt.SigningMethodRS256.Alg():
		_, ok := pub.(*rsa.PublicKey)
		return ok
	case jwt.SigningMethodES256.Alg():
		k, ok := pub.(*ecdsa.PublicKey)
		return ok && k.Curve == elliptic.P256()
	}
	return false
}

// checkHeader refuses header parameters we must understand but do not:
// RFC 7515 §4.1.11 says a token with "crit" extensions we don't implement
// is invalid. Key-locating headers (jku, jwk, x5u, x5c) are simply never
// used.
func checkHeader(t *jwt.Token) error {
	if _, ok := t.Header["crit"]; ok {
		return refused(ErrInvalidToken, "crit header not supported", nil)
	}
	return nil
}

// peekHeader decodes only the header to read kid and alg. It uses a map,
// as the jwt parser does, so both read the same members.
func peekHeader(token string) (kid, alg string, err error) {
	head, _, ok := strings.Cut(token, ".")
	if !ok {
		return "", "", refused(ErrInvalidToken, "malformed", nil)
	}
	b, err := base64.RawURLEncoding.Strict().DecodeString(head)
	if err != nil {
		return "", "", refused(ErrInvalidToken, "malformed header", nil)
	}
	var h map[string]any
	if err := json.Unmarshal(b, &h); err != nil {
		return "", "", refused(ErrInvalidToken, "malformed header", nil)
	}
	kid, ok = h["kid"].(string)
	if !ok || kid == "" || len(kid) > maxKIDLen {
		return "", "", refused(ErrUnknownKey, "", nil)
	}
	alg, _ = h["alg"].(string)
	return kid, alg, nil
}

// classify turns a jwt error into a refusal of the right kind.
func classify(err error) error {
	var te *tokenError
	if errors.As(err, &te) {
		return te // from our key function
	}
	if errors.Is(err, jwt.ErrTokenExpired) {
		return refused(ErrExpired, "", err)
	}
	return refused(ErrInvalidToken, "", err)
}
