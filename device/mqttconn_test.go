package device

import (
	"errors"
	"io"
	"net"
	"net/url"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/switchboard/switchboard/internal/poll"
)

// TestBrokerConnDeliversAllThenCloses: queued writes all reach the broker
// in order, including those queued just before Close (paho writes its
// DISCONNECT and closes at once); a write after Close fails.
func TestBrokerConnDeliversAllThenCloses(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	got := make(chan []byte, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			got <- nil
			return
		}
		b, _ := io.ReadAll(c)
		got <- b
	}()
	c, err := dialBroker(&url.URL{Scheme: "tcp", Host: ln.Addr().String()}, *paho.NewClientOptions())
	if err != nil {
		t.Fatal(err)
	}
	var want []byte
	for i := range 1000 {
		p := []byte{0x40, 0x02, byte(i >> 8), byte(i)} // a PUBACK
		want = append(want, p...)
		if n, err := c.Write(p); err != nil || n != len(p) {
			t.Fatalf("write %d: %d %v", i, n, err)
		}
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if b := <-got; string(b) != string(want) {
		t.Fatalf("broker read %d bytes, want %d in order", len(b), len(want))
	}
	if _, err := c.Write([]byte{0xe0, 0}); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("write after close: %v", err)
	}
}

// TestBrokerConnCloseWithBrokerNotReading: Close returns, and the flusher
// ends, when the broker has stopped reading (a stalled broker, a full
// TCP window) while a flush is under way. Close used to wait for the
// flusher's write before closing the connection, and that write had no
// deadline, so Close (paho's connection-lost handling and Disconnect)
// hung with the flusher for as long as the broker did not read.
func TestBrokerConnCloseWithBrokerNotReading(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			accepted <- nil
			return
		}
		accepted <- c // held, never read
	}()
	c, err := dialBroker(&url.URL{Scheme: "tcp", Host: ln.Addr().String()}, *paho.NewClientOptions())
	if err != nil {
		t.Fatal(err)
	}
	if peer := <-accepted; peer != nil {
		defer peer.Close()
	}
	bc := c.(*brokerConn)
	// Far more than loopback's socket buffers hold, so the flusher's
	// write blocks.
	if _, err := c.Write(make([]byte, 64<<20)); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, 5*time.Second, 10*time.Millisecond, func() error {
		bc.mu.Lock()
		defer bc.mu.Unlock()
		if len(bc.out) > 0 {
			return errors.New("the flusher has not taken the queue yet")
		}
		return nil
	})
	closed := make(chan struct{})
	go func() {
		defer close(closed)
		_ = c.Close()
	}()
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		t.Fatal("Close still waits for a write the broker does not read")
	}
}
