package sdk

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"

	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/switchboard/switchboard/api"
)

// TokenStore keeps the user's tokens where the platform keeps secrets
// (Keychain, Android Keystore). Save is called after every rotation: a
// refresh token is single-use, so losing the new one signs the user out.
type TokenStore interface {
	Load() (access, refresh string)
	Save(access, refresh string) error
}

// MemoryTokens is a TokenStore in memory, for tests and short-lived tools.
type MemoryTokens struct {
	mu              sync.Mutex
	access, refresh string
}

// Load returns the stored tokens.
func (m *MemoryTokens) Load() (string, string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.access, m.refresh
}

// Save replaces the stored tokens.
func (m *MemoryTokens) Save(access, refresh string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.access, m.refresh = access, refresh
	return nil
}

// Config configures a Client. Zero values mean the stated defaults.
type Config struct {
	// BaseURL is the gateway, e.g. https://switchboard.example.com. Required.
	BaseURL string
	// Tokens holds the user's tokens. Nil means an empty MemoryTokens.
	Tokens TokenStore
	// HTTPClient sends requests. Nil means a client with a 30s timeout.
	HTTPClient *http.Client
	// RefreshBefore refreshes an access token this long before it
	// expires, so a request never leaves with a token about to die in
	// flight. Zero means 30s.
	RefreshBefore time.Duration
	// UserAgent is sent with every request. Empty means "switchboard-sdk".
	UserAgent string
}

// Client talks to one Switchboard gateway for one user. It is safe for
// concurrent use; concurrent requests that find the token expired share a
// single refresh, because two refreshes with one token would look like
// token theft to the server and sign the user out.
type Client struct {
	base    *url.URL
	http    *http.Client
	tokens  TokenStore
	before  time.Duration
	agent   string
	refresh sync.Mutex // serialises refreshes (single flight)
	now     func() time.Time
}

// maxResponse bounds what the client reads of one answer.
const maxResponse = 8 << 20

// New returns a Client for cfg.
func New(cfg Config) (*Client, error) {
	u, err := url.Parse(cfg.BaseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("switchboard: base URL %q is not an http(s) URL", cfg.BaseURL)
	}
	c := &Client{base: u, http: cfg.HTTPClient, tokens: cfg.Tokens, before: cfg.RefreshBefore, agent: cfg.UserAgent, now: time.Now}
	if c.http == nil {
		c.http = &http.Client{Timeout: 30 * time.Second}
	}
	if c.tokens == nil {
		c.tokens = &MemoryTokens{}
	}
	if c.before == 0 {
		c.before = 30 * time.Second
	}
	if c.agent == "" {
		c.agent = "switchboard-sdk"
	}
	return c, nil
}

// SignIn stores a token pair obtained at sign-in.
func (c *Client) SignIn(p api.TokenPair) error {
	return c.tokens.Save(p.AccessToken, p.RefreshToken)
}

// Me returns who the gateway thinks the user is.
func (c *Client) Me(ctx context.Context) (*api.Me, error) {
	var me api.Me
	if err := c.Do(ctx, http.MethodGet, "/v1/me", nil, &me); err != nil {
		return nil, err
	}
	return &me, nil
}

// Request is one call for Send: an idempotency key makes a creating POST
// safe to retry on a flaky network.
type Request struct {
	Method         string
	Path           string
	Body           any
	IdempotencyKey string
}

// Do sends an authenticated JSON request and decodes the answer into out
// (which may be nil).
func (c *Client) Do(ctx context.Context, method, path string, body, out any) error {
	return c.Send(ctx, Request{Method: method, Path: path, Body: body}, out)
}

// Send is Do with the full Request. If the gateway says the access token
// expired, it refreshes once and retries.
func (c *Client) Send(ctx context.Context, r Request, out any) error {
	var payload []byte
	if r.Body != nil {
		var err error
		if payload, err = json.Marshal(r.Body); err != nil {
			return fmt.Errorf("switchboard: encode request: %w", err)
		}
	}
	access, err := c.freshAccess(ctx)
	if err != nil {
		return err
	}
	err = c.send(ctx, r, payload, access, out)
	if StatusCode(err) != http.StatusUnauthorized || Code(err) != api.CodeTokenExpired {
		return err
	}
	if access, err = c.refreshAfter(ctx, access); err != nil {
		return err
	}
	return c.send(ctx, r, payload, access, out)
}

