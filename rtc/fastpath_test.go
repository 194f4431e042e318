package rtc

import (
	"crypto/rand"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/dtls/v3/pkg/protocol"
	"github.com/pion/dtls/v3/pkg/protocol/handshake"
	"github.com/pion/dtls/v3/pkg/protocol/recordlayer"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/srtp/v3"

	"github.com/switchboard/switchboard/internal/poll"
)

// TestFastPath: with all media on one UDP address, the relay forwards
// the parties' RTP itself once they connect, and what arrives is what
// was sent, under each receiver's SSRC and payload type. The relay is
// the DTLS client of the caller (the usual case: it answers an actpass
// offer as active) and the DTLS server of the agent (whose offer says
// active); it recovers the keys either way. The supervisor sends
// nothing that would prove the relay has its keys (no RTP, and these
// clients send no RTCP), so what it hears goes through pion.
func TestFastPath(t *testing.T) {
	e := newRelayEnvWith(t, MediaConfig{IncludeLoopback: true, UDPAddr: "127.0.0.1:0"})
	caller := e.connect(t, roleCaller, "joe")
	e.offer = func(sdp string) string { return strings.ReplaceAll(sdp, "a=setup:actpass", "a=setup:active") }
	agent := e.connect(t, roleAgent, "ann")
	sup := e.connect(t, roleListener, "sue")
	flowing(t, 50, caller, agent, sup)
	e.svc.relay.mu.Lock()
	rm := e.svc.relay.rooms[e.call]
	e.svc.relay.mu.Unlock()
	rm.mu.Lock()
	pc := rm.agent.pc
	rm.mu.Unlock()
	if !strings.Contains(pc.CurrentLocalDescription().SDP, "a=setup:passive") {
		t.Fatal("the relay did not answer the agent as the DTLS server")
	}
	// Media keeps flowing, so the counts grow until the want is met; a
	// relay that sent the supervisor's packets on the fast path, or the
	// parties' through pion, never meets it. (A fixed window would count
	// the packets in flight at its start on the wrong side of it.)
	fast0, all0 := e.svc.relay.FastForwarded(), e.svc.relay.Forwarded()
	poll.Until(t, 20*time.Second, 20*time.Millisecond, func() error {
		fast, all := e.svc.relay.FastForwarded()-fast0, e.svc.relay.Forwarded()-all0
		if fast < 200 || all-fast < 100 {
			return fmt.Errorf("forwarded %d packets, %d of them on the fast path; want 200 or more on it and 100 or more through pion", all, fast)
		}
		return nil
	})
	flowing(t, 100, caller, agent, sup)
	for i, c := range []*relayClient{caller, agent, sup} {
		if b := c.bad.Load(); b != 0 {
			t.Errorf("client %d got %d packets not as sent (of %d)", i, b, c.got.Load())
		}
	}
}

// TestFastPathStrangers: datagrams from an address that is no party's
// (RTP naming a party's SSRC, junk, forged DTLS hellos) are left to pion,
// which drops them; the call's media goes on as before.
func TestFastPathStrangers(t *testing.T) {
	e := newRelayEnvWith(t, MediaConfig{IncludeLoopback: true, UDPAddr: "127.0.0.1:0"})
	caller := e.connect(t, roleCaller, "joe")
	agent := e.connect(t, roleAgent, "ann")
	flowing(t, 20, caller, agent)
	s, err := net.DialUDP("udp4", nil, e.svc.relay.media.LocalAddr().(*net.UDPAddr))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ssrc := caller.ssrcOut("1")
	hello, err := (&recordlayer.RecordLayer{Header: recordlayer.Header{Version: protocol.Version1_2},
		Content: &handshake.Handshake{Message: &handshake.MessageClientHello{Version: protocol.Version1_2,
			CipherSuiteIDs: []uint16{0xc02b}, CompressionMethods: []*protocol.CompressionMethod{{}}}}}).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	for i := range 300 {
		var b []byte
		switch i % 3 {
		case 0:
			r, _ := (&rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 96, SequenceNumber: uint16(i), SSRC: ssrc}, Payload: make([]byte, 200)}).Marshal()
			b = append(r, make([]byte, 16)...) // room for a tag that will not check
		case 1:
			b = make([]byte, 100)
			_, _ = rand.Read(b)
		case 2:
			b = hello
		}
		if _, err := s.Write(b); err != nil {
			t.Fatal(err)
		}
	}
	// The stranger's hello is noted like any other (and bounded), but no
	// key log line goes with it: it yields no keys.
	stranger := netip.MustParseAddrPort(s.LocalAddr().String())
	keys := e.svc.relay.media.keys
	poll.Until(t, 10*time.Second, 10*time.Millisecond, func() error {
		keys.mu.Lock()
		defer keys.mu.Unlock()
		if h := keys.hellos[stranger]; h == nil || !h.haveClient || h.localIsClient {
			return fmt.Errorf("the stranger's ClientHello was not noted: %+v", h)
		}
		return nil
	})
	if _, err := keys.take(stranger); err != errNoKeys {
		t.Errorf("keys for a stranger: %v", err)
	}
	fast := e.svc.relay.FastForwarded()
	poll.Until(t, 20*time.Second, 20*time.Millisecond, func() error {
		if d := e.svc.relay.FastForwarded() - fast; d < 100 {
			return fmt.Errorf("the fast path sent %d packets since the stranger's, want 100", d)
		}
		return nil
	})
	flowing(t, 50, caller, agent)
	for i, c := range []*relayClient{caller, agent} {
		if b := c.bad.Load(); b != 0 {
			t.Errorf("client %d got %d packets not as sent", i, b)
		}
	}
}

