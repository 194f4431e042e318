package mobilecall_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"
	"github.com/pion/webrtc/v4/pkg/media"

	"github.com/switchboard/switchboard/api"
	"github.com/switchboard/switchboard/auth"
	"github.com/switchboard/switchboard/gateway"
	"github.com/switchboard/switchboard/internal/poll"
	sdk "github.com/switchboard/switchboard/mobile-sdk"
	"github.com/switchboard/switchboard/mobile-sdk/call"
	"github.com/switchboard/switchboard/mobile-sdk/mobile"
	"github.com/switchboard/switchboard/mobile-sdk/mobilecall"
	"github.com/switchboard/switchboard/rtc"
	"github.com/switchboard/switchboard/state"
	"github.com/switchboard/switchboard/state/embedded"
	"github.com/switchboard/switchboard/ticket"
)

// gw is a real gateway node with click-to-call on a loopback port.
type gw struct {
	url    string
	issuer *auth.Issuer
	// stopCalls stops the node's call service (its relay and liveness)
	// while its HTTP side keeps serving: the node's media is gone.
	stopCalls func()
}

// startGateway runs one node on an embedded store.
func startGateway(t *testing.T) *gw {
	t.Helper()
	return startGatewayAuth(t, auth.Config{})
}

// startGatewayAuth is startGateway with ac for the node's tokens.
func startGatewayAuth(t *testing.T, ac auth.Config) *gw {
	t.Helper()
	store, err := embedded.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	key, err := auth.LoadOrCreateKey(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return startNode(t, store, key, "node-a", ac, nil)
}

// startNode runs a gateway node named node on store, signing with key.
func startNode(t *testing.T, store state.Store, key *auth.Key, node string, ac auth.Config, tweak func(*rtc.Config)) *gw {
	t.Helper()
	iss := auth.NewIssuer(ac, key, store)
	tickets := ticket.New(store)
	cfg := rtc.Config{Node: node, Logger: slog.New(slog.DiscardHandler), RoutePoll: 20 * time.Millisecond,
		Media: rtc.MediaConfig{IncludeLoopback: true}}
	if tweak != nil {
		tweak(&cfg)
	}
	calls, err := rtc.New(cfg, store, tickets)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	callsDone := make(chan struct{})
	go func() { defer close(callsDone); _ = calls.Run(ctx) }()
	stopCalls := sync.OnceFunc(func() { cancel(); <-callsDone })
	t.Cleanup(stopCalls) // after the server stopped
	srv := gateway.New(gateway.Config{RateSubject: -1, RateIP: -1}, gateway.Deps{Store: store, Issuer: iss,
		Verifier: auth.NewVerifier(ac, key), Tickets: tickets, Calls: calls})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan struct{})
	go func() { defer close(served); _ = srv.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		<-served
	})
	return &gw{url: "http://" + ln.Addr().String(), issuer: iss, stopCalls: stopCalls}
}

// tokens is the app's TokenStore.
type tokens struct {
	mu              sync.Mutex
	access, refresh string
}

func (s *tokens) AccessToken() string  { s.mu.Lock(); defer s.mu.Unlock(); return s.access }
func (s *tokens) RefreshToken() string { s.mu.Lock(); defer s.mu.Unlock(); return s.refresh }
func (s *tokens) SaveTokens(access, refresh string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.access, s.refresh = access, refresh
	return nil
}

// customer is the app: a signed-in mobile.Client, a Caller and a ticket.
func (g *gw) customer(t *testing.T, sub string) (*mobile.Client, *mobilecall.Caller, string) {
	t.Helper()
	return g.customerAt(t, sub, g.url)
}

