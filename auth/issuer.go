package auth

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/switchboard/switchboard/state"
)

// TokenPair is what a sign-in or a refresh hands the client, named as in
// RFC 6749 §5.1.
type TokenPair struct {
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token"`
	ExpiresIn    int    `json:"expires_in"` // seconds the access token lives
	TokenType    string `json:"token_type"` // always "Bearer"
}

// familyPrefix is the state.KV key prefix of refresh families; the value
// is the jti of the family's current refresh token, or revokedMark.
const familyPrefix = "auth:fam:"

// revokedMark marks a revoked family. A jti (26 base32 characters from
// rand.Text) can never equal it, so no swap can bring a family back.
var revokedMark = []byte("revoked")

// maxFamilyLen bounds a family name given to RevokeFamily; ours are 26.
const maxFamilyLen = 64

// Issuer signs tokens with our key and keeps refresh families in a
// state.KV. It is safe for concurrent use, on one node or many sharing the
// store.
type Issuer struct {
	cfg      Config
	key      *Key
	kv       state.KV
	verifier *Verifier
}

// NewIssuer returns an Issuer signing with key (required; it panics on
// nil) and keeping refresh families in kv. With a nil kv only Access
// works; the refresh methods return an error.
func NewIssuer(cfg Config, key *Key, kv state.KV) *Issuer {
	if key == nil {
		panic("auth: NewIssuer: nil key")
	}
	cfg = cfg.withDefaults()
	return &Issuer{cfg: cfg, key: key, kv: kv, verifier: NewVerifier(cfg, key)}
}

// Access signs an access token for sub with role and scopes, living ttl
// (zero: Config.AccessTTL; not capped, so a longer-lived token, say for
// `switchboard token`, is the caller's choice). It needs no storage. The
// claims returned are those signed.
func (i *Issuer) Access(sub string, role Role, scopes []string, ttl time.Duration) (string, *Claims, error) {
	if ttl == 0 {
		ttl = i.cfg.AccessTTL
	}
	if ttl < 0 {
		return "", nil, fmt.Errorf("auth: negative token TTL %v", ttl)
	}
	return i.sign(sub, role, scopes, TypeAccess, "", ttl)
}

// Pair signs an access token and a refresh token for sub, starting a new
// refresh family.
func (i *Issuer) Pair(ctx context.Context, sub string, role Role, scopes []string) (TokenPair, error) {
	if i.kv == nil {
		return TokenPair{}, errNoKV
	}
	access, _, err := i.Access(sub, role, scopes, 0)
	if err != nil {
		return TokenPair{}, err
	}
	family := rand.Text()
	refresh, rc, err := i.sign(sub, role, scopes, TypeRefresh, family, i.cfg.RefreshTTL)
	if err != nil {
		return TokenPair{}, err
	}
	ok, err := i.kv.SetNX(ctx, familyPrefix+family, []byte(rc.ID), i.familyTTL())
	if err != nil {
		return TokenPair{}, fmt.Errorf("auth: recording refresh family: %w", err)
	}
	if !ok { // 128 random bits collided: the generator is broken
		return TokenPair{}, errors.New("auth: refresh family already exists")
	}
	return i.pair(access, refresh), nil
}