// TestFastPathRewrites drives the fast path without pion: a packet a
// party encrypted goes out to the sink's address decrypted, rewritten
// to the sink's SSRC and payload type (marker, sequence number,
// timestamp and payload unchanged) and encrypted with the sink's keys.
// A packet that fails authentication, one from an address no party
// has, and one with an SSRC the party does not send are not taken.
func TestFastPathRewrites(t *testing.T) {
	c, err := listenMedia("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	f := newFastPath(new(atomic.Uint64))
	c.fast = f
	to, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer to.Close()

	const profile = srtp.ProtectionProfileAeadAes128Gcm
	pair := func() (*srtp.Context, *srtp.Context) {
		k := make([]byte, 16+12)
		_, _ = rand.Read(k)
		a, err1 := srtp.CreateContext(k[:16], k[16:], profile)
		b, err2 := srtp.CreateContext(k[:16], k[16:], profile)
		if err1 != nil || err2 != nil {
			t.Fatal(err1, err2)
		}
		return a, b
	}
	srcSends, relayIn := pair()
	relayOut, dstGets := pair()

	dst := &party{outSSRC: make([]atomic.Uint32, 2), outPT: make([]atomic.Uint32, 2)}
	dst.outSSRC[kVideo].Store(0xD57)
	dst.outPT[kVideo].Store(100)
	dst.fast.Store(&partyFast{keys: &sessionKeys{out: relayOut}, verified: true})
	dst.fastAddr.Store(to.LocalAddr().(*net.UDPAddr))
	src := &party{}
	src.inSSRC[kVideo].Store(0x5A5A)
	src.fastOn[kVideo].Store(true)
	src.fast.Store(&partyFast{keys: &sessionKeys{in: relayIn}})
	src.sinks[kVideo].Store(&[]sink{{to: dst, i: kVideo}})
	from := netip.MustParseAddrPort("127.0.0.1:40000")
	f.route(from, src, nil)

	sent := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 96, SequenceNumber: 7, Timestamp: 9000, SSRC: 0x5A5A, Marker: true},
		Payload: []byte("a VP8 frame")}
	raw, _ := sent.Marshal()
	enc, err := srcSends.EncryptRTP(nil, raw, nil)
	if err != nil {
		t.Fatal(err)
	}
	forged := append([]byte{}, enc...)
	forged[len(forged)-1] ^= 1
	other := sent
	other.SSRC = 0x1234
	rawOther, _ := other.Marshal()
	encOther, _ := srcSends.EncryptRTP(nil, rawOther, nil)
	for _, c2 := range []struct {
		name string
		pkt  []byte
		from netip.AddrPort
	}{
		{"a forged tag", forged, from},
		{"a stranger's address", enc, netip.MustParseAddrPort("127.0.0.1:40001")},
		{"an SSRC the party does not send", encOther, from},
	} {
		if f.relay(c, c2.pkt, c2.from) {
			t.Errorf("%s: taken", c2.name)
		}
	}
	if src.fast.Load().verified {
		t.Error("the party's keys count as verified before anything decrypted with them")
	}
	if !f.relay(c, enc, from) {
		t.Fatal("a party's packet was not taken")
	}
	if !src.fast.Load().verified {
		t.Error("the party's keys are not verified after its packet decrypted with them")
	}
	c.flush()
	buf := make([]byte, 1500)
	_ = to.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, err := to.Read(buf)
	if err != nil {
		t.Fatal(err)
	}
	var got rtp.Packet
	plain, err := dstGets.DecryptRTP(nil, buf[:n], nil)
	if err != nil {
		t.Fatalf("the sink cannot decrypt what the relay sent: %v", err)
	}
	if err := got.Unmarshal(plain); err != nil {
		t.Fatal(err)
	}
	want := sent
	want.SSRC, want.PayloadType = 0xD57, 100
	if got.SSRC != want.SSRC || got.PayloadType != want.PayloadType || got.SequenceNumber != want.SequenceNumber ||
		got.Timestamp != want.Timestamp || got.Marker != want.Marker || string(got.Payload) != string(want.Payload) {
		t.Errorf("the sink got %v %q, want %v %q", got.Header, got.Payload, want.Header, want.Payload)
	}

	// RTCP from a party is pion's, but it too proves the keys.
	src2 := &party{}
	src2.fast.Store(&partyFast{keys: &sessionKeys{in: relayIn}})
	from2 := netip.MustParseAddrPort("127.0.0.1:40002")
	f.route(from2, src2, nil)
	rr, _ := (&rtcp.ReceiverReport{SSRC: 0x5A5A}).Marshal()
	encRR, err := srcSends.EncryptRTCP(nil, rr, nil)
	if err != nil {
		t.Fatal(err)
	}
	if f.relay(c, encRR, from2) {
		t.Error("RTCP taken by the fast path")
	}
	if !src2.fast.Load().verified {
		t.Error("the party's keys are not verified after its RTCP decrypted with them")
	}

	// A party that left is forgotten.
	f.route(from, nil, src)
	if f.relay(c, enc, from) {
		t.Error("a packet from a party that left was taken")
	}
}