// customerAt is customer with the app pointed at url (a load balancer).
func (g *gw) customerAt(t *testing.T, sub, url string) (*mobile.Client, *mobilecall.Caller, string) {
	t.Helper()
	p, err := g.issuer.Pair(context.Background(), sub, auth.RoleCustomer, nil)
	if err != nil {
		t.Fatal(err)
	}
	client, err := mobile.NewClient(url, &tokens{access: p.AccessToken, refresh: p.RefreshToken})
	if err != nil {
		t.Fatal(err)
	}
	tk, err := client.OpenTicket("projector dead", "no picture since this morning")
	if err != nil {
		t.Fatal(err)
	}
	caller, err := mobilecall.NewCaller(client)
	if err != nil {
		t.Fatal(err)
	}
	if err := mobilecall.UseLoopback(caller); err != nil {
		t.Fatal(err)
	}
	return client, caller, tk.ID
}

// Frames carry a marker with their kind and index, and filler derived
// from the index, so a receiver can tell an intact frame from a damaged
// one. Video frames are bigger than a packet: the receiver must join
// them again.
const (
	audioBytes, audioMs = 160, 20
	videoBytes, videoMs = 3000, 40
)

func frame(kind string, i int) []byte {
	size := audioBytes
	if bytes.HasSuffix([]byte(kind), []byte("video")) {
		size = videoBytes
	}
	b := fmt.Appendf(nil, "%s-%06d:", kind, i)
	return append(b, bytes.Repeat([]byte{byte(i)}, size-len(b))...)
}

// index finds kind's marker in b and returns its frame index.
func index(kind string, b []byte) (int, bool) {
	at := bytes.Index(b, []byte(kind+"-"))
	if at < 0 || len(b) < at+len(kind)+7 {
		return 0, false
	}
	i, err := strconv.Atoi(string(b[at+len(kind)+1 : at+len(kind)+7]))
	return i, err == nil
}

// feeder writes numbered audio frames every 20 ms and video frames every
// 40 ms until stopped; n is the index of the last audio frame begun.
type feeder struct {
	n    atomic.Int64
	stop func()
}

func feed(t *testing.T, kind string, audio, video func([]byte, time.Duration) error) *feeder {
	t.Helper()
	f := &feeder{}
	quit, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(audioMs * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-quit:
				return
			case <-tick.C:
			}
			i := int(f.n.Add(1))
			_ = audio(frame(kind+"-audio", i), audioMs*time.Millisecond) // fails once the call ended: the test checks what arrived
			if i%2 == 0 {
				_ = video(frame(kind+"-video", i/2), videoMs*time.Millisecond)
			}
		}
	}()
	f.stop = sync.OnceFunc(func() { close(quit); <-done })
	t.Cleanup(f.stop)
	return f
}

// listener is the app's Listener; it checks each frame on arrival.
type listener struct {
	mu     sync.Mutex
	states []mobilecall.State
	frames map[string]map[int]bool // kind -> intact frames received
	durMs  map[string]map[int]int  // kind -> durationMs -> frames
	bad    []string
	data   []string
	errs   []string
	// keyframes counts OnKeyframeRequest calls.
	keyframes int
}

func newListener() *listener {
	return &listener{frames: map[string]map[int]bool{}, durMs: map[string]map[int]int{}}
}

func (l *listener) OnState(s *mobilecall.State) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.states = append(l.states, *s)
}

func (l *listener) OnAudioFrame(b []byte, ms int) { l.got("agent-audio", b, ms) }
func (l *listener) OnVideoFrame(b []byte, ms int) { l.got("agent-video", b, ms) }

func (l *listener) got(kind string, b []byte, ms int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	i, ok := index(kind, b)
	if !ok || !bytes.Equal(b, frame(kind, i)) {
		l.bad = append(l.bad, fmt.Sprintf("%s: a damaged frame of %d bytes: %.20q", kind, len(b), b))
		return
	}
	if l.frames[kind] == nil {
		l.frames[kind], l.durMs[kind] = map[int]bool{}, map[int]int{}
	}
	l.frames[kind][i] = true
	l.durMs[kind][ms]++
}

func (l *listener) OnKeyframeRequest() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.keyframes++
}

