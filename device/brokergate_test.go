package device

import (
	"net"
	"testing"
	"time"
)

// The gate's settle waits for every accepted connection to be read (or
// closed) once, refuses what is accepted after it, and gives up on a
// connection never touched after its bound.
func TestAcceptGateSettle(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := newAcceptGate(ln)
	accept := func() net.Conn {
		t.Helper()
		client, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { client.Close() })
		if _, err := client.Write([]byte{1}); err != nil {
			t.Fatal(err)
		}
		c, err := g.Accept()
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	read, closed := accept(), accept()

	settled := make(chan struct{})
	go func() { g.settle(time.Minute); close(settled) }()
	select {
	case <-settled:
		t.Fatal("settled with two connections not yet read")
	case <-time.After(50 * time.Millisecond): // a window in which it must not return
	}
	if _, err := read.Read(make([]byte, 1)); err != nil {
		t.Fatal(err)
	}
	_ = closed.Close()
	select {
	case <-settled:
	case <-time.After(10 * time.Second):
		t.Fatal("not settled after both connections were read or closed")
	}
	if c, err := g.Accept(); err == nil {
		c.Close()
		t.Fatal("accepted a connection after settling")
	}

	// A connection nobody reads: settle returns after its bound.
	ln2, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g2 := newAcceptGate(ln2)
	client, err := net.Dial("tcp", ln2.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	c, err := g2.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	start := time.Now()
	g2.settle(100 * time.Millisecond)
	if d := time.Since(start); d < 100*time.Millisecond {
		t.Fatalf("settled after %v with a connection never read", d)
	}
}
