package rtc

import (
	"context"
	"testing"
)

// TestMediaNodeAdoption: a call whose media node has no liveness key is
// taken over by the asking node, once; a call placed by a node that
// keeps no liveness key (older code during a rolling upgrade) is not;
// and a node whose key is alive keeps its calls.
func TestMediaNodeAdoption(t *testing.T) {
	e := newRouteEnv(t)
	ctx := context.Background()
	c := e.place(t, "joe")
	move := func(node string, watched bool) *callRecord {
		t.Helper()
		rec, err := update(ctx, e.svc.st, keyCall(c.ID), 0, func(r *callRecord) error {
			r.Node, r.Watched = node, watched
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return &rec
	}
	if got, err := e.svc.mediaNode(ctx, move("old-node", false)); err != nil || got != "old-node" {
		t.Fatalf("unwatched call: %q %v, want it left on old-node", got, err)
	}
	if err := e.svc.st.Set(ctx, keyAlive("n2"), []byte{1}, 0); err != nil {
		t.Fatal(err)
	}
	if got, err := e.svc.mediaNode(ctx, move("n2", true)); err != nil || got != "n2" {
		t.Fatalf("call on a live node: %q %v", got, err)
	}
	rec := move("dead-node", true)
	if got, err := e.svc.mediaNode(ctx, rec); err != nil || got != "n1" || rec.AdoptedAt.IsZero() {
		t.Fatalf("call on a dead node: %q %v, adopted at %v; want n1", got, err, rec.AdoptedAt)
	}
	again, err := e.svc.load(ctx, c.ID)
	if err != nil || again.Node != "n1" || !again.AdoptedAt.Equal(rec.AdoptedAt) {
		t.Fatalf("stored %+v %v", again, err)
	}
}
