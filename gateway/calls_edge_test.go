package gateway_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	fws "github.com/fasthttp/websocket"
	"github.com/pion/interceptor"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"

	"github.com/switchboard/switchboard/api"
	"github.com/switchboard/switchboard/auth"
	"github.com/switchboard/switchboard/internal/poll"
	"github.com/switchboard/switchboard/mobile-sdk/call"
	"github.com/switchboard/switchboard/rtc"
)

// flowing fails the test unless both parties keep receiving media.
func flowing(t *testing.T, cm, am *tracks) {
	t.Helper()
	c0, a0 := cm.got.Load(), am.got.Load()
	poll.Until(t, 20*time.Second, 20*time.Millisecond, func() error {
		if cm.got.Load() < c0+10 || am.got.Load() < a0+10 {
			return fmt.Errorf("media stalled: customer %d -> %d, agent %d -> %d", c0, cm.got.Load(), a0, am.got.Load())
		}
		return nil
	})
}

// A WebSocket that connects and never says anything is closed with 4003
// within rtcHelloWait (10s); a client that never finishes its upgrade
// request is cut off by the server's ReadTimeout (10s). A call in progress
// keeps its media meanwhile.
func TestCallSilentSocketAndHalfUpgrade(t *testing.T) {
	e := newCallEnv(t, nil, nil, "node-a", nil)
	cm, am, _, _, _ := connectCall(t, e, e, "joe", "ann")
	host := strings.TrimPrefix(e.base, "http://")

	var wg sync.WaitGroup
	errs := make(chan error, 2)
	wg.Add(2)
	go func() { // connects, never sends
		defer wg.Done()
		conn, _, err := fws.DefaultDialer.Dial("ws://"+host+"/v1/rtc?access_token="+e.token(t, "lurker", auth.RoleCustomer), nil)
		if err != nil {
			errs <- err
			return
		}
		defer conn.Close()
		start := time.Now()
		_ = conn.SetReadDeadline(time.Now().Add(30 * time.Second))
		for {
			if _, _, err = conn.ReadMessage(); err != nil {
				break
			}
		}
		var ce *fws.CloseError
		if !errors.As(err, &ce) || ce.Code != gateway4003 {
			errs <- fmt.Errorf("a silent socket ended with %v after %v, want close 4003", err, time.Since(start))
			return
		}
		if d := time.Since(start); d > 20*time.Second {
			errs <- fmt.Errorf("a silent socket was closed after %v, want about 10s", d)
		}
	}()
	go func() { // an upgrade request that never ends
		defer wg.Done()
		conn, err := net.Dial("tcp", host)
		if err != nil {
			errs <- err
			return
		}
		defer conn.Close()
		start := time.Now()
		if _, err := fmt.Fprintf(conn, "GET /v1/rtc HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n", host); err != nil {
			errs <- err
			return
		}
		_ = conn.SetReadDeadline(time.Now().Add(30 * time.Second))
		_, err = bufio.NewReader(conn).ReadString(0) // reads until the server hangs up
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			errs <- fmt.Errorf("a half-finished upgrade was still open after 30s")
			return
		}
		if d := time.Since(start); d > 20*time.Second {
			errs <- fmt.Errorf("a half-finished upgrade was cut off after %v, want about 10s", d)
		}
	}()
	flowing(t, cm, am)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	flowing(t, cm, am)
}

const gateway4003 = 4003 // gateway.CloseIdle

