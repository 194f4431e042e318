package main

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/switchboard/switchboard/auth"
	"github.com/switchboard/switchboard/gateway"
	"github.com/switchboard/switchboard/state/backend"
	"github.com/switchboard/switchboard/ticket/webhook"
)

// Config is every setting of `switchboard serve`. Each has a flag and a
// SWITCHBOARD_* environment variable; see README.md for the table.
type Config struct {
	Addr            string
	Data            string
	RedisURL        string
	RedisPrefix     string
	LogLevel        string
	LogFormat       string
	ShutdownTimeout time.Duration
	// CPUProfile, when set, is where a CPU profile of the whole run is
	// written at shutdown (pprof format, for `go tool pprof`).
	CPUProfile   string
	JWKS         string
	JWKSIssuer   string
	JWKSAudience string
	// IngestSecrets holds channel=secret pairs for signed ingest.
	IngestSecrets []string
	Auth          auth.Config
	HTTP          gateway.Config
	Webhooks      webhook.Config
	Media         mediaConfig
	Location      locationConfig
	RTC           rtcConfig
	Push          pushConfig
	Device        deviceConfig
}

// registerCommon adds the settings that serve and token share, so a token
// minted by `switchboard token` verifies on the server it was meant for.
func registerCommon(s *settings, c *Config) {
	s.str(&c.Data, "data", "./data", "data directory: signing key, embedded state")
	s.str(&c.Auth.Issuer, "issuer", "switchboard", "JWT issuer (iss) of our tokens")
	s.str(&c.Auth.Audience, "audience", "switchboard", "JWT audience (aud) of our tokens")
}

func registerServe(s *settings, c *Config) {
	registerCommon(s, c)
	s.str(&c.Addr, "addr", ":8080", "HTTP listen address")
	s.str(&c.RedisURL, "redis-url", "", "Redis URL (redis://...); empty runs embedded")
	s.str(&c.RedisPrefix, "redis-prefix", "sb:", "prefix of every Redis key")
	s.str(&c.LogLevel, "log-level", "info", "debug, info, warn or error")
	s.str(&c.LogFormat, "log-format", "json", "json or text")
	s.dur(&c.ShutdownTimeout, "shutdown-timeout", 20*time.Second, "drain deadline on SIGTERM")
	s.str(&c.CPUProfile, "cpu-profile", "", "write a CPU profile of the whole run to this file at shutdown")
	s.str(&c.JWKS, "jwks", "", "outside identity provider's JWKS: a file path or an https URL")
	s.str(&c.JWKSIssuer, "jwks-issuer", "", "iss required of outside tokens")
	s.str(&c.JWKSAudience, "jwks-audience", "", "aud required of outside tokens")
	s.list(&c.IngestSecrets, "ingest-secrets", nil, "outside channels and their HMAC secrets for /v1/ingest, as channel=secret")
	s.dur(&c.Auth.AccessTTL, "access-ttl", 15*time.Minute, "access token lifetime")
	s.dur(&c.Auth.RefreshTTL, "refresh-ttl", 30*24*time.Hour, "refresh token lifetime")
	s.dur(&c.Auth.Leeway, "leeway", 30*time.Second, "clock skew allowed when checking exp/nbf")
	s.num(&c.HTTP.BodyLimit, "body-limit", 1<<20, "largest request body in bytes")
	s.num(&c.HTTP.HeaderLimit, "header-limit", 16<<10, "largest request head in bytes")
	s.dur(&c.HTTP.ReadTimeout, "read-timeout", 10*time.Second, "time to read one request")
	s.dur(&c.HTTP.WriteTimeout, "write-timeout", 30*time.Second, "time to write one response")
	s.dur(&c.HTTP.IdleTimeout, "idle-timeout", 60*time.Second, "keep-alive idle timeout")
	s.num(&c.HTTP.MaxConns, "max-conns", 100_000, "concurrent connections")
	s.num(&c.HTTP.RateIP, "rate-ip", 3000, "requests per window per client IP (-1: off)")
	s.num(&c.HTTP.RateSubject, "rate-subject", 1200, "requests per window per user (-1: off)")
	s.num(&c.HTTP.SocketsPerUser, "sockets-per-user", 32, "WebSockets and event streams one user may hold open on a node (-1: off)")
	s.dur(&c.HTTP.RateWindow, "rate-window", time.Minute, "rate limit window")
	s.list(&c.HTTP.CORSOrigins, "cors-origins", nil, "browser origins allowed to call the API")
	s.list(&c.HTTP.TrustedProxies, "trusted-proxies", nil, "load balancer IPs/CIDRs whose X-Forwarded-For is trusted")
	s.boolean(&c.Webhooks.AllowPrivate, "webhook-allow-private", false, "let webhooks target loopback, private and link-local addresses")
	registerMedia(s, &c.Media)
	registerLocation(s, &c.Location)
	registerRTC(s, &c.RTC)
	registerPush(s, &c.Push)
	registerDevice(s, &c.Device)
}

