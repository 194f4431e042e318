package auth

import "errors"

// Errors returned by this package. The gateway maps them to problem JSON.
//
// Every error that Verify, VerifyRefresh or Refresh returns for a token they
// refuse matches ErrInvalidToken (errors.Is), and also the more specific
// error below when one applies, so a handler can answer 401 for all of them
// and still tell a client that should refresh (ErrExpired) from one that
// must sign in again. Errors that are not about the token (a state.KV
// failure) match neither: they are the server's fault.
var (
	// ErrInvalidToken: the token is refused: malformed, badly signed, with a
	// disallowed algorithm, or with claims that do not check out.
	ErrInvalidToken = errors.New("auth: invalid token")

	// ErrTokenTooLarge: the token is longer than MaxTokenLen and was refused
	// without being parsed. Issuing returns it too when scopes would make a
	// token we could not verify.
	ErrTokenTooLarge = errors.New("auth: token too large")

	// ErrExpired: the token was good but its exp (plus the leeway) has passed.
	// For an access token the client should refresh.
	ErrExpired = errors.New("auth: token expired")

	// ErrWrongTokenType: a refresh token presented as an access token, or
	// the other way round.
	ErrWrongTokenType = errors.New("auth: wrong token type")

	// ErrUnknownKey: the token's kid is missing or names no key we trust.
	ErrUnknownKey = errors.New("auth: unknown signing key")

	// ErrInvalidRole: a role that is not one of the Role constants, from
	// ParseRole, from an issuing call, or inside a token.
	ErrInvalidRole = errors.New("auth: invalid role")

	// ErrTokenReused: a refresh token that had already been used was
	// presented again (or twice at once). Its whole family is now revoked.
	ErrTokenReused = errors.New("auth: refresh token reused; family revoked")

	// ErrRevoked: the refresh token's family was revoked (by reuse or by
	// RevokeFamily), has expired, or is unknown to this store.
	ErrRevoked = errors.New("auth: refresh token revoked")

	// ErrInsecureKeyFile: the signing key file is readable or writable by
	// group or others, or is not a regular file. LoadOrCreateKey refuses to
	// use it, as ssh refuses a loose private key: anyone who can read it can
	// mint admin tokens. Fix it with chmod 600.
	ErrInsecureKeyFile = errors.New("auth: signing key file has insecure permissions")

	// ErrUnsupportedKey: a signing key that is neither Ed25519 nor ECDSA
	// P-256, or a key file that holds no such key.
	ErrUnsupportedKey = errors.New("auth: unsupported signing key")

	// ErrInvalidJWKS: a JWKS document that cannot be used: not JSON, too
	// large, a malformed key, a duplicate kid, or no usable key at all.
	ErrInvalidJWKS = errors.New("auth: invalid JWKS")
)

// tokenError is a refused token. It matches ErrInvalidToken and its kind,
// and keeps the underlying cause (a jwt or KeySource error) for logs.
type tokenError struct {
	detail string
	errs   []error // the kind (ErrInvalidToken or a more specific error), then any cause
}

func refused(kind error, detail string, cause error) *tokenError {
	if cause == nil {
		return &tokenError{detail: detail, errs: []error{kind}}
	}
	return &tokenError{detail: detail, errs: []error{kind, cause}}
}

func (e *tokenError) Error() string {
	s := e.errs[0].Error()
	if e.detail != "" {
		s += ": " + e.detail
	}
	if len(e.errs) > 1 {
		s += ": " + e.errs[1].Error()
	}
	return s
}

// Is makes every refused token match ErrInvalidToken whatever its kind.
func (e *tokenError) Is(target error) bool { return target == ErrInvalidToken }

// Unwrap returns the kind and the cause. It returns the same slice every
// time, so matching errors allocates nothing.
func (e *tokenError) Unwrap() []error { return e.errs }

// errTooLarge is preallocated so that refusing an oversized token allocates
// nothing at all.
var errTooLarge error = refused(ErrTokenTooLarge, "longer than MaxTokenLen", nil)
