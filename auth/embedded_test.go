package auth

import (
	"context"
	"errors"
	"testing"

	"github.com/switchboard/switchboard/state/embedded"
)

// TestRefreshOnEmbedded runs rotation, reuse detection and the race on the
// real embedded store, whose CompareAndSwap is what production uses by
// default.
func TestRefreshOnEmbedded(t *testing.T) {
	store, err := embedded.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	iss, v := newTestIssuer(t, store)
	ctx := context.Background()

	p1, err := iss.Pair(ctx, "cust-1", RoleCustomer, nil)
	if err != nil {
		t.Fatal(err)
	}
	p2, err := iss.Refresh(ctx, p1.RefreshToken)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify(ctx, p2.AccessToken); err != nil {
		t.Fatal(err)
	}
	_, err = iss.Refresh(ctx, p1.RefreshToken)
	mustRefuse(t, err, ErrTokenReused)
	_, err = iss.Refresh(ctx, p2.RefreshToken)
	mustRefuse(t, err, ErrRevoked)

	for round := range 20 {
		p, err := iss.Pair(ctx, "cust-2", RoleCustomer, nil)
		if err != nil {
			t.Fatal(err)
		}
		var won, reused int
		for _, r := range race(iss, p.RefreshToken, 2) {
			switch {
			case r.err == nil:
				won++
			case errors.Is(r.err, ErrTokenReused):
				reused++
			default:
				t.Fatalf("round %d: %v", round, r.err)
			}
		}
		if won != 1 || reused != 1 {
			t.Fatalf("round %d: %d won, %d reused", round, won, reused)
		}
	}
}
