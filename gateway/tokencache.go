package gateway

import (
	"context"
	"crypto/sha256"
	"sync"
	"time"

	"github.com/switchboard/switchboard/auth"
)

// tokenCacheSize bounds the verified-token cache. An entry is ~150 bytes,
// so the cache stays under ~10 MB; 50,000 covers the tokens active within
// one access-token lifetime on a busy node.
const tokenCacheSize = 50_000

// tokenCache remembers tokens that verified, until they expire. Verifying
// an Ed25519 JWT costs ~50 µs, more than the rest of a request; a mobile
// app sends the same token for its whole 15-minute life. Only successes
// are cached (a flood of bad tokens cannot fill it), the key is the
// token's SHA-256 (memory does not grow with token size), and access
// tokens are not revocable before expiry, so a hit is exactly as valid as
// a fresh verification.
type tokenCache struct {
	verifier verifier
	now      func() time.Time
	mu       sync.RWMutex
	entries  map[[sha256.Size]byte]*auth.Claims
}

// verifier is what the cache wraps: *auth.Verifier.
type verifier interface {
	Verify(ctx context.Context, token string) (*auth.Claims, error)
}

func newTokenCache(v verifier) *tokenCache {
	return &tokenCache{verifier: v, now: time.Now, entries: make(map[[sha256.Size]byte]*auth.Claims)}
}

// Verify answers from the cache or verifies and remembers.
func (tc *tokenCache) Verify(ctx context.Context, token string) (*auth.Claims, error) {
	if len(token) > auth.MaxTokenLen {
		return tc.verifier.Verify(ctx, token) // refused at once, never hashed
	}
	key := sha256.Sum256([]byte(token))
	tc.mu.RLock()
	cl, ok := tc.entries[key]
	tc.mu.RUnlock()
	if ok && cl.ExpiresAt != nil && tc.now().Before(cl.ExpiresAt.Time) {
		return cl, nil
	}
	cl, err := tc.verifier.Verify(ctx, token)
	if err != nil || cl.ExpiresAt == nil {
		return cl, err
	}
	tc.mu.Lock()
	if len(tc.entries) >= tokenCacheSize {
		tc.evict()
	}
	tc.entries[key] = cl
	tc.mu.Unlock()
	return cl, nil
}

// evict drops expired entries, and if that frees too little, an
// arbitrary half (map order is random): a cache miss costs one verify.
func (tc *tokenCache) evict() {
	now := tc.now()
	for k, cl := range tc.entries {
		if !now.Before(cl.ExpiresAt.Time) {
			delete(tc.entries, k)
		}
	}
	for k := range tc.entries {
		if len(tc.entries) < tokenCacheSize/2 {
			break
		}
		delete(tc.entries, k)
	}
}
