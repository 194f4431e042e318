package gateway_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"

	"github.com/switchboard/switchboard/api"
	"github.com/switchboard/switchboard/auth"
	"github.com/switchboard/switchboard/gateway"
	"github.com/switchboard/switchboard/internal/poll"
	sdk "github.com/switchboard/switchboard/mobile-sdk"
	"github.com/switchboard/switchboard/mobile-sdk/call"
	"github.com/switchboard/switchboard/rtc"
	"github.com/switchboard/switchboard/state"
	"github.com/switchboard/switchboard/state/embedded"
	"github.com/switchboard/switchboard/ticket"
)

// callEnv is a gateway with click-to-call, serving on a loopback port.
type callEnv struct {
	*env
	calls *rtc.Service
	base  string
	// stopCalls stops the node's call service (its relay and liveness)
	// while its HTTP side keeps serving: the node's media is gone.
	stopCalls func()
}

func newCallEnv(t testing.TB, store state.Store, key *auth.Key, node string, tweak func(*rtc.Config)) *callEnv {
	t.Helper()
	if store == nil {
		var err error
		if store, err = embedded.Open(t.TempDir()); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { store.Close() })
	}
	e := newEnvOn(t, gateway.Config{RateSubject: -1, RateIP: -1}, store, key, nil)
	cfg := rtc.Config{Node: node, Logger: slog.New(slog.DiscardHandler), RoutePoll: 20 * time.Millisecond,
		Media: rtc.MediaConfig{IncludeLoopback: true, UDPAddr: "127.0.0.1:0"}}
	if tweak != nil {
		tweak(&cfg)
	}
	calls, err := rtc.New(cfg, store, e.tickets)
	if err != nil {
		t.Fatal(err)
	}
	hub := ticket.NewHub(e.tickets, ticket.HubConfig{}) // the console's live timeline
	e.srv = gateway.New(gateway.Config{RateSubject: -1, RateIP: -1}, gateway.Deps{Store: store, Issuer: e.issuer,
		Verifier: auth.NewVerifier(e.authc, e.key), Tickets: e.tickets, Calls: calls, Hub: hub})
	ctx, cancel := context.WithCancel(context.Background())
	callsCtx, stopCalls := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); _ = calls.Run(callsCtx) }()
	t.Cleanup(func() { cancel(); <-done })
	ce := &callEnv{env: e, calls: calls, stopCalls: func() { stopCalls(); <-done }}
	ce.base = "http://" + e.listen(t)
	// After listen, so it stops first: the feed's streams end, then the
	// server shuts down without waiting on them.
	hubDone := make(chan struct{})
	go func() { defer close(hubDone); _ = hub.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-hubDone })
	return ce
}

func (e *callEnv) client(t testing.TB, sub string, role auth.Role, scopes ...string) *sdk.Client {
	t.Helper()
	tok, _, err := e.issuer.Access(sub, role, scopes, 0)
	if err != nil {
		t.Fatal(err)
	}
	c, err := sdk.New(sdk.Config{BaseURL: e.base})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.SignIn(api.TokenPair{AccessToken: tok}); err != nil {
		t.Fatal(err)
	}
	return c
}

func dial(t testing.TB, c *sdk.Client) *call.Signaling {
	t.Helper()
	s, err := call.Dial(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func openTicket(t testing.TB, c *sdk.Client) api.Ticket {
	t.Helper()
	var tk api.Ticket
	if err := c.Do(context.Background(), "POST", "/v1/tickets", api.OpenTicketRequest{Subject: "projector dead", Queue: "support"}, &tk); err != nil {
		t.Fatal(err)
	}
	return tk
}

// media is a party's synthetic tracks (VP8 and Opus RTP at real rates)
// and what it received.
type tracks struct {
	audio, video *webrtc.TrackLocalStaticRTP
	got          atomic.Int64
	// sent counts packets written (both tracks).
	sent atomic.Int64
	// marked counts received packets carrying supervisorMarker.
	marked atomic.Int64
	stop   chan struct{}
}

func newTracks(t testing.TB) *tracks {
	t.Helper()
	a, _ := webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2}, "audio", "app")
	v, _ := webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000}, "video", "app")
	m := &tracks{audio: a, video: v, stop: make(chan struct{})}
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		var seq uint16
		payload := make([]byte, 160)
		vp8 := append([]byte{0x10, 0x00, 0x9d, 0x01, 0x2a}, make([]byte, 1000)...) // a keyframe-looking VP8 start
		for i := uint32(0); ; i++ {
			select {
			case <-m.stop:
				return
			case <-tick.C:
			}
			seq++
			_ = a.WriteRTP(&rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 111, SequenceNumber: seq, Timestamp: i * 960, SSRC: 1}, Payload: payload})
			_ = v.WriteRTP(&rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 96, SequenceNumber: seq, Timestamp: i * 1800, SSRC: 2, Marker: true}, Payload: vp8})
			m.sent.Add(2)
		}
	}()
	t.Cleanup(func() { close(m.stop); <-done })
	return m
}

