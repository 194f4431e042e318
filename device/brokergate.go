package device

import (
	"net"
	"sync"
	"time"
)

// settleWait bounds how long Run waits, before closing the broker, for the
// connections it accepted to be registered with it (see acceptGate).
const settleWait = time.Second

// acceptGate is the broker's listener. mochi-mqtt v2.7.9 registers each
// accepted connection (a WaitGroup Add) in a goroutine of its own, which
// races the Wait in Server.Close: a WaitGroup misuse the race detector
// reports when the gateway stops while a client is connecting (its own
// client does, at start). So Run first stops accepting and waits until
// every connection handed out has been registered. Registration is
// mochi's first step before it reads the connection, so a connection's
// first Read (or its Close) says it is done.
type acceptGate struct {
	net.Listener
	mu      sync.Mutex
	closed  bool
	pending int           // connections accepted, not yet registered
	settled chan struct{} // closed once closed and pending is 0
}

func newAcceptGate(ln net.Listener) *acceptGate {
	return &acceptGate{Listener: ln, settled: make(chan struct{})}
}

func (g *acceptGate) Accept() (net.Conn, error) {
	c, err := g.Listener.Accept()
	if err != nil {
		return nil, err
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		_ = c.Close()
		return nil, net.ErrClosed
	}
	g.pending++
	// mochi sets no deadline until CONNECT arrives (then the keepalive's).
	_ = c.SetDeadline(time.Now().Add(connectWait))
	return &gatedConn{Conn: c, g: g}, nil
}

// settle stops accepting and waits, up to d, until every accepted
// connection is registered.
func (g *acceptGate) settle(d time.Duration) {
	g.mu.Lock()
	g.closed = true
	if g.pending == 0 {
		close(g.settled)
	}
	g.mu.Unlock()
	_ = g.Listener.Close()
	select {
	case <-g.settled:
	case <-time.After(d):
	}
}

func (g *acceptGate) registered() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.pending--
	if g.closed && g.pending == 0 {
		close(g.settled)
	}
}

// gatedConn tells its gate when mochi first reads it or closes it.
type gatedConn struct {
	net.Conn
	g    *acceptGate
	once sync.Once
}

func (c *gatedConn) Read(p []byte) (int, error) {
	c.once.Do(c.g.registered)
	return c.Conn.Read(p)
}

func (c *gatedConn) Close() error {
	c.once.Do(c.g.registered)
	return c.Conn.Close()
}
