package main

import (
	"net/http"
	"strings"
	"time"

	"github.com/switchboard/switchboard/auth"
)

// jwksRefresh is how often an outside provider's key set is refetched;
// providers rotate keys on the scale of days and publish new ones early.
const jwksRefresh = time.Hour

// jwksSource builds the outside identity provider from the --jwks settings.
func jwksSource(c Config) (auth.KeySource, error) {
	var keys auth.KeySource
	if strings.Contains(c.JWKS, "://") {
		keys = auth.NewJWKSURL(c.JWKS, &http.Client{Timeout: 10 * time.Second}, jwksRefresh)
	} else {
		var err error
		if keys, err = auth.NewJWKSFile(c.JWKS); err != nil {
			return nil, err
		}
	}
	p := auth.Provider{Keys: keys, Issuer: c.JWKSIssuer, Audience: c.JWKSAudience}
	if err := p.Validate(); err != nil {
		return nil, err
	}
	return p, nil
}