// TestKeyringBounds: the key log and the hellos the keyring follows stay
// within maxHandshakes however many arrive; entries older than keyTTL
// make room; lines that are not TLS 1.2 client randoms are ignored.
func TestKeyringBounds(t *testing.T) {
	k := newKeyring()
	for _, bad := range []string{"", "CLIENT_RANDOM zz 00\n", "SERVER_HANDSHAKE_TRAFFIC_SECRET 00 00\n", "CLIENT_RANDOM 0011 00\n"} {
		if n, err := k.Write([]byte(bad)); err != nil || n != len(bad) {
			t.Fatalf("Write(%q) = %d, %v", bad, n, err)
		}
	}
	if len(k.secrets) != 0 {
		t.Fatalf("%d secrets kept from lines that hold none", len(k.secrets))
	}
	line := func(i int) []byte {
		var r [32]byte
		r[0], r[1] = byte(i>>8), byte(i)
		return fmt.Appendf(nil, "CLIENT_RANDOM %x %x\n", r, make([]byte, 48))
	}
	for i := range maxHandshakes + 100 {
		if n, err := k.Write(line(i)); err != nil || n != len(line(i)) {
			t.Fatalf("Write = %d, %v", n, err)
		}
	}
	if len(k.secrets) != maxHandshakes {
		t.Errorf("%d secrets kept, want the bound %d", len(k.secrets), maxHandshakes)
	}
	for i := range maxHandshakes + 100 {
		k.note(netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)}), 5000), func(h *hellos) { h.haveClient = true })
	}
	if len(k.hellos) != maxHandshakes {
		t.Errorf("%d handshakes followed, want the bound %d", len(k.hellos), maxHandshakes)
	}
	// Stale entries make room for new ones.
	for r, s := range k.secrets {
		s.at = s.at.Add(-2 * keyTTL)
		k.secrets[r] = s
	}
	if _, err := k.Write(line(maxHandshakes + 200)); err != nil {
		t.Fatal(err)
	}
	if len(k.secrets) != 1 {
		t.Errorf("%d secrets kept after the stale ones expired, want 1", len(k.secrets))
	}
	// A peer whose handshake the keyring did not see has no keys, and
	// asking forgets it.
	peer := netip.MustParseAddrPort("10.0.0.1:5000")
	if _, err := k.take(peer); err != errNoKeys {
		t.Errorf("take without a handshake: %v", err)
	}
	if _, ok := k.hellos[peer]; ok {
		t.Error("take kept the handshake it could not use")
	}
}