// Refresh rotates a refresh token: it returns a new pair with the same
// subject, role, scopes and family, and the presented token is spent.
//
// A token that is no longer its family's current one (already used, or
// used by a concurrent call that won) revokes the family and returns
// ErrTokenReused; a revoked, expired or unknown family returns ErrRevoked.
// Both match ErrInvalidToken, as do the refusals of VerifyRefresh. Other
// errors are the store's.
func (i *Issuer) Refresh(ctx context.Context, refreshToken string) (TokenPair, error) {
	if i.kv == nil {
		return TokenPair{}, errNoKV
	}
	c, err := i.verifier.VerifyRefresh(ctx, refreshToken)
	if err != nil {
		return TokenPair{}, err
	}
	// Sign first, so a swap that succeeds always has a token to hand out.
	access, _, err := i.Access(c.Subject, c.Role, c.Scopes, 0)
	if err != nil {
		return TokenPair{}, err
	}
	refresh, rc, err := i.sign(c.Subject, c.Role, c.Scopes, TypeRefresh, c.Family, i.cfg.RefreshTTL)
	if err != nil {
		return TokenPair{}, err
	}
	key := familyPrefix + c.Family
	swapped, err := i.kv.CompareAndSwap(ctx, key, []byte(c.ID), []byte(rc.ID), i.familyTTL())
	if err != nil {
		return TokenPair{}, fmt.Errorf("auth: rotating refresh token: %w", err)
	}
	if swapped {
		return i.pair(access, refresh), nil
	}
	cur, err := i.kv.Get(ctx, key)
	switch {
	case errors.Is(err, state.ErrNotFound):
		return TokenPair{}, refused(ErrRevoked, "family expired or unknown", nil)
	case err != nil:
		return TokenPair{}, fmt.Errorf("auth: reading refresh family: %w", err)
	case string(cur) == string(revokedMark):
		return TokenPair{}, refused(ErrRevoked, "", nil)
	}
	// The family has moved on past this token: someone used it before.
	if err := i.RevokeFamily(ctx, c.Family); err != nil {
		return TokenPair{}, fmt.Errorf("auth: revoking reused refresh family: %w", err)
	}
	return TokenPair{}, refused(ErrTokenReused, "", nil)
}

// RevokeFamily revokes every refresh token of family (Claims.Family):
// sign-out, or a stolen device. It is idempotent. Access tokens already
// issued live on until they expire.
func (i *Issuer) RevokeFamily(ctx context.Context, family string) error {
	if i.kv == nil {
		return errNoKV
	}
	if family == "" || len(family) > maxFamilyLen {
		return fmt.Errorf("auth: invalid refresh family name of %d bytes", len(family))
	}
	if err := i.kv.Set(ctx, familyPrefix+family, revokedMark, i.familyTTL()); err != nil {
		return fmt.Errorf("auth: revoking refresh family: %w", err)
	}
	return nil
}

var errNoKV = errors.New("auth: issuer has no state.KV for refresh tokens")

// familyTTL keeps a family record as long as any of its tokens could still
// verify: each is issued before the record is written or revoked and lives
// RefreshTTL plus the leeway. After that the record may go; a missing
// record reads as revoked.
func (i *Issuer) familyTTL() time.Duration { return i.cfg.RefreshTTL + i.cfg.Leeway }

func (i *Issuer) pair(access, refresh string) TokenPair {
	return TokenPair{
		AccessToken:  access,
		RefreshToken: refresh,
		ExpiresIn:    int(i.cfg.AccessTTL / time.Second),
		TokenType:    "Bearer",
	}
}

func (i *Issuer) sign(sub string, role Role, scopes []string, typ, family string, ttl time.Duration) (string, *Claims, error) {
	if sub == "" {
		return "", nil, errors.New("auth: empty subject")
	}
	if !role.Valid() {
		return "", nil, fmt.Errorf("%w: %q", ErrInvalidRole, role)
	}
	now := time.Now()
	c := &Claims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    i.cfg.Issuer,
			Subject:   sub,
			Audience:  jwt.ClaimStrings{i.cfg.Audience},
			ExpiresAt: jwt.NewNumericDate(now.Add(ttl)),
			IssuedAt:  jwt.NewNumericDate(now),
			ID:        rand.Text(),
		},
		Role:   role,
		Scopes: slices.Clone(scopes),
		Type:   typ,
		Family: family,
	}
	t := jwt.NewWithClaims(i.key.method, c)
	t.Header["kid"] = i.key.id
	s, err := t.SignedString(i.key.signer)
	if err != nil {
		return "", nil, fmt.Errorf("auth: signing token: %w", err)
	}
	if len(s) > MaxTokenLen {
		return "", nil, fmt.Errorf("%w: %d bytes; fewer or shorter scopes", ErrTokenTooLarge, len(s))
	}
	return s, c, nil
}