// TestCallSignalingClosedAtTokenExpiry: a signaling connection whose
// token expires is closed with 4001 at once, even while its client is
// quiet (it only answers the server's pings). The reader used to wait for
// the client's next message before the close went out.
func TestCallSignalingClosedAtTokenExpiry(t *testing.T) {
	e := newCallEnv(t, nil, nil, "node-a", nil)
	tok, _, err := e.issuer.Access("joe", auth.RoleCustomer, nil, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	conn, _, err := fws.DefaultDialer.Dial(strings.Replace(e.base, "http", "ws", 1)+"/v1/rtc?access_token="+tok, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := conn.WriteJSON(api.Signal{Type: api.SigPing}); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_ = conn.SetReadDeadline(time.Now().Add(20 * time.Second))
	for {
		if _, _, err = conn.ReadMessage(); err != nil {
			break
		}
	}
	var ce *fws.CloseError
	if !errors.As(err, &ce) || ce.Code != 4001 {
		t.Fatalf("the connection ended with %v after %v, want close 4001 (token expired) about 2s in", err, time.Since(start))
	}
}

// An offer above rtc.MaxSDP (64 KiB) but inside the socket's 80 KiB read
// limit reaches the validator and is refused with a clear error; the
// connection and the call stay up.
func TestCallOfferBetweenLimits(t *testing.T) {
	e := newCallEnv(t, nil, nil, "node-a", nil)
	cm, am, cc, _, _ := connectCall(t, e, e, "joe", "ann")
	joe := dial(t, e.client(t, "joe", auth.RoleCustomer))
	_ = joe.Send(api.Signal{Type: api.SigJoin, CallID: cc.ID})
	waitSig(t, joe, api.SigJoined)
	good := goodOffer(t)
	pad := strings.Repeat("a=x-pad:"+strings.Repeat("p", 90)+"\r\n", (70<<10-len(good))/100+1)
	big := good + pad
	if len(big) <= rtc.MaxSDP || len(big) >= 80<<10 {
		t.Fatalf("offer of %d bytes is not between the limits", len(big))
	}
	_ = joe.Send(api.Signal{Type: api.SigOffer, CallID: cc.ID, SDP: big})
	sig := refused(t, joe, api.CodeValidation)
	if !strings.Contains(sig.Detail, "larger than 65536 bytes") {
		t.Fatalf("refusal does not say why: %q", sig.Detail)
	}
	_ = joe.Send(api.Signal{Type: api.SigPing})
	waitSig(t, joe, api.SigPong)
	flowing(t, cm, am)
}

// blackhole is a UDP socket that can go silent both ways, like a phone
// whose network vanished without a hang-up.
type blackhole struct {
	net.PacketConn
	off atomic.Bool
}

func (b *blackhole) ReadFrom(p []byte) (int, net.Addr, error) {
	for {
		n, a, err := b.PacketConn.ReadFrom(p)
		if err != nil || !b.off.Load() {
			return n, a, err
		}
	}
}

func (b *blackhole) WriteTo(p []byte, a net.Addr) (int, error) {
	if b.off.Load() {
		return len(p), nil
	}
	return b.PacketConn.WriteTo(p, a)
}

// blackholeAPI is call.DefaultAPI whose ICE runs over one blackhole socket.
func blackholeAPI(t *testing.T) (*webrtc.API, *blackhole) {
	t.Helper()
	conn, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	bh := &blackhole{PacketConn: conn}
	mux := webrtc.NewICEUDPMux(nil, bh)
	t.Cleanup(func() { _ = mux.Close() })
	m := sdkCodecs()
	se := webrtc.SettingEngine{}
	se.SetICEUDPMux(mux)
	se.SetIncludeLoopbackCandidate(true)
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	return webrtc.NewAPI(webrtc.WithMediaEngine(m), webrtc.WithSettingEngine(se), webrtc.WithInterceptorRegistry(&interceptor.Registry{})), bh
}

// Consent freshness (RFC 7675): the customer's network goes silent without
// a hang-up. Within 30s the gateway stops forwarding media to it (the
// relay's forwarded count stops growing, though the agent keeps sending)
// and tells the agent the customer is reconnecting. When the network comes
// back, the SDK's Reconnect (ICE restart, over a new signaling connection)
// brings the media back.
func TestCallConsentFreshnessAndReconnect(t *testing.T) {
	e := newCallEnv(t, nil, nil, "node-a", nil)
	capi, bh := blackholeAPI(t)
	cm, am, cc, _, agentSig := connectCallWith(t, e, e, "joe", "ann", callOpts{API: capi})
	relay := e.calls.Relay()

	bh.off.Store(true)
	cut := time.Now()
	poll.Until(t, 30*time.Second, 100*time.Millisecond, func() error {
		before := relay.Forwarded()
		time.Sleep(500 * time.Millisecond) // the agent sends 100 packets a second
		if after := relay.Forwarded(); after != before {
			return fmt.Errorf("still forwarding %v after the customer went silent (%d -> %d)", time.Since(cut), before, after)
		}
		return nil
	})
	t.Logf("forwarding stopped %v after the customer went silent", time.Since(cut).Round(100*time.Millisecond))
	if time.Since(cut) > 30*time.Second {
		t.Fatalf("forwarding stopped only after %v", time.Since(cut))
	}
	poll.Until(t, 10*time.Second, 20*time.Millisecond, func() error {
		select {
		case sig := <-agentSig.Signals():
			if sig.Type == api.SigPeer && sig.Peer == "reconnecting" {
				return nil
			}
			return fmt.Errorf("agent got %s %s", sig.Type, sig.Peer)
		default:
			return errors.New("the agent was not told the customer is reconnecting")
		}
	})

	// The network is back; the app reconnects over a new signaling
	// connection and restarts ICE.
	bh.off.Store(false)
	custSig := dial(t, e.client(t, "joe", auth.RoleCustomer))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := cc.Reconnect(ctx, custSig); err != nil {
		t.Fatal(err)
	}
	flowing(t, cm, am)
	got, err := e.client(t, "joe", auth.RoleCustomer).Call(context.Background(), cc.ID)
	if err != nil || got.State != api.CallActive {
		t.Fatalf("call after reconnect: %+v %v", got, err)
	}
}

// marked reads a remote track and counts its packets, and those carrying
// the supervisor's marker.
type marked struct {
	mu     sync.Mutex
	byID   map[string]int
	marked atomic.Int64
}

var supervisorMarker = []byte("SUPERVISOR-SPEAKING")

func (m *marked) onTrack(tr *webrtc.TrackRemote) {
	go func() {
		buf := make([]byte, 1500)
		for {
			n, _, err := tr.Read(buf)
			if err != nil {
				return
			}
			if bytes.Contains(buf[:n], supervisorMarker) {
				m.marked.Add(1)
			}
			m.mu.Lock()
			m.byID[tr.ID()]++
			m.mu.Unlock()
		}
	}()
}

func (m *marked) count(id string) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.byID[id]
}

// boundTrack records that pion started sending it.
type boundTrack struct {
	*webrtc.TrackLocalStaticRTP
	bound atomic.Bool
}

func (b *boundTrack) Bind(c webrtc.TrackLocalContext) (webrtc.RTPCodecParameters, error) {
	p, err := b.TrackLocalStaticRTP.Bind(c)
	if err == nil {
		b.bound.Store(true)
	}
	return p, err
}

// supervisorTalks adds a microphone to a listening supervisor's
// connection, renegotiates, and sends the supervisor's marker on it 50
// times a second until the test ends. It returns the microphone.
func supervisorTalks(t *testing.T, ctx context.Context, sc *call.Call, sig *call.Signaling) *boundTrack {
	t.Helper()
	rtpTrack, _ := webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2}, "mic", "sue")
	mic := &boundTrack{TrackLocalStaticRTP: rtpTrack}
	if _, err := sc.PeerConnection().AddTrack(mic); err != nil {
		t.Fatal(err)
	}
	if err := sc.Reconnect(ctx, sig); err != nil {
		t.Fatal(err)
	}
	stop, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for seq := uint16(0); ; seq++ {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			_ = mic.WriteRTP(&rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 111, SequenceNumber: seq, Timestamp: uint32(seq) * 960}, Payload: supervisorMarker})
		}
	}()
	t.Cleanup(func() { close(stop); <-done })
	return mic
}

