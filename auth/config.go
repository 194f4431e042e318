package auth

import (
	"errors"
	"fmt"
	"time"
)

// Defaults for Config's zero values.
const (
	DefaultIssuer   = "switchboard"
	DefaultAudience = "switchboard"
	// DefaultAccessTTL bounds how long a stolen access token is useful and
	// how long a revocation takes to bite (access tokens are not looked up).
	DefaultAccessTTL = 15 * time.Minute
	// DefaultRefreshTTL is how long a client may stay away and still
	// refresh; each refresh starts the period again.
	DefaultRefreshTTL = 30 * 24 * time.Hour
	// DefaultLeeway absorbs clock skew between the nodes (and an outside
	// identity provider) that issue and verify a token.
	DefaultLeeway = 30 * time.Second
	// maxLeeway follows RFC 7519 §4.1.4: "no more than a few minutes".
	maxLeeway = 5 * time.Minute
)

// Config sets the claims we issue and require. Issuer and Verifier apply
// the defaults to zero (or negative) fields; Validate reports bad values.
type Config struct {
	// Issuer is the "iss" of tokens we sign, and the only one accepted on
	// tokens signed with our key. Zero: "switchboard".
	Issuer string
	// Audience is the "aud" of tokens we sign, and required in them.
	// Zero: "switchboard".
	Audience string
	// AccessTTL is the lifetime of access tokens. Zero: 15 minutes.
	AccessTTL time.Duration
	// RefreshTTL is the lifetime of a refresh token, renewed by each
	// rotation. Zero: 30 days.
	RefreshTTL time.Duration
	// Leeway is the clock skew allowed on exp, nbf and iat. Zero: 30
	// seconds; at most 5 minutes.
	Leeway time.Duration
}

// Validate reports every bad value, one clear message each.
func (c Config) Validate() error {
	var errs []error
	if c.AccessTTL < 0 {
		errs = append(errs, fmt.Errorf("auth: access TTL %v is negative", c.AccessTTL))
	}
	if c.RefreshTTL < 0 {
		errs = append(errs, fmt.Errorf("auth: refresh TTL %v is negative", c.RefreshTTL))
	}
	if c.Leeway < 0 || c.Leeway > maxLeeway {
		errs = append(errs, fmt.Errorf("auth: leeway %v is outside 0..%v", c.Leeway, maxLeeway))
	}
	if d := c.withDefaults(); d.AccessTTL > d.RefreshTTL {
		errs = append(errs, fmt.Errorf("auth: access TTL %v is longer than refresh TTL %v", d.AccessTTL, d.RefreshTTL))
	}
	return errors.Join(errs...)
}

func (c Config) withDefaults() Config {
	if c.Issuer == "" {
		c.Issuer = DefaultIssuer
	}
	if c.Audience == "" {
		c.Audience = DefaultAudience
	}
	if c.AccessTTL <= 0 {
		c.AccessTTL = DefaultAccessTTL
	}
	if c.RefreshTTL <= 0 {
		c.RefreshTTL = DefaultRefreshTTL
	}
	if c.Leeway <= 0 {
		c.Leeway = DefaultLeeway
	}
	if c.Leeway > maxLeeway {
		c.Leeway = maxLeeway
	}
	return c
}
