package auth

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/switchboard/switchboard/state"
)

func newTestIssuer(t testing.TB, kv state.KV) (*Issuer, *Verifier) {
	t.Helper()
	key := newTestKey(t)
	return NewIssuer(Config{}, key, kv), NewVerifier(Config{}, key)
}

func TestPairHappyPath(t *testing.T) {
	iss, v := newTestIssuer(t, newMemKV())
	ctx := context.Background()
	pair, err := iss.Pair(ctx, "dev-9", RoleDevice, []string{"appliance:P-1"})
	if err != nil {
		t.Fatal(err)
	}
	if pair.TokenType != "Bearer" || pair.ExpiresIn != 900 {
		t.Fatalf("pair %+v", pair)
	}
	c, err := v.Verify(ctx, pair.AccessToken)
	if err != nil {
		t.Fatal(err)
	}
	if c.Subject != "dev-9" || c.Role != RoleDevice || !c.HasScope("appliance:P-1") || c.HasScope("appliance:P-2") ||
		c.Type != TypeAccess || c.Issuer != DefaultIssuer || len(c.Audience) != 1 || c.Audience[0] != DefaultAudience || c.ID == "" {
		t.Fatalf("claims %+v", c)
	}
	if d := time.Until(c.ExpiresAt.Time); d < 14*time.Minute || d > 15*time.Minute {
		t.Fatalf("access token lives %v", d)
	}
	rc, err := v.VerifyRefresh(ctx, pair.RefreshToken)
	if err != nil {
		t.Fatal(err)
	}
	if rc.Family == "" || rc.Type != TypeRefresh || rc.Subject != "dev-9" {
		t.Fatalf("refresh claims %+v", rc)
	}
	if d := time.Until(rc.ExpiresAt.Time); d < 29*24*time.Hour || d > 30*24*time.Hour {
		t.Fatalf("refresh token lives %v", d)
	}

	b, err := json.Marshal(pair)
	if err != nil {
		t.Fatal(err)
	}
	var wire map[string]any
	if err := json.Unmarshal(b, &wire); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"access_token", "refresh_token", "expires_in", "token_type"} {
		if _, ok := wire[k]; !ok {
			t.Fatalf("%s missing from %s", k, b)
		}
	}
}