func (c *Client) send(ctx context.Context, r Request, payload []byte, access string, out any) error {
	u := c.base.JoinPath(r.Path)
	if i := strings.IndexByte(r.Path, '?'); i >= 0 {
		u = c.base.JoinPath(r.Path[:i])
		u.RawQuery = r.Path[i+1:]
	}
	var body io.Reader
	if payload != nil {
		body = bytes.NewReader(payload)
	}
	req, err := http.NewRequestWithContext(ctx, r.Method, u.String(), body)
	if err != nil {
		return fmt.Errorf("switchboard: %w", err)
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", c.agent)
	if payload != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if access != "" {
		req.Header.Set("Authorization", "Bearer "+access)
	}
	if r.IdempotencyKey != "" {
		req.Header.Set("Idempotency-Key", r.IdempotencyKey)
	}
	res, err := c.http.Do(req)
	if err != nil {
		return &transportError{err}
	}
	defer res.Body.Close()
	return decode(res, out)
}

// decode turns an answer into out or into a typed error.
func decode(res *http.Response, out any) error {
	data, err := io.ReadAll(io.LimitReader(res.Body, maxResponse))
	if err != nil {
		return &transportError{fmt.Errorf("read response: %w", err)}
	}
	ct := res.Header.Get("Content-Type")
	if res.StatusCode >= 400 {
		if !strings.HasPrefix(ct, api.ProblemContentType) {
			return errUnexpected(res.StatusCode, ct)
		}
		var p api.Problem
		if json.Unmarshal(data, &p) != nil {
			return errUnexpected(res.StatusCode, ct)
		}
		p.Status = res.StatusCode
		return &Error{Problem: p}
	}
	if out == nil || len(data) == 0 {
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("switchboard: decode response: %w", err)
	}
	return nil
}

// freshAccess returns an access token that will not expire within
// RefreshBefore, refreshing first if needed.
func (c *Client) freshAccess(ctx context.Context) (string, error) {
	access, refresh := c.tokens.Load()
	if access != "" && c.now().Add(c.before).Before(expiry(access)) {
		return access, nil
	}
	if refresh == "" {
		return access, nil // let the gateway answer 401 (or serve a public route)
	}
	return c.refreshAfter(ctx, access)
}

// refreshAfter rotates the tokens unless another goroutine already did
// since stale was read: the single flight.
func (c *Client) refreshAfter(ctx context.Context, stale string) (string, error) {
	c.refresh.Lock()
	defer c.refresh.Unlock()
	access, refresh := c.tokens.Load()
	if access != stale && access != "" {
		return access, nil
	}
	if refresh == "" {
		return "", ErrSignedOut
	}
	var pair api.TokenPair
	err := c.send(ctx, Request{Method: http.MethodPost, Path: "/v1/auth/refresh"},
		mustJSON(api.RefreshRequest{RefreshToken: refresh}), "", &pair)
	if status := StatusCode(err); status == http.StatusUnauthorized || status == http.StatusBadRequest {
		_ = c.tokens.Save("", "")
		return "", fmt.Errorf("%w: %w", ErrSignedOut, err)
	}
	if err != nil {
		return "", err
	}
	if err := c.tokens.Save(pair.AccessToken, pair.RefreshToken); err != nil {
		return "", fmt.Errorf("switchboard: save tokens: %w", err)
	}
	return pair.AccessToken, nil
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // only called with api types that always marshal
	}
	return b
}

// expiry reads exp from a JWT without verifying it: the client only uses
// it to decide when to refresh; the gateway verifies.
func expiry(token string) time.Time {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return time.Time{}
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return time.Time{}
	}
	var claims struct {
		Exp int64 `json:"exp"`
	}
	if json.Unmarshal(raw, &claims) != nil || claims.Exp == 0 {
		return time.Time{}
	}
	return time.Unix(claims.Exp, 0)
}
