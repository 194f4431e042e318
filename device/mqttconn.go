package device

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"net"
	"net/url"

	paho "github.com/eclipse/paho.mqtt.golang"
)

// dialBroker opens the client's connection to the broker with its reads
// buffered. paho reads every packet straight from the connection: the
// first byte, the remaining length a byte at a time, then the body, which
// is three or four read system calls per frame. Under load most of a
// stream of PUBLISH packets is already in the socket, and one buffered
// read takes many of them at once.
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
	return &bufferedConn{Conn: c, r: bufio.NewReaderSize(c, 64<<10)}, nil
}

// bufferedConn is a net.Conn whose reads go through a buffer; writes,
// deadlines and Close go straight to the connection.
type bufferedConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *bufferedConn) Read(p []byte) (int, error) { return c.r.Read(p) }