// Validate returns one error naming the first bad setting.
func (c Config) Validate() error {
	bad := func(flagName, why string) error {
		return fmt.Errorf("invalid --%s (%s): %s", flagName, envName(flagName), why)
	}
	if _, _, err := net.SplitHostPort(c.Addr); err != nil {
		return bad("addr", "want host:port, e.g. :8080")
	}
	if c.Data == "" {
		return bad("data", "must not be empty")
	}
	if err := (backend.Config{RedisURL: c.RedisURL, DataDir: c.Data}).Validate(); err != nil {
		return bad("redis-url", err.Error())
	}
	if _, err := parseLevel(c.LogLevel); err != nil {
		return bad("log-level", err.Error())
	}
	if c.LogFormat != "json" && c.LogFormat != "text" {
		return bad("log-format", "want json or text")
	}
	if c.ShutdownTimeout <= 0 {
		return bad("shutdown-timeout", "must be positive")
	}
	if c.JWKS != "" {
		if strings.Contains(c.JWKS, "://") {
			u, err := url.Parse(c.JWKS)
			if err != nil || (u.Scheme != "https" && u.Scheme != "http") {
				return bad("jwks", "want a file path or an http(s) URL")
			}
		}
		if c.JWKSIssuer == "" || c.JWKSAudience == "" {
			return bad("jwks", "an outside identity provider needs --jwks-issuer and --jwks-audience")
		}
	}
	if name, why := c.Device.validate(); name != "" {
		return bad(name, why)
	}
	if name, why := c.Push.validate(); name != "" {
		return bad(name, why)
	}
	if name, why := c.RTC.validate(); name != "" {
		return bad(name, why)
	}
	if name, why := c.Location.validate(); name != "" {
		return bad(name, why)
	}
	if _, err := c.ingestSecrets(); err != nil {
		return bad("ingest-secrets", err.Error())
	}
	for name, d := range map[string]time.Duration{"access-ttl": c.Auth.AccessTTL, "refresh-ttl": c.Auth.RefreshTTL, "rate-window": c.HTTP.RateWindow,
		"read-timeout": c.HTTP.ReadTimeout, "write-timeout": c.HTTP.WriteTimeout, "idle-timeout": c.HTTP.IdleTimeout} {
		if d <= 0 {
			return bad(name, "must be positive")
		}
	}
	if c.Auth.Leeway < 0 || c.Auth.Leeway > 5*time.Minute {
		return bad("leeway", "must be between 0 and 5m")
	}
	if c.HTTP.BodyLimit <= 0 {
		return bad("body-limit", "must be positive")
	}
	if c.HTTP.HeaderLimit < 4096 {
		return bad("header-limit", "must be at least 4096")
	}
	if name, why := c.Media.validate(); name != "" {
		return bad(name, why)
	}
	if c.HTTP.MaxConns <= 0 {
		return bad("max-conns", "must be positive")
	}
	if c.HTTP.RateIP == 0 || c.HTTP.RateIP < -1 {
		return bad("rate-ip", "must be positive, or -1 to turn the limit off")
	}
	if c.HTTP.RateSubject == 0 || c.HTTP.RateSubject < -1 {
		return bad("rate-subject", "must be positive, or -1 to turn the limit off")
	}
	if c.HTTP.SocketsPerUser == 0 || c.HTTP.SocketsPerUser < -1 {
		return bad("sockets-per-user", "must be positive, or -1 to turn the limit off")
	}
	for _, p := range c.HTTP.TrustedProxies {
		if net.ParseIP(p) == nil {
			if _, _, err := net.ParseCIDR(p); err != nil {
				return bad("trusted-proxies", fmt.Sprintf("%q is neither an IP nor a CIDR", p))
			}
		}
	}
	return nil
}

// ingestSecrets parses --ingest-secrets into channel -> secret.
func (c Config) ingestSecrets() (map[string]string, error) {
	m := map[string]string{}
	for _, pair := range c.IngestSecrets {
		ch, secret, ok := strings.Cut(pair, "=")
		switch {
		case !ok || ch == "" || strings.ContainsAny(ch, ": /"):
			return nil, fmt.Errorf("want channel=secret pairs, e.g. webchat=...")
		case len(secret) < 16:
			return nil, fmt.Errorf("the secret of channel %q is shorter than 16 characters", ch)
		}
		m[ch] = secret
	}
	return m, nil
}

// Sanitized returns a copy safe to log: the Redis password and the ingest
// secrets are masked.
func (c Config) Sanitized() Config {
	c.Push = c.Push.sanitized()
	c.Device = c.Device.sanitized()
	if c.RTC.TURNSecret != "" {
		c.RTC.TURNSecret = "xxxxx"
	}
	if len(c.IngestSecrets) > 0 {
		masked := make([]string, len(c.IngestSecrets))
		for i, pair := range c.IngestSecrets {
			ch, _, _ := strings.Cut(pair, "=")
			masked[i] = ch + "=xxxxx"
		}
		c.IngestSecrets = masked
	}
	if u, err := url.Parse(c.RedisURL); err == nil && u.User != nil {
		if _, ok := u.User.Password(); ok {
			u.User = url.UserPassword(u.User.Username(), "xxxxx")
			c.RedisURL = u.String()
		}
	}
	return c
}

func parseLevel(s string) (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(s)); err != nil {
		return 0, errors.New("want debug, info, warn or error")
	}
	return l, nil
}

func newLogger(w io.Writer, c Config) *slog.Logger {
	level, _ := parseLevel(c.LogLevel)
	opts := &slog.HandlerOptions{Level: level}
	if c.LogFormat == "text" {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}
