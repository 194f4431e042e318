// Package call is the WebRTC side of the Switchboard SDK: signaling over
// GET /v1/rtc, a pion PeerConnection to the gateway's relay with the
// audio and video tracks the app supplies, the diagnostics data channel,
// hang-up, and reconnect after a network change (ICE restart).
//
// Unlike package sdk it imports pion and a WebSocket client, so it is not
// gomobile-bindable itself: package mobilecall is its bindable face
// (tracks as encoded frames in and listener callbacks out).
package call

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/fasthttp/websocket"
	"github.com/pion/interceptor"
	"github.com/pion/webrtc/v4"

	"github.com/switchboard/switchboard/api"
	sdk "github.com/switchboard/switchboard/mobile-sdk"
)

// queue bounds signals waiting for the app to read them.
const queue = 256

// Signaling is one connection to GET /v1/rtc.
type Signaling struct {
	conn *websocket.Conn
	wmu  sync.Mutex
	in   chan api.Signal
	done chan struct{}
	err  error
	subs sync.Map // call ID -> func(api.Signal): a joined call's handler
}

// Dial opens the signaling WebSocket with c's access token.
func Dial(ctx context.Context, c *sdk.Client) (*Signaling, error) {
	tok, err := c.AccessToken(ctx)
	if err != nil {
		return nil, err
	}
	u := c.BaseURL()
	u.Scheme = map[string]string{"https": "wss", "http": "ws"}[u.Scheme]
	u.Path = "/v1/rtc"
	h := http.Header{"Authorization": {"Bearer " + tok}}
	d := websocket.Dialer{HandshakeTimeout: 10 * time.Second}
	conn, _, err := d.DialContext(ctx, u.String(), h)
	if err != nil {
		return nil, fmt.Errorf("switchboard: signaling: %w", err)
	}
	s := &Signaling{conn: conn, in: make(chan api.Signal, queue), done: make(chan struct{})}
	go s.read()
	if err := s.Send(api.Signal{Type: api.SigPing}); err != nil {
		_ = conn.Close()
		return nil, err
	}
	return s, nil
}

func (s *Signaling) read() {
	defer close(s.done)
	defer close(s.in)
	for {
		_, raw, err := s.conn.ReadMessage()
		if err != nil {
			s.err = err
			return
		}
		var sig api.Signal
		if json.Unmarshal(raw, &sig) != nil {
			continue
		}
		if f, ok := s.subs.Load(sig.CallID); ok && sig.CallID != "" && sig.Type != api.SigRing {
			f.(func(api.Signal))(sig)
			switch sig.Type {
			case api.SigHangUp, api.SigCall, api.SigError, api.SigMute, api.SigPeer:
				// The app sees these too: the call's end and state, refusals,
				// the other party's mute state and comings and goings.
			default:
				continue
			}
		}
		select {
		case s.in <- sig:
		default: // the app is not reading: drop, as the server would
		}
	}
}

// Signals delivers what the server sends that no joined call consumed
// (rings, presence), and what the app shows of a joined call (its state
// and end, errors, the other party's mute state and presence); closed when
// the connection ends.
func (s *Signaling) Signals() <-chan api.Signal { return s.in }

// Done is closed when the connection ended.
func (s *Signaling) Done() <-chan struct{} { return s.done }

// TokenExpired waits for the connection to end (Done; Signals closes
// just before) and reports whether the gateway closed it because its
// token expired: nothing is wrong with the network, and a new connection
// (which Dial opens with a fresh token) picks the call up again with
// Resume.
func (s *Signaling) TokenExpired() bool {
	<-s.done
	return websocket.IsCloseError(s.err, sdk.CloseTokenExpired)
}

// Send writes one signal.
func (s *Signaling) Send(sig api.Signal) error {
	raw, _ := json.Marshal(sig)
	s.wmu.Lock()
	defer s.wmu.Unlock()
	_ = s.conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
	return s.conn.WriteMessage(websocket.TextMessage, raw)
}

// Close ends the connection.
func (s *Signaling) Close() error {
	s.wmu.Lock()
	_ = s.conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))
	s.wmu.Unlock()
	err := s.conn.Close()
	<-s.done
	return err
}