// A supervisor listens in: it receives the customer's audio and video and
// the agent's audio; what it sends (it renegotiates to add a microphone)
// reaches nobody. Mute state is relayed from the customer to the agent.
func TestCallSupervisorAndMute(t *testing.T) {
	e := newCallEnv(t, nil, nil, "node-a", nil)
	cm, am, cc, _, agentSig := connectCall(t, e, e, "joe", "ann")

	// Someone without the supervisor scope cannot listen.
	nosy := dial(t, e.client(t, "nosy", auth.RoleAgent))
	_ = nosy.Send(api.Signal{Type: api.SigJoin, CallID: cc.ID, Listen: true})
	refused(t, nosy, api.CodeNotFound)

	supSig := dial(t, e.client(t, "sue", auth.RoleAgent, "supervisor"))
	heard := &marked{byID: map[string]int{}}
	api0, _ := call.DefaultAPI(true)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	sc, err := call.Join(ctx, supSig, cc.ID, call.Options{Listen: true, ReceiveVideo: true, OnTrack: heard.onTrack, API: api0})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sc.Close)
	poll.Until(t, 20*time.Second, 20*time.Millisecond, func() error {
		if heard.count("audio") < 10 || heard.count("video") < 10 || heard.count("audio-agent") < 10 {
			return fmt.Errorf("supervisor heard audio %d, video %d, the agent's audio %d", heard.count("audio"), heard.count("video"), heard.count("audio-agent"))
		}
		return nil
	})

	// The supervisor adds a microphone and renegotiates; the relay takes
	// the offer but forwards nothing of it.
	mic := supervisorTalks(t, ctx, sc, supSig)
	// The supervisor's packets do leave it: its sender started (the track
	// was bound to the connection to the relay).
	poll.Until(t, 20*time.Second, 20*time.Millisecond, func() error {
		if !mic.bound.Load() {
			return errors.New("the supervisor's microphone was never bound to its connection")
		}
		return nil
	})
	// What the parties receive meanwhile: not one packet of the
	// supervisor's.
	c0, a0 := cm.got.Load(), am.got.Load()
	poll.Until(t, 20*time.Second, 20*time.Millisecond, func() error {
		if cm.got.Load() < c0+100 || am.got.Load() < a0+100 {
			return fmt.Errorf("parties received %d and %d more packets", cm.got.Load()-c0, am.got.Load()-a0)
		}
		return nil
	})
	if n := cm.marked.Load() + am.marked.Load(); n > 0 {
		t.Fatalf("%d of the supervisor's packets reached the parties", n)
	}

	// Mute: the customer mutes its microphone; the agent is told.
	if err := cc.SetMuted(true, false); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, 10*time.Second, 10*time.Millisecond, func() error {
		for {
			select {
			case sig := <-agentSig.Signals():
				if sig.Type == api.SigMute && sig.Mute != nil && sig.Mute.Audio && !sig.Mute.Video && sig.Peer == "caller" {
					return nil
				}
			default:
				return errors.New("the agent was not told the customer muted")
			}
		}
	})
}
