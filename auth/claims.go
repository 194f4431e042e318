package auth

import (
	"slices"

	"github.com/golang-jwt/jwt/v5"
)

// Token types, the "typ" claim. A token of one type is refused where the
// other is expected (ErrWrongTokenType).
const (
	TypeAccess  = "access"
	TypeRefresh = "refresh"
)

// Claims is the payload of a Switchboard token, and what Verify returns.
//
// For a token from an outside identity provider, Issuer is that provider's
// issuer, Subject is in the provider's namespace (key identities by
// Issuer and Subject together, never Subject alone), Role comes from the
// Provider's mapping, Type is TypeAccess and Scopes and Family are empty.
type Claims struct {
	jwt.RegisteredClaims          // sub, iss, aud, exp, nbf, iat, jti
	Role                 Role     `json:"role"`
	Scopes               []string `json:"scp,omitempty"` // e.g. "appliance:ID" for device tokens
	Type                 string   `json:"typ"`           // TypeAccess | TypeRefresh
	Family               string   `json:"fam,omitempty"` // refresh token family
}

// HasScope reports whether the token carries scope s exactly.
func (c *Claims) HasScope(s string) bool { return slices.Contains(c.Scopes, s) }
