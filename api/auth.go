package api

import "time"

// RefreshRequest is the body of POST /v1/auth/refresh.
type RefreshRequest struct {
	RefreshToken string `json:"refresh_token"`
}

// TokenPair is an access token with the refresh token that replaces it.
// A refresh token is used once: refreshing rotates it, and presenting a
// used one again revokes its whole family.
type TokenPair struct {
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token"`
	TokenType    string `json:"token_type"`
	ExpiresIn    int    `json:"expires_in"` // seconds
}

// Me is the answer to GET /v1/me: who the token says the caller is.
type Me struct {
	Subject   string    `json:"subject"`
	Role      string    `json:"role"`
	Scopes    []string  `json:"scopes,omitempty"`
	ExpiresAt time.Time `json:"expires_at"`
}

// Health is the answer of /healthz and /readyz.
type Health struct {
	Status string            `json:"status"` // "ok" or "unavailable"
	Checks map[string]string `json:"checks,omitempty"`
}

// TokenRequest is the body of POST /v1/admin/tokens: an admin issues a
// token pair for a user (onboarding an agent, provisioning a kiosk).
type TokenRequest struct {
	Subject string   `json:"subject"`
	Role    string   `json:"role"`
	Scopes  []string `json:"scopes,omitempty"`
}