// Wait returns the next signal of one of types, or an error when ctx ends
// or the connection does.
func (s *Signaling) Wait(ctx context.Context, types ...api.SignalType) (api.Signal, error) {
	for {
		select {
		case <-ctx.Done():
			return api.Signal{}, ctx.Err()
		case sig, ok := <-s.in:
			if !ok {
				return api.Signal{}, fmt.Errorf("switchboard: signaling closed: %v", s.err)
			}
			for _, t := range types {
				if sig.Type == t {
					return sig, nil
				}
			}
		}
	}
}

// Options are what the app brings to a call.
type Options struct {
	// Audio and Video are the app's tracks (e.g. webrtc.TrackLocalStaticSample
	// fed by the platform's encoder); nil receives only.
	Audio, Video webrtc.TrackLocal
	// Video asks for a video transceiver even without a local video track.
	ReceiveVideo bool
	// OnTrack is called with each track the other party sends.
	OnTrack func(*webrtc.TrackRemote)
	// OnData is called with each diagnostics message from the other side.
	OnData func([]byte)
	// Listen joins listen-only (supervisors).
	Listen bool
	// API builds the PeerConnection; nil means Opus and VP8 with defaults.
	API *webrtc.API
}

// Call is one party's media connection to a call.
type Call struct {
	ID   string
	sig  *Signaling
	pc   *webrtc.PeerConnection
	dc   *webrtc.DataChannel
	opts Options // for Rejoin

	mu        sync.Mutex
	pending   []webrtc.ICECandidateInit
	answered  chan struct{}
	ended     chan struct{}
	endOnce   sync.Once
	Connected chan struct{}
	connOnce  sync.Once
}

// ErrEnded is returned once the call has ended.
var ErrEnded = errors.New("switchboard: the call has ended")

// Place requests a call for a ticket and connects its media: the returned
// call is queued (or ringing); media flows once an agent answers.
func Place(ctx context.Context, c *sdk.Client, sig *Signaling, req api.PlaceCallRequest, key string, o Options) (*Call, *api.PlacedCall, error) {
	placed, err := c.PlaceCall(ctx, req, key)
	if err != nil {
		return nil, nil, err
	}
	if req.Media == api.MediaVideo {
		o.ReceiveVideo = true
	}
	call, err := Join(ctx, sig, placed.Call.ID, o)
	return call, placed, err
}

// Join connects to a call's media: the caller's own call, an answered call
// (agents), or listen-only (supervisors).
func Join(ctx context.Context, sig *Signaling, callID string, o Options) (*Call, error) {
	a := o.API
	if a == nil {
		var err error
		if a, err = DefaultAPI(false); err != nil {
			return nil, err
		}
	}
	pc, err := a.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		return nil, err
	}
	c := &Call{ID: callID, sig: sig, pc: pc, opts: o, answered: make(chan struct{}, 1), ended: make(chan struct{}), Connected: make(chan struct{})}
	fail := func(err error) (*Call, error) {
		sig.subs.Delete(callID)
		_ = pc.Close()
		return nil, err
	}
	addT := func(t webrtc.TrackLocal, kind webrtc.RTPCodecType) error {
		if t != nil && !o.Listen {
			_, err := pc.AddTransceiverFromTrack(t, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendrecv})
			return err
		}
		_, err := pc.AddTransceiverFromKind(kind, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly})
		return err
	}
	if err := addT(o.Audio, webrtc.RTPCodecTypeAudio); err != nil {
		return fail(err)
	}
	if o.Video != nil || o.ReceiveVideo {
		if err := addT(o.Video, webrtc.RTPCodecTypeVideo); err != nil {
			return fail(err)
		}
	}
	if o.Listen {
		if err := addT(nil, webrtc.RTPCodecTypeAudio); err != nil { // the agent's voice
			return fail(err)
		}
	} else {
		if c.dc, err = pc.CreateDataChannel(api.DataChannelLabel, nil); err != nil {
			return fail(err)
		}
		if o.OnData != nil {
			c.dc.OnMessage(func(m webrtc.DataChannelMessage) { o.OnData(m.Data) })
		}
	}
	pc.OnTrack(func(t *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		if o.OnTrack != nil {
			o.OnTrack(t)
		}
	})
	pc.OnICECandidate(func(cand *webrtc.ICECandidate) {
		ic := &api.ICECandidate{}
		if cand != nil {
			j := cand.ToJSON()
			ic = &api.ICECandidate{Candidate: j.Candidate, SDPMid: j.SDPMid, SDPMLineIndex: j.SDPMLineIndex}
		}
		_ = sig.Send(api.Signal{Type: api.SigCandidate, CallID: callID, Candidate: ic})
	})
	pc.OnConnectionStateChange(func(s webrtc.PeerConnectionState) {
		if s == webrtc.PeerConnectionStateConnected {
			c.connOnce.Do(func() { close(c.Connected) })
		}
	})
	joined := make(chan error, 1)
	sig.subs.Store(callID, func(s api.Signal) { c.onSignal(s, joined) })
	if err := sig.Send(api.Signal{Type: api.SigJoin, CallID: callID, Listen: o.Listen}); err != nil {
		return fail(err)
	}
	select {
	case err := <-joined:
		if err != nil {
			return fail(err)
		}
	case <-ctx.Done():
		return fail(ctx.Err())
	case <-sig.done:
		return fail(fmt.Errorf("switchboard: signaling closed"))
	}
	if err := c.negotiate(ctx, false); err != nil {
		return fail(err)
	}
	return c, nil
}