func (l *listener) keyframeCount() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.keyframes
}

func (l *listener) OnData(msg []byte) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.data = append(l.data, string(msg))
}

func (l *listener) OnError(msg string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.errs = append(l.errs, msg)
}

func (l *listener) last() mobilecall.State {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.states) == 0 {
		return mobilecall.State{}
	}
	return l.states[len(l.states)-1]
}

func (l *listener) count(kind string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.frames[kind])
}

// agent is an agent's console: the Go SDK's call package with pion,
// reading the customer's frames out of the RTP packets itself.
type agent struct {
	sig          *call.Signaling
	call         *call.Call
	audio, video *webrtc.TrackLocalStaticSample
	// videoRTP, when set before answer, replaces video: the test
	// packetizes the agent's camera itself (to lose a packet).
	videoRTP *webrtc.TrackLocalStaticRTP
	// videoSSRC is the customer's video stream as the agent receives it.
	videoSSRC atomic.Uint32
	mu        sync.Mutex
	frames    map[string]map[int]bool // kind -> frames whose marker arrived
	data      []string
}

// newAgent signs an agent in with skill and makes them available. Their
// token outlives any test, whatever the node's access TTL.
func (g *gw) newAgent(t *testing.T, sub, skill string) *agent {
	t.Helper()
	tok, _, err := g.issuer.Access(sub, auth.RoleAgent, []string{"skill:" + skill}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	c, err := sdk.New(sdk.Config{BaseURL: g.url})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.SignIn(api.TokenPair{AccessToken: tok}); err != nil {
		t.Fatal(err)
	}
	a := &agent{frames: map[string]map[int]bool{}}
	if a.sig, err = call.Dial(context.Background(), c); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.sig.Close() })
	if err := a.sig.Send(api.Signal{Type: api.SigStatus, Status: api.AgentAvailable}); err != nil {
		t.Fatal(err)
	}
	a.wait(t, api.SigStatus)
	a.audio, _ = webrtc.NewTrackLocalStaticSample(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2}, "audio", "agent")
	a.video, _ = webrtc.NewTrackLocalStaticSample(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000}, "video", "agent")
	return a
}

func (a *agent) wait(t *testing.T, types ...api.SignalType) api.Signal {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	s, err := a.sig.Wait(ctx, types...)
	if err != nil {
		t.Fatalf("agent waiting for %v: %v", types, err)
	}
	return s
}

// answer takes the call that rings, which must be id, and joins its media.
func (a *agent) answer(t *testing.T, id string) api.Signal {
	t.Helper()
	ring := a.wait(t, api.SigRing)
	if ring.CallID != id {
		t.Fatalf("rang %s, placed %s", ring.CallID, id)
	}
	if err := a.sig.Send(api.Signal{Type: api.SigAnswer, CallID: id}); err != nil {
		t.Fatal(err)
	}
	a.wait(t, api.SigCall)
	pion, _ := call.DefaultAPI(true)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var video webrtc.TrackLocal = a.video
	if a.videoRTP != nil {
		video = a.videoRTP
	}
	var err error
	a.call, err = call.Join(ctx, a.sig, id, call.Options{Audio: a.audio, Video: video, ReceiveVideo: true, API: pion,
		OnTrack: a.onTrack, OnData: func(b []byte) { a.mu.Lock(); a.data = append(a.data, string(b)); a.mu.Unlock() }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.call.Close)
	return ring
}

// onTrack notes the frame markers in the customer's packets (a video
// frame's marker is in its first packet).
func (a *agent) onTrack(tr *webrtc.TrackRemote) {
	kind := "cust-" + tr.Kind().String()
	if tr.Kind() == webrtc.RTPCodecTypeVideo {
		a.videoSSRC.Store(uint32(tr.SSRC()))
	}
	go func() {
		for {
			p, _, err := tr.ReadRTP()
			if err != nil {
				return // the connection closed
			}
			if i, ok := index(kind, p.Payload); ok {
				a.mu.Lock()
				if a.frames[kind] == nil {
					a.frames[kind] = map[int]bool{}
				}
				a.frames[kind][i] = true
				a.mu.Unlock()
			}
		}
	}()
}

func (a *agent) count(kind string) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.frames[kind])
}

