package device

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"net"
	"net/url"
	"sync"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
)

// dialBroker opens the client's connection to the broker, with its
// reads buffered and its writes coalesced (see brokerConn).
func dialBroker(u *url.URL, o paho.ClientOptions) (net.Conn, error) {
	d := &net.Dialer{Timeout: o.ConnectTimeout}
	var (
		c   net.Conn
		err error
	)
	switch u.Scheme {
	case "tcp", "mqtt":
		c, err = d.Dial("tcp", u.Host)
	case "ssl", "tls", "mqtts":
		c, err = tls.DialWithDialer(d, "tcp", u.Host, o.TLSConfig)
	default:
		return nil, fmt.Errorf("mqtt: unsupported scheme %q", u.Scheme)
	}
	if err != nil {
		return nil, err
	}
	bc := &brokerConn{Conn: c, r: bufio.NewReaderSize(c, 64<<10), kick: make(chan struct{}, 1), done: make(chan struct{})}
	bc.flushed.Add(1)
	go bc.flushLoop()
	return bc, nil
}

// brokerConn is the gateway's connection to the broker, shaped for a
// stream of QoS 1 frames. paho reads every packet straight from the
// connection (the first byte, the remaining length a byte at a time, then
// the body: three or four system calls a frame) and writes every PUBACK
// with its own system call. Reads here go through a buffer, so one read
// takes many queued packets; writes are queued and written by one
// flusher, so the PUBACKs of a batch leave in one system call while the
// previous ones are on their way. A write error is returned by the next
// Write (paho then tears the connection down; unsent PUBACKs only mean
// the broker redelivers, and the sequence window drops the repeats).
type brokerConn struct {
	net.Conn
	r *bufio.Reader

	mu   sync.Mutex
	out  []byte // queued for the flusher
	err  error  // the flusher's write error
	kick chan struct{}

	done      chan struct{} // closed by Close: the flusher stops
	closeOnce sync.Once
	flushed   sync.WaitGroup // the flusher
}

func (c *brokerConn) Read(p []byte) (int, error) { return c.r.Read(p) }

func (c *brokerConn) Write(p []byte) (int, error) {
	select {
	case <-c.done:
		return 0, net.ErrClosed
	default:
	}
	c.mu.Lock()
	if c.err != nil {
		err := c.err
		c.mu.Unlock()
		return 0, err
	}
	c.out = append(c.out, p...)
	c.mu.Unlock()
	select {
	case c.kick <- struct{}{}:
	default: // a flush is already due
	}
	return len(p), nil
}

// flushLoop writes what is queued until Close or a write error.
func (c *brokerConn) flushLoop() {
	defer c.flushed.Done()
	var buf []byte
	for {
		select {
		case <-c.kick:
		case <-c.done:
			return
		}
		if !c.flush(&buf) {
			return
		}
	}
}

// flush writes the queued bytes, swapping buffers so Write never waits
// on the network; it reports whether the connection is still good.
func (c *brokerConn) flush(buf *[]byte) bool {
	c.mu.Lock()
	*buf, c.out = c.out, (*buf)[:0]
	c.mu.Unlock()
	if len(*buf) == 0 {
		return true
	}
	if _, err := c.Conn.Write(*buf); err != nil {
		c.mu.Lock()
		c.err = err
		c.mu.Unlock()
		return false
	}
	return true
}

// closeFlushWait bounds how long Close gives the queued bytes (paho's
// DISCONNECT last) to leave: paho itself gives the DISCONNECT 250 ms (the
// gateway's quiesce), so a broker that has not taken them in four times
// that is not reading, and loses only PUBACKs it redelivers for.
const closeFlushWait = time.Second

// Close writes what is still queued (paho's DISCONNECT is written just
// before it closes), within closeFlushWait, and closes the connection.
// The deadline also ends a flush under way: without it, a broker that
// stopped reading would keep the flusher, and Close, waiting for ever.
func (c *brokerConn) Close() error {
	c.closeOnce.Do(func() {
		close(c.done)
		_ = c.Conn.SetWriteDeadline(time.Now().Add(closeFlushWait))
		c.flushed.Wait()
		var buf []byte
		c.flush(&buf)
	})
	return c.Conn.Close()
}