func (c *Call) onSignal(s api.Signal, joined chan error) {
	switch s.Type {
	case api.SigJoined:
		select {
		case joined <- nil:
		default:
		}
	case api.SigError:
		select {
		case joined <- fmt.Errorf("switchboard: %s: %s", s.Code, s.Detail):
		default:
		}
	case api.SigAnswer:
		if err := c.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: s.SDP}); err == nil {
			c.mu.Lock()
			p := c.pending
			c.pending = nil
			c.mu.Unlock()
			for _, ic := range p {
				_ = c.pc.AddICECandidate(ic)
			}
			select {
			case c.answered <- struct{}{}:
			default:
			}
		}
	case api.SigCandidate:
		if s.Candidate == nil || s.Candidate.Candidate == "" {
			return
		}
		ic := webrtc.ICECandidateInit{Candidate: s.Candidate.Candidate, SDPMid: s.Candidate.SDPMid, SDPMLineIndex: s.Candidate.SDPMLineIndex}
		c.mu.Lock()
		if c.pc.RemoteDescription() == nil {
			c.pending = append(c.pending, ic)
			c.mu.Unlock()
			return
		}
		c.mu.Unlock()
		_ = c.pc.AddICECandidate(ic)
	case api.SigHangUp:
		c.endOnce.Do(func() { close(c.ended) })
		go c.pc.Close()
	}
}

func (c *Call) negotiate(ctx context.Context, restart bool) error {
	offer, err := c.pc.CreateOffer(&webrtc.OfferOptions{ICERestart: restart})
	if err != nil {
		return err
	}
	if err := c.pc.SetLocalDescription(offer); err != nil {
		return err
	}
	return c.sig.Send(api.Signal{Type: api.SigOffer, CallID: c.ID, SDP: offer.SDP})
}

// Reconnect restarts ICE after a network change (Wi-Fi to cellular): a new
// offer with fresh ICE credentials over sig, which may be a new signaling
// connection (the old one died with the network). The call's media on the
// gateway survives for ReconnectGrace meanwhile.
func (c *Call) Reconnect(ctx context.Context, sig *Signaling) error {
	if err := c.Resume(ctx, sig); err != nil {
		return err
	}
	return c.negotiate(ctx, true)
}