func TestAccess(t *testing.T) {
	iss, v := newTestIssuer(t, nil)
	tok, c, err := iss.Access("agent-1", RoleAgent, nil, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if d := time.Until(c.ExpiresAt.Time); d > time.Minute || d < 50*time.Second {
		t.Fatalf("ttl %v", d)
	}
	got, err := v.Verify(context.Background(), tok)
	if err != nil || got.Subject != "agent-1" || got.Scopes != nil {
		t.Fatalf("%+v, %v", got, err)
	}
	if len(tok) > 600 {
		t.Errorf("access token of %d bytes; MaxTokenLen's comment says about 500", len(tok))
	}

	if _, _, err := iss.Access("", RoleAgent, nil, 0); err == nil {
		t.Error("empty subject accepted")
	}
	if _, _, err := iss.Access("x", "root", nil, 0); !errors.Is(err, ErrInvalidRole) {
		t.Errorf("bad role: %v", err)
	}
	if _, _, err := iss.Access("x", RoleAgent, nil, -time.Second); err == nil {
		t.Error("negative TTL accepted")
	}
	many := make([]string, 400)
	for i := range many {
		many[i] = "appliance:" + strings.Repeat("x", 20)
	}
	if _, _, err := iss.Access("x", RoleDevice, many, 0); !errors.Is(err, ErrTokenTooLarge) {
		t.Errorf("oversized token issued: %v", err)
	}
	if _, err := iss.Pair(context.Background(), "x", RoleAgent, nil); err == nil {
		t.Error("Pair without a KV succeeded")
	}
}

func TestRefreshRotation(t *testing.T) {
	kv := newMemKV()
	iss, v := newTestIssuer(t, kv)
	ctx := context.Background()
	p1, err := iss.Pair(ctx, "cust-1", RoleCustomer, []string{"a"})
	if err != nil {
		t.Fatal(err)
	}
	c1, _ := v.VerifyRefresh(ctx, p1.RefreshToken)
	p2, err := iss.Refresh(ctx, p1.RefreshToken)
	if err != nil {
		t.Fatal(err)
	}
	p3, err := iss.Refresh(ctx, p2.RefreshToken)
	if err != nil {
		t.Fatal(err)
	}
	if p2.RefreshToken == p1.RefreshToken || p3.RefreshToken == p2.RefreshToken {
		t.Fatal("refresh token not rotated")
	}
	c3, err := v.VerifyRefresh(ctx, p3.RefreshToken)
	if err != nil {
		t.Fatal(err)
	}
	a3, err := v.Verify(ctx, p3.AccessToken)
	if err != nil {
		t.Fatal(err)
	}
	if c3.Family != c1.Family || c3.ID == c1.ID || a3.Subject != "cust-1" || a3.Role != RoleCustomer || !a3.HasScope("a") {
		t.Fatalf("rotated claims %+v / %+v", c3, a3)
	}
	// The family record lives as long as its newest token can verify.
	kv.mu.Lock()
	e := kv.m[familyPrefix+c1.Family]
	kv.mu.Unlock()
	if string(e.v) != c3.ID {
		t.Fatalf("family record %q; want %q", e.v, c3.ID)
	}
	if d := time.Until(e.exp); d < DefaultRefreshTTL || d > DefaultRefreshTTL+DefaultLeeway {
		t.Fatalf("family record TTL %v", d)
	}
}

func TestRefreshReuseRevokesFamily(t *testing.T) {
	iss, _ := newTestIssuer(t, newMemKV())
	ctx := context.Background()
	p1, err := iss.Pair(ctx, "cust-1", RoleCustomer, nil)
	if err != nil {
		t.Fatal(err)
	}
	other, err := iss.Pair(ctx, "cust-1", RoleCustomer, nil) // the same user on another phone
	if err != nil {
		t.Fatal(err)
	}
	p2, err := iss.Refresh(ctx, p1.RefreshToken)
	if err != nil {
		t.Fatal(err)
	}

	_, err = iss.Refresh(ctx, p1.RefreshToken) // the thief (or a confused client) replays
	mustRefuse(t, err, ErrTokenReused)
	_, err = iss.Refresh(ctx, p2.RefreshToken) // the legit rotation is dead too
	mustRefuse(t, err, ErrRevoked)
	_, err = iss.Refresh(ctx, p1.RefreshToken)
	mustRefuse(t, err, ErrRevoked)

	if _, err := iss.Refresh(ctx, other.RefreshToken); err != nil {
		t.Fatalf("another family suffered: %v", err)
	}
}

func TestRevokeFamily(t *testing.T) {
	iss, v := newTestIssuer(t, newMemKV())
	ctx := context.Background()
	p, err := iss.Pair(ctx, "cust-1", RoleCustomer, nil)
	if err != nil {
		t.Fatal(err)
	}
	c, err := v.VerifyRefresh(ctx, p.RefreshToken)
	if err != nil {
		t.Fatal(err)
	}
	for range 2 { // idempotent
		if err := iss.RevokeFamily(ctx, c.Family); err != nil {
			t.Fatal(err)
		}
	}
	_, err = iss.Refresh(ctx, p.RefreshToken)
	mustRefuse(t, err, ErrRevoked)
	if _, err := v.Verify(ctx, p.AccessToken); err != nil {
		t.Fatalf("access token died with its family (documented not to): %v", err)
	}
	for _, bad := range []string{"", strings.Repeat("f", 65)} {
		if err := iss.RevokeFamily(ctx, bad); err == nil {
			t.Errorf("RevokeFamily(%q) succeeded", bad)
		}
	}
}

func TestRefreshRefusals(t *testing.T) {
	kv := newMemKV()
	key := newTestKey(t)
	iss := NewIssuer(Config{}, key, kv)
	ctx := context.Background()
	p, err := iss.Pair(ctx, "cust-1", RoleCustomer, nil)
	if err != nil {
		t.Fatal(err)
	}

	_, err = iss.Refresh(ctx, p.AccessToken)
	mustRefuse(t, err, ErrWrongTokenType)
	_, err = iss.Refresh(ctx, "garbage")
	mustRefuse(t, err, nil)
	_, err = iss.Refresh(ctx, strings.Repeat(".", 1<<20))
	mustRefuse(t, err, ErrTokenTooLarge)

	c := claimsMap(Config{})
	c["typ"], c["fam"], c["exp"] = TypeRefresh, "F", time.Now().Add(-time.Hour).Unix()
	_, err = iss.Refresh(ctx, signWith(t, jwt.SigningMethodEdDSA, key.signer, key.id, c))
	mustRefuse(t, err, ErrExpired)

	// A family this store never saw (another deployment, a wiped store).
	elsewhere := NewIssuer(Config{}, key, newMemKV())
	_, err = elsewhere.Refresh(ctx, p.RefreshToken)
	mustRefuse(t, err, ErrRevoked)

	// Store failures are not the token's fault.
	broken := NewIssuer(Config{}, key, failingKV{kv})
	_, err = broken.Refresh(ctx, p.RefreshToken)
	if err == nil || errors.Is(err, ErrInvalidToken) {
		t.Fatalf("store failure reported as %v", err)
	}
}

type failingKV struct{ *memKV }

var errStore = errors.New("store down")

func (failingKV) CompareAndSwap(context.Context, string, []byte, []byte, time.Duration) (bool, error) {
	return false, errStore
}

// TestRefreshRace presents one refresh token twice at once: exactly one
// call wins, the other is reuse, and the family (the winner's new token
// included) is revoked.
func TestRefreshRace(t *testing.T) {
	checkGoroutines(t)
	iss, _ := newTestIssuer(t, newMemKV())
	ctx := context.Background()
	for round := range 50 {
		p, err := iss.Pair(ctx, "cust-1", RoleCustomer, nil)
		if err != nil {
			t.Fatal(err)
		}
		results := race(iss, p.RefreshToken, 2)
		var won []TokenPair
		var reused int
		for _, r := range results {
			switch {
			case r.err == nil:
				won = append(won, r.pair)
			case errors.Is(r.err, ErrTokenReused):
				reused++
			default:
				t.Fatalf("round %d: unexpected error %v", round, r.err)
			}
		}
		if len(won) != 1 || reused != 1 {
			t.Fatalf("round %d: %d winners, %d reuses; want 1 and 1", round, len(won), reused)
		}
		_, err = iss.Refresh(ctx, won[0].RefreshToken)
		mustRefuse(t, err, ErrRevoked)
	}
}

// TestRefreshStampede is the same with many callers: one wins, at least
// one sees reuse, the rest find the family already revoked.
func TestRefreshStampede(t *testing.T) {
	checkGoroutines(t)
	iss, _ := newTestIssuer(t, newMemKV())
	ctx := context.Background()
	p, err := iss.Pair(ctx, "cust-1", RoleCustomer, nil)
	if err != nil {
		t.Fatal(err)
	}
	var won, reused, revoked int
	for _, r := range race(iss, p.RefreshToken, 16) {
		switch {
		case r.err == nil:
			won++
		case errors.Is(r.err, ErrTokenReused):
			reused++
		case errors.Is(r.err, ErrRevoked):
			revoked++
		default:
			t.Fatal(r.err)
		}
	}
	if won != 1 || reused < 1 || won+reused+revoked != 16 {
		t.Fatalf("%d won, %d reused, %d revoked", won, reused, revoked)
	}
}

type raceResult struct {
	pair TokenPair
	err  error
}

// race calls Refresh n times at once with the same token.
func race(iss *Issuer, token string, n int) []raceResult {
	start := make(chan struct{})
	results := make([]raceResult, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			p, err := iss.Refresh(context.Background(), token)
			results[i] = raceResult{p, err}
		})
	}
	close(start)
	wg.Wait()
	return results
}