func (m *tracks) onTrack(t *webrtc.TrackRemote) {
	go func() {
		buf := make([]byte, 1500)
		for {
			n, _, err := t.Read(buf)
			if err != nil {
				return
			}
			if bytes.Contains(buf[:n], supervisorMarker) {
				m.marked.Add(1)
			}
			m.got.Add(1)
		}
	}()
}

func waitSig(t testing.TB, s *call.Signaling, types ...api.SignalType) api.Signal {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	sig, err := s.Wait(ctx, types...)
	if err != nil {
		t.Fatalf("waiting for %v: %v", types, err)
	}
	return sig
}

// connectCall places a video call as a customer and answers it as an
// agent, both pion clients through the gateway's relay.
func connectCall(t testing.TB, cust, agentEnv *callEnv, custID, agentID string) (cm, am *tracks, cc, ac *call.Call, agentSig *call.Signaling) {
	t.Helper()
	return connectCallWith(t, cust, agentEnv, custID, agentID, callOpts{})
}

// callOpts vary connectCall.
type callOpts struct {
	// API is the customer's pion API (its network, for tests that cut
	// it); nil means call.DefaultAPI. AgentAPI is the agent's.
	API, AgentAPI *webrtc.API
	// Consent is the customer's consent to record the call.
	Consent bool
}

// connectCallWith is connectCall with options.
func connectCallWith(t testing.TB, cust, agentEnv *callEnv, custID, agentID string, o callOpts) (cm, am *tracks, cc, ac *call.Call, agentSig *call.Signaling) {
	t.Helper()
	custAPI := o.API
	agent := agentEnv.client(t, agentID, auth.RoleAgent)
	agentSig = dial(t, agent)
	if err := agentSig.Send(api.Signal{Type: api.SigStatus, Status: api.AgentAvailable}); err != nil {
		t.Fatal(err)
	}
	waitSig(t, agentSig, api.SigStatus)

	customer := cust.client(t, custID, auth.RoleCustomer)
	tk := openTicket(t, customer)
	custSig := dial(t, customer)
	cm, am = newTracks(t), newTracks(t)
	api0 := custAPI
	if api0 == nil {
		api0, _ = call.DefaultAPI(true)
	}
	var dataGot atomic.Value
	cc, placed, err := call.Place(context.Background(), customer, custSig, api.PlaceCallRequest{TicketID: tk.ID, Media: api.MediaVideo, RecordingConsent: o.Consent}, "",
		call.Options{Audio: cm.audio, Video: cm.video, OnTrack: cm.onTrack, API: api0})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cc.Close)
	if placed.SignalingURL == "" || placed.Call.State == "" {
		t.Fatalf("placed %+v", placed)
	}
	ac = answerAndJoin(t, agentSig, cc.ID, am, o.AgentAPI, func(b []byte) { dataGot.Store(string(b)) })
	poll.Until(t, 20*time.Second, 20*time.Millisecond, func() error {
		if cm.got.Load() < 10 || am.got.Load() < 10 {
			return fmt.Errorf("packets received: customer %d, agent %d", cm.got.Load(), am.got.Load())
		}
		return nil
	})
	poll.Until(t, 10*time.Second, 20*time.Millisecond, func() error {
		if !cc.DataOpen() {
			return fmt.Errorf("data channel not open")
		}
		_ = cc.SendData([]byte(`{"fault":"E42"}`))
		if v, _ := dataGot.Load().(string); v != `{"fault":"E42"}` {
			return fmt.Errorf("agent got %q on the data channel", v)
		}
		return nil
	})
	return cm, am, cc, ac, agentSig
}

