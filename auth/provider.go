package auth

import (
	"context"
	"crypto"
	"encoding/json"
	"errors"
	"fmt"
)

// Provider is an outside identity provider whose access tokens Verify
// accepts: its keys and the claims its tokens must carry. It is a
// KeySource, and the only kind NewVerifier accepts as an external source,
// so no key is ever trusted without an issuer and an audience to check.
//
// Its tokens must be RS256 or ES256 with a kid, and carry exp, iss equal
// to Issuer and aud containing Audience. Their scopes are not carried over
// (ours, like "appliance:ID", are ours to grant), and the role comes from
// RoleClaim and DefaultRole.
type Provider struct {
	// Keys holds the provider's public keys (NewJWKSFile, NewJWKSURL).
	// Required.
	Keys KeySource
	// Issuer is the provider's exact "iss". Required; it must differ from
	// Config.Issuer, since tokens naming our issuer are checked only
	// against our own key.
	Issuer string
	// Audience must be among the token's "aud": usually the client ID the
	// provider gave Switchboard. Required; there is no default, because
	// accepting any audience would accept tokens minted for other apps.
	Audience string
	// RoleClaim names a string claim holding the subject's Role, e.g.
	// "switchboard_role". Zero: no claim is read and every token gets
	// DefaultRole. Naming a claim trusts the provider to grant any role,
	// admin included; a value that is not a Role refuses the token
	// (ErrInvalidRole).
	RoleClaim string
	// DefaultRole is the role of a token without RoleClaim. Zero:
	// RoleCustomer.
	DefaultRole Role
}

// Key implements KeySource with p.Keys.
func (p Provider) Key(ctx context.Context, kid string) (crypto.PublicKey, error) {
	return p.Keys.Key(ctx, kid)
}

// Validate reports what makes p unusable. NewVerifier panics on such a
// provider; call Validate where configuration is checked to say why.
func (p Provider) Validate() error {
	var errs []error
	if p.Keys == nil {
		errs = append(errs, errors.New("auth: provider has no keys"))
	}
	if p.Issuer == "" {
		errs = append(errs, errors.New("auth: provider has no issuer"))
	}
	if p.Audience == "" {
		errs = append(errs, fmt.Errorf("auth: provider %q has no audience", p.Issuer))
	}
	if p.DefaultRole != "" && !p.DefaultRole.Valid() {
		errs = append(errs, fmt.Errorf("auth: provider %q: default role: %w: %q", p.Issuer, ErrInvalidRole, p.DefaultRole))
	}
	return errors.Join(errs...)
}

// role maps an outside token's claims to a Role.
func (p *Provider) role(ec *externalClaims) (Role, error) {
	def := p.DefaultRole
	if def == "" {
		def = RoleCustomer
	}
	if p.RoleClaim == "" {
		return def, nil
	}
	var all map[string]json.RawMessage
	if err := json.Unmarshal(ec.payload, &all); err != nil {
		return "", refused(ErrInvalidToken, "claims", err)
	}
	raw, ok := all[p.RoleClaim]
	if !ok || string(raw) == "null" {
		return def, nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", refused(ErrInvalidRole, "role claim is not a string", nil)
	}
	r := Role(s)
	if !r.Valid() {
		return "", refused(ErrInvalidRole, fmt.Sprintf("%.32q", s), nil)
	}
	return r, nil
}