func (a *agent) got(kind string, i int) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.frames[kind][i]
}

func (a *agent) feed(t *testing.T) *feeder {
	write := func(tr *webrtc.TrackLocalStaticSample) func([]byte, time.Duration) error {
		return func(b []byte, d time.Duration) error { return tr.WriteSample(media.Sample{Data: b, Duration: d}) }
	}
	return feed(t, "agent", write(a.audio), write(a.video))
}

// flowing waits until both sides received at least n more intact frames
// of each kind than they had.
func flowing(t *testing.T, l *listener, a *agent, n int) {
	t.Helper()
	base := map[string]int{"agent-audio": l.count("agent-audio"), "agent-video": l.count("agent-video"),
		"cust-audio": a.count("cust-audio"), "cust-video": a.count("cust-video")}
	poll.Until(t, 20*time.Second, 20*time.Millisecond, func() error {
		now := map[string]int{"agent-audio": l.count("agent-audio"), "agent-video": l.count("agent-video"),
			"cust-audio": a.count("cust-audio"), "cust-video": a.count("cust-video")}
		for k, v := range now {
			if v < base[k]+n {
				return fmt.Errorf("frames received: %v, want %d more of each than %v", now, n, base)
			}
		}
		return nil
	})
}

// writer adapts a Call's WriteAudio or WriteVideo to the feeder.
func writer(w func([]byte, int) error) func([]byte, time.Duration) error {
	return func(b []byte, d time.Duration) error { return w(b, int(d/time.Millisecond)) }
}

// goroutines counts the goroutines running (runtime.NumGoroutine) less
// the test gateway's idle HTTP workers, and returns their stacks: fasthttp
// keeps a worker 10s after its connection ended (MaxIdleWorkerDuration)
// for the next one, which is the server's business, not the call's.
func goroutines() (int, string) {
	buf := make([]byte, 8<<20)
	buf = buf[:runtime.Stack(buf, true)]
	n := 0
	var b strings.Builder
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "fasthttp.(*workerPool).workerFunc") && !strings.Contains(g, "serveConn") {
			continue
		}
		n++
		b.WriteString(g + "\n\n")
	}
	return n, b.String()
}

// closeWithin closes c and fails the test if that takes longer than d:
// Close waits for the call's goroutines, and one that never ends would
// hang it.
func closeWithin(t *testing.T, c *mobilecall.Call, d time.Duration) {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- c.Close() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(d):
		t.Fatalf("Close did not return within %v", d)
	}
}

// place places a video call through the wrapper and has the agent answer
// it; both sides then feed numbered frames.
func place(t *testing.T, caller *mobilecall.Caller, ticketID string, a *agent) (c *mobilecall.Call, l *listener, cust, agent *feeder) {
	t.Helper()
	l = newListener()
	var err error
	c, err = caller.Place(&mobilecall.PlaceRequest{TicketID: ticketID, Video: true, Skill: "projectors"}, l)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	ring := a.answer(t, c.ID())
	if ring.Call == nil || ring.Call.Skill != "projectors" || ring.Call.Media != api.MediaVideo {
		t.Fatalf("the agent was rung for %+v, want a video call for skill projectors", ring.Call)
	}
	poll.Until(t, 20*time.Second, 20*time.Millisecond, func() error {
		if s := l.last(); s.State != mobilecall.StateConnected {
			return fmt.Errorf("state %+v, want connected", s)
		}
		return nil
	})
	return c, l, feed(t, "cust", writer(c.WriteAudio), writer(c.WriteVideo)), a.feed(t)
}
