package rtc

import (
	"testing"

	"github.com/switchboard/switchboard/api"
)

// TestLateLeaveOfAnOldSession: a party that reconnected its signaling
// (session s2) keeps being reached there when its old session s1 closes
// afterwards, as it does after a network change; the close of s2 itself
// still cuts it off.
func TestLateLeaveOfAnOldSession(t *testing.T) {
	rm := &room{bySession: map[string]*party{}}
	p := &party{room: rm}
	old, cur := addr{Node: "n1", Session: "s1"}, addr{Node: "n1", Session: "s2"}
	rm.bySession[old.Session], rm.bySession[cur.Session] = p, p
	p.at.Store(&cur)
	leave := func(from addr) {
		if err := rm.handle(envelope{Kind: kindSig, From: &from, Signal: &api.Signal{Type: sigLeave}}); err != nil {
			t.Fatal(err)
		}
	}
	leave(old)
	if at := p.at.Load(); at == nil || *at != cur {
		t.Fatalf("after the old session left, the party is reached at %v, want %v", at, cur)
	}
	if _, ok := rm.bySession[old.Session]; ok {
		t.Fatal("the old session still names the party")
	}
	leave(cur)
	if at := p.at.Load(); at != nil {
		t.Fatalf("after its current session left, the party is still reached at %v", *at)
	}
}