// Resume moves the call's signaling to sig, a new connection to the same
// gateway, and leaves the media as it is: for when only the signaling
// ended (its token expired) and the media link is fine.
func (c *Call) Resume(ctx context.Context, sig *Signaling) error {
	if sig != c.sig {
		c.sig.subs.Delete(c.ID)
		c.sig = sig
		joined := make(chan error, 1)
		sig.subs.Store(c.ID, func(s api.Signal) { c.onSignal(s, joined) })
		if err := sig.Send(api.Signal{Type: api.SigJoin, CallID: c.ID}); err != nil {
			return err
		}
		select {
		case err := <-joined:
			if err != nil {
				return err
			}
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// Rejoin connects to the call again with a new PeerConnection and the
// same tracks, over sig (any node's signaling), and closes this one. It
// is the way back when Reconnect cannot help because the gateway node
// that carried the media is gone: the node sig talks to takes the call
// over, and the other party rejoins there too.
func (c *Call) Rejoin(ctx context.Context, sig *Signaling) (*Call, error) {
	c.Close()
	return Join(ctx, sig, c.ID, c.opts)
}

// SetMuted tells the other side about the app's mute state (the app stops
// feeding its tracks itself).
func (c *Call) SetMuted(audio, video bool) error {
	return c.sig.Send(api.Signal{Type: api.SigMute, CallID: c.ID, Mute: &api.MuteState{Audio: audio, Video: video}})
}

// SendData sends a diagnostics message to the other side.
func (c *Call) SendData(b []byte) error {
	if c.dc == nil {
		return errors.New("switchboard: no data channel")
	}
	return c.dc.Send(b)
}

// DataOpen reports whether the data channel is open.
func (c *Call) DataOpen() bool {
	return c.dc != nil && c.dc.ReadyState() == webrtc.DataChannelStateOpen
}

// PeerConnection exposes the connection (stats, extra tracks).
func (c *Call) PeerConnection() *webrtc.PeerConnection { return c.pc }

// Ended is closed when the call ended (either side hung up).
func (c *Call) Ended() <-chan struct{} { return c.ended }

// HangUp ends the call for everyone and closes the media.
func (c *Call) HangUp() error {
	err := c.sig.Send(api.Signal{Type: api.SigHangUp, CallID: c.ID})
	c.Close()
	return err
}

// Close closes this party's media without ending the call.
func (c *Call) Close() {
	c.sig.subs.Delete(c.ID)
	_ = c.pc.Close()
}

// DefaultAPI is a pion API with Opus and VP8, the relay's codecs;
// loopback offers loopback candidates (tests on one machine).
func DefaultAPI(loopback bool) (*webrtc.API, error) {
	m := &webrtc.MediaEngine{}
	if err := m.RegisterCodec(webrtc.RTPCodecParameters{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus,
		ClockRate: 48000, Channels: 2, SDPFmtpLine: "minptime=10;useinbandfec=1"}, PayloadType: 111}, webrtc.RTPCodecTypeAudio); err != nil {
		return nil, err
	}
	if err := m.RegisterCodec(webrtc.RTPCodecParameters{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8,
		ClockRate: 90000, RTCPFeedback: []webrtc.RTCPFeedback{{Type: "nack"}, {Type: "nack", Parameter: "pli"}}}, PayloadType: 96}, webrtc.RTPCodecTypeVideo); err != nil {
		return nil, err
	}
	se := webrtc.SettingEngine{}
	se.SetIncludeLoopbackCandidate(loopback)
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	// The stats interceptor fills PeerConnection.GetStats (packets and
	// bytes received per track), which apps show and report in
	// diagnostics; without it pion's inbound counters stay zero. RTCP
	// reports: the sender reports let the agent's browser lip-sync the
	// app's audio with its video (the relay passes them on). NACK: the
	// app asks for lost video packets again and resends its own from a
	// short history, before a lost packet costs a whole keyframe.
	ir := &interceptor.Registry{}
	if err := webrtc.ConfigureStatsInterceptor(ir); err != nil {
		return nil, err
	}
	if err := webrtc.ConfigureRTCPReports(ir); err != nil {
		return nil, err
	}
	if err := webrtc.ConfigureNack(m, ir); err != nil {
		return nil, err
	}
	return webrtc.NewAPI(webrtc.WithMediaEngine(m), webrtc.WithSettingEngine(se), webrtc.WithInterceptorRegistry(ir)), nil
}

// InboundPackets is the number of RTP packets received so far per kind
// ("audio", "video"), from the connection's statistics.
func (c *Call) InboundPackets() map[string]uint32 {
	out := map[string]uint32{}
	for _, s := range c.pc.GetStats() {
		if in, ok := s.(webrtc.InboundRTPStreamStats); ok {
			out[in.Kind] += in.PacketsReceived
		}
	}
	return out
}
