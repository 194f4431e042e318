package rtc

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/pion/turn/v5"
)

func TestPublicPeer(t *testing.T) {
	for ip, want := range map[string]bool{
		"8.8.8.8": true, "2001:4860:4860::8888": true,
		"127.0.0.1": false, "::1": false, "10.1.2.3": false, "172.16.0.1": false, "192.168.1.1": false,
		"169.254.169.254": false, "fe80::1": false, "100.64.0.1": false, "0.0.0.0": false, "224.0.0.1": false,
		"fc00::1": false, "::ffff:127.0.0.1": false,
	} {
		if got := PublicPeer(net.ParseIP(ip)); got != want {
			t.Errorf("PublicPeer(%s) = %v", ip, got)
		}
	}
}

// startTURN runs the embedded server on a free loopback port.
func startTURN(t *testing.T) (string, string) {
	t.Helper()
	secret := "turn-secret-for-tests"
	srv, err := NewTURNServer(TURNServerConfig{Addr: "127.0.0.1:0", Secret: secret})
	if err != nil {
		t.Fatal(err)
	}
	pc, err := srv.Listen()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Run(ctx, pc) }()
	t.Cleanup(func() { cancel(); <-done })
	return pc.LocalAddr().String(), secret
}

func turnClient(t *testing.T, addr, user, pass string) *turn.Client {
	t.Helper()
	conn, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c, err := turn.NewClient(&turn.ClientConfig{STUNServerAddr: addr, TURNServerAddr: addr, Conn: conn,
		Username: user, Password: pass, Realm: "switchboard", RTO: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Listen(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(); conn.Close() })
	return c
}

func TestTURNCredentialsAndPeers(t *testing.T) {
	addr, secret := startTURN(t)

	t.Run("valid credentials allocate; private peers are refused", func(t *testing.T) {
		u, p := TURNCredentials(secret, "joe", time.Now().Add(time.Hour))
		c := turnClient(t, addr, u, p)
		relay, err := c.Allocate()
		if err != nil {
			t.Fatalf("allocate: %v", err)
		}
		defer relay.Close()
		for _, peer := range []string{"127.0.0.1:9", "10.0.0.1:9", "192.168.0.1:9", "169.254.169.254:80"} {
			pa, _ := net.ResolveUDPAddr("udp4", peer)
			if _, err := relay.WriteTo([]byte("x"), pa); err == nil {
				t.Errorf("relay toward %s was allowed", peer)
			}
		}
	})
	t.Run("expired credentials are refused", func(t *testing.T) {
		u, p := TURNCredentials(secret, "joe", time.Now().Add(-time.Minute))
		c := turnClient(t, addr, u, p)
		if _, err := c.Allocate(); err == nil {
			t.Fatal("an expired credential allocated a relay")
		}
	})
	t.Run("a wrong secret is refused", func(t *testing.T) {
		u, p := TURNCredentials("another-secret-entirely", "joe", time.Now().Add(time.Hour))
		c := turnClient(t, addr, u, p)
		if _, err := c.Allocate(); err == nil {
			t.Fatal("a forged credential allocated a relay")
		}
	})
}
