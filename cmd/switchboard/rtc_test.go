package main

import (
	"net"
	"testing"

	"github.com/switchboard/switchboard/internal/redistest"
	"github.com/switchboard/switchboard/state/backend"
)

// TestTURNSecretSharedByNodes: without --turn-secret, two nodes on one
// Redis make and use the same secret (credentials one issues, the
// other's TURN server accepts), and a node on another store has its own.
func TestTURNSecretSharedByNodes(t *testing.T) {
	rs := redistest.Start(t)
	secret := func(c backend.Config) string {
		t.Helper()
		st, err := backend.Open(t.Context(), c)
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		s, err := sharedTURNSecret(st)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	a := secret(backend.Config{RedisURL: rs.URL()})
	b := secret(backend.Config{RedisURL: rs.URL()})
	if len(a) < 16 || a != b {
		t.Fatalf("nodes on one Redis: %q and %q, want one secret of 16+ characters", a, b)
	}
	data := t.TempDir()
	own := secret(backend.Config{DataDir: data})
	if own == a || own == "" {
		t.Fatalf("another store: %q", own)
	}
	if again := secret(backend.Config{DataDir: data}); again != own {
		t.Fatalf("after a restart: %q, want %q", again, own)
	}
}

// TestMediaPortTakenFailsStartUp: a taken --media-udp-addr stops start-up
// with a message naming the address; a port range instead of it starts.
func TestMediaPortTakenFailsStartUp(t *testing.T) {
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	failsToStart(t, pc.LocalAddr().String(), "--media-udp-addr", pc.LocalAddr().String())
	_, _, stop := startServe(t, t.TempDir(), "--media-udp-addr", "", "--media-ports", "50000-50100")
	stop()
}