// answerAndJoin is the agent on agentSig taking the call that rings them,
// which must be callID, and joining its media with tracks m.
func answerAndJoin(t testing.TB, agentSig *call.Signaling, callID string, m *tracks, a *webrtc.API, onData func([]byte)) *call.Call {
	t.Helper()
	ring := waitSig(t, agentSig, api.SigRing)
	if ring.CallID != callID {
		t.Fatalf("rang %s, placed %s", ring.CallID, callID)
	}
	if err := agentSig.Send(api.Signal{Type: api.SigAnswer, CallID: ring.CallID}); err != nil {
		t.Fatal(err)
	}
	waitSig(t, agentSig, api.SigCall)
	if a == nil {
		a, _ = call.DefaultAPI(true)
	}
	ac, err := call.Join(context.Background(), agentSig, ring.CallID, call.Options{Audio: m.audio, Video: m.video, ReceiveVideo: true,
		OnTrack: m.onTrack, API: a, OnData: onData})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ac.Close)
	return ac
}

// hangUpSeen hangs up from's side and waits until to's side has ended.
func hangUpSeen(t *testing.T, from, to *call.Call) {
	t.Helper()
	if err := from.HangUp(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-to.Ended():
	case <-time.After(10 * time.Second):
		t.Fatal("the other party did not see the hang-up")
	}
}

func TestCallEndToEnd(t *testing.T) {
	e := newCallEnv(t, nil, nil, "node-a", nil)
	_, _, cc, ac, _ := connectCall(t, e, e, "joe", "ann")
	// The agent hangs up; the customer's side ends; the ticket has the events.
	hangUpSeen(t, ac, cc)
	cl := e.client(t, "joe", auth.RoleCustomer)
	got, err := cl.Call(context.Background(), cc.ID)
	if err != nil || got.State != api.CallEnded || got.HungUpBy != "ann" {
		t.Fatalf("call after hang-up: %+v %v", got, err)
	}
	var view struct {
		Ticket api.Ticket  `json:"ticket"`
		Events []api.Event `json:"events"`
	}
	if err := cl.Do(context.Background(), "GET", "/v1/tickets/"+got.TicketID, nil, &view); err != nil {
		t.Fatal(err)
	}
	seen := map[api.EventType]json.RawMessage{}
	for _, ev := range view.Events {
		seen[ev.Type] = ev.Payload
	}
	for _, typ := range []api.EventType{api.EventCallRequested, api.EventCallStarted, api.EventCallEnded} {
		if seen[typ] == nil {
			t.Errorf("ticket lacks %s: %v", typ, view.Events)
		}
	}
}

func TestConsoleIsServed(t *testing.T) {
	e := newEnv(t, gateway.Config{})
	for path, want := range map[string]string{"/console/": "Switchboard console", "/console/console.js": "sbConsole"} {
		res := e.do(t, "GET", path, "", nil)
		b := make([]byte, 64<<10)
		n, _ := io.ReadFull(res.Body, b)
		res.Body.Close()
		if res.StatusCode != 200 || !strings.Contains(string(b[:n]), want) || res.Header.Get("Content-Security-Policy") == "" {
			t.Fatalf("%s: %d csp=%q", path, res.StatusCode, res.Header.Get("Content-Security-Policy"))
		}
	}
}

// TestCallBackWithEncodedLongNoteKeepsWaiting: a call-back note within
// ticket.MaxText whose follow-up event is over ticket.MaxPayload once
// JSON-encoded ('<' takes six bytes there) is refused before the call
// ends: the customer keeps their place in the queue, and no follow-up is
// left to fire.
func TestCallBackWithEncodedLongNoteKeepsWaiting(t *testing.T) {
	e := newCallEnv(t, nil, nil, "node-a", nil)
	joe := e.token(t, "joe", auth.RoleCustomer)
	tk := e.open(t, joe, api.OpenTicketRequest{Subject: "projector dead", Queue: "support"})
	var placed api.PlacedCall
	decodeJSON(t, e.do(t, "POST", "/v1/calls", joe, mustJSON(t, api.PlaceCallRequest{TicketID: tk.ID, Media: api.MediaAudio})), 201, &placed)
	id := placed.Call.ID
	check := e.unchanged(t, tk.ID)
	note := strings.Repeat("<", ticket.MaxText)
	readProblem(t, e.do(t, "POST", "/v1/calls/"+id+"/callback", joe, mustJSON(t, api.CallBackRequest{Note: note})), 422, api.CodeValidation)
	var c api.Call
	decodeJSON(t, e.do(t, "GET", "/v1/calls/"+id, joe, nil), 200, &c)
	if c.State != api.CallQueued || c.Position != 1 {
		t.Fatalf("the refused call-back ended the wait: %+v", c)
	}
	check()
}
