package rtc

import (
	"fmt"
	"net"
	"net/netip"
	"time"

	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
)

// mediaConn is the relay's one UDP socket for media (MediaConfig.UDPAddr),
// under pion's ICE UDP mux. It reads in batches (recvmmsg) and hands the
// RTP the fast path can forward to it before pion sees any of it; the fast
// path's packets go out in batches too (sendmmsg). Everything else (STUN,
// DTLS, SCTP, RTCP) passes to and from pion unchanged, the DTLS hellos
// noted on the way for the keyring.
//
// pion's mux reads from one goroutine, which makes the read side, the
// fast path and its send batch single-threaded: they need no locks.
type mediaConn struct {
	*net.UDPConn // deadlines, LocalAddr, Close and pion's own writes
	batch        batchConn
	keys         *keyring
	fast         *fastPath

	in      []ipv4.Message // the last batch read
	n, next int            // how many it holds, the next to hand out
	out     []ipv4.Message // the send batch
	outBuf  [][]byte       // out's buffers, at full capacity
	nout    int
}

// batchConn is what ipv4.PacketConn and ipv6.PacketConn share.
type batchConn interface {
	ReadBatch(ms []ipv4.Message, flags int) (int, error)
	WriteBatch(ms []ipv4.Message, flags int) (int, error)
}

// mediaBatch is how many datagrams one system call reads or writes: what
// 64 000 packets a second bring in a coalesce period.
const mediaBatch = 64

// coalesce is how long the reader lets a flow of packets gather before
// it reads again, when the last read found more than one but not a full
// batch: a millisecond, small beside the tens of milliseconds a
// receiver's jitter buffer holds. Relaying 200 calls, the gateway spent
// 11.2 µs of CPU per packet reading at once, and 7.5 to 8 µs with this
// wait (BenchmarkRelayProcess): the system calls and wake-ups saved.
const coalesce = time.Millisecond

func listenMedia(addr string) (*mediaConn, error) {
	network := "udp4"
	if ap, err := netip.ParseAddrPort(addr); err == nil && ap.Addr().Is6() && !ap.Addr().Is4In6() {
		network = "udp6"
	}
	ua, err := net.ResolveUDPAddr(network, addr)
	if err != nil {
		return nil, fmt.Errorf("%w: media UDP address %q: %v", ErrInvalid, addr, err)
	}
	uc, err := net.ListenUDP(network, ua)
	if err != nil {
		return nil, fmt.Errorf("media UDP address %q: %w", addr, err)
	}
	// Every call's packets queue on this one socket: give it room for a
	// burst (keyframes from many senders at once, or a GC pause) beyond
	// the kernel's default of about 200 KB. The kernel caps the request
	// at net.core.rmem_max and wmem_max.
	_ = uc.SetReadBuffer(socketBuffer)
	_ = uc.SetWriteBuffer(socketBuffer)
	c := &mediaConn{UDPConn: uc, keys: newKeyring()}
	if network == "udp4" {
		c.batch = ipv4.NewPacketConn(uc)
	} else {
		c.batch = ipv6.NewPacketConn(uc)
	}
	c.in = make([]ipv4.Message, mediaBatch)
	for i := range c.in {
		c.in[i].Buffers = [][]byte{make([]byte, mtu)}
	}
	c.out = make([]ipv4.Message, mediaBatch)
	c.outBuf = make([][]byte, mediaBatch)
	for i := range c.out {
		c.outBuf[i] = make([]byte, 0, mtu+srtpOverhead)
		c.out[i].Buffers = [][]byte{nil}
	}
	return c, nil
}

// socketBuffer is the media socket's send and receive buffer size.
const socketBuffer = 4 << 20

// srtpOverhead is the most SRTP adds to an RTP packet (an AEAD tag, or an
// HMAC tag with room for an MKI).
const srtpOverhead = 32

// ReadFromAddrPort is what pion's mux reads with. Before it blocks for
// more datagrams it sends what the fast path queued.
func (c *mediaConn) ReadFromAddrPort(b []byte) (int, netip.AddrPort, error) {
	for {
		if c.next == c.n {
			c.flush()
			if c.n > 1 && c.n < len(c.in) {
				// Traffic is flowing but did not fill a batch: let
				// more arrive, so each wake-up and system call carries
				// many packets instead of a few. No packet waits longer
				// than this, and the ones read are already sent. One
				// packet at a time (a quiet relay) and full batches (a
				// busy one) read on at once.
				time.Sleep(coalesce)
			}
			n, err := c.batch.ReadBatch(c.in, 0)
			if err != nil {
				return 0, netip.AddrPort{}, err
			}
			c.n, c.next = n, 0
		}
		m := &c.in[c.next]
		c.next++
		ua, ok := m.Addr.(*net.UDPAddr)
		if !ok {
			continue
		}
		from := netip.AddrPortFrom(addrOf(ua.IP), uint16(ua.Port))
		pkt := m.Buffers[0][:m.N]
		if c.fast != nil && c.fast.relay(c, pkt, from) {
			continue
		}
		if len(pkt) > 0 && pkt[0] == dtlsHandshake {
			c.keys.sniff(pkt, from, false)
		}
		return copy(b, pkt), from, nil
	}
}

// ReadFrom is ReadFromAddrPort for net.PacketConn.
func (c *mediaConn) ReadFrom(b []byte) (int, net.Addr, error) {
	n, from, err := c.ReadFromAddrPort(b)
	if err != nil {
		return 0, nil, err
	}
	return n, net.UDPAddrFromAddrPort(from), nil
}

// WriteToAddrPort is how pion's mux writes (from any goroutine).
func (c *mediaConn) WriteToAddrPort(b []byte, to netip.AddrPort) (int, error) {
	if len(b) > 0 && b[0] == dtlsHandshake {
		c.keys.sniff(b, to, true)
	}
	return c.UDPConn.WriteToUDPAddrPort(b, to)
}

// WriteTo is WriteToAddrPort for net.PacketConn.
func (c *mediaConn) WriteTo(b []byte, to net.Addr) (int, error) {
	ua, ok := to.(*net.UDPAddr)
	if !ok {
		return 0, fmt.Errorf("rtc: not a UDP address: %v", to)
	}
	return c.WriteToAddrPort(b, netip.AddrPortFrom(addrOf(ua.IP), uint16(ua.Port)))
}

// queue takes the next slot of the send batch: the fast path encrypts
// into buf and calls send. Only the reading goroutine calls it.
func (c *mediaConn) queue() (buf []byte) {
	if c.nout == len(c.out) {
		c.flush()
	}
	return c.outBuf[c.nout][:0]
}

func (c *mediaConn) send(pkt []byte, to *net.UDPAddr) {
	c.out[c.nout].Buffers[0] = pkt
	c.out[c.nout].Addr = to
	c.nout++
}

// flush sends the batch. A datagram the kernel refuses is dropped, as a
// lone sendto's would be; the rest still go.
func (c *mediaConn) flush() {
	ms := c.out[:c.nout]
	for len(ms) > 0 {
		n, err := c.batch.WriteBatch(ms, 0)
		ms = ms[n:]
		if err != nil && len(ms) > 0 {
			ms = ms[1:]
		}
	}
	for i := range c.out[:c.nout] {
		c.out[i].Addr = nil
	}
	c.nout = 0
}

func addrOf(ip net.IP) netip.Addr {
	a, _ := netip.AddrFromSlice(ip)
	return a.Unmap()
}
