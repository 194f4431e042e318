package main

import (
	"net"
	"net/netip"
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

// TestEmbeddedTURNURL: callers are offered the embedded TURN server only
// on an address a phone can reach: the relay IP, a public IP, or the
// listen IP when it is one; never loopback or an unspecified address.
func TestEmbeddedTURNURL(t *testing.T) {
	for _, c := range []struct {
		name string
		cfg  rtcConfig
		at   string
		want string
	}{
		{"default: unspecified", rtcConfig{}, "0.0.0.0:3478", ""},
		{"loopback", rtcConfig{}, "127.0.0.1:3478", ""},
		{"listen IP", rtcConfig{}, "192.0.2.7:3478", "turn:192.0.2.7:3478?transport=udp"},
		{"public IP", rtcConfig{PublicIPs: []string{"203.0.113.5", "203.0.113.6"}}, "0.0.0.0:3478", "turn:203.0.113.5:3478?transport=udp"},
		{"relay IP first", rtcConfig{TURNRelayIP: "198.51.100.1", PublicIPs: []string{"203.0.113.5"}}, "192.0.2.7:3479", "turn:198.51.100.1:3479?transport=udp"},
		{"IPv6", rtcConfig{}, "[2001:db8::1]:3478", "turn:[2001:db8::1]:3478?transport=udp"},
	} {
		if got := c.cfg.embeddedTURNURL(net.UDPAddrFromAddrPort(netip.MustParseAddrPort(c.at))); got != c.want {
			t.Errorf("%s: %q, want %q", c.name, got, c.want)
		}
	}
}
