package mobilecall

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/switchboard/switchboard/api"
	sdk "github.com/switchboard/switchboard/mobile-sdk"
	"github.com/switchboard/switchboard/mobile-sdk/call"
	"github.com/switchboard/switchboard/mobile-sdk/mobile"
)

// timeout bounds each method's network work: bound languages have no
// context.Context (the same 30s as package mobile).
const timeout = 30 * time.Second

// States of a call, in State.State.
const (
	// StateQueued: waiting for an agent; Position and ExpectedWaitSeconds
	// say how long.
	StateQueued = "queued"
	// StateRinging: an agent's console rings.
	StateRinging = "ringing"
	// StateConnected: an agent answered and the media link is up.
	StateConnected = "connected"
	// StateReconnecting: the media link dropped (a network change); call
	// Reconnect.
	StateReconnecting = "reconnecting"
	// StateEnded is the last state; Reason says why.
	StateEnded = "ended"
)

// ReasonHungUp is State.Reason when a party hung up (HungUpBy says who).
const ReasonHungUp = "hung_up"

// State is where a call is, as the app shows it.
type State struct {
	// State is one of the State* constants.
	State string
	// Position (1-based) and ExpectedWaitSeconds are set while queued.
	Position            int
	ExpectedWaitSeconds int
	// Reason is set once ended: ReasonHungUp, or the gateway's reason for
	// a call that never connected or was cut ("abandoned", "no_agent",
	// "call_back_requested", "network").
	Reason string
	// HungUpBy is the user who hung up, when the gateway said.
	HungUpBy string
}

// Listener is implemented by the app. It is called on background
// threads: OnState calls never overlap, each kind of frame comes in order,
// and nothing is called once Close has returned. Its methods must return
// quickly (hand frames to the decoder's queue) and must not call Close;
// the Call's other methods may be called from them.
type Listener interface {
	// OnState is called when the call's state changes. Queue positions
	// that pass quickly may be skipped; the latest state is always told,
	// and StateEnded once, last.
	OnState(s *State)
	// OnAudioFrame is one Opus frame of the agent's voice.
	OnAudioFrame(opus []byte, durationMs int)
	// OnVideoFrame is one VP8 frame of the agent's camera.
	OnVideoFrame(vp8 []byte, durationMs int)
	// OnKeyframeRequest asks the app's encoder for a keyframe next: the
	// agent's side lost the picture (or just joined) and cannot decode
	// the frames that build on what it lost. Video calls only; at most
	// one call per 500 ms, however many requests came.
	OnKeyframeRequest()
	// OnData is one message from the agent's console on the data channel.
	OnData(msg []byte)
	// OnError reports a failure in the background that does not end the
	// call: a refused signal, or the signaling connection lost (Reconnect
	// brings it back). A connection the gateway closed because its token
	// expired is not reported: the call reopens it with a refreshed token.
	OnError(message string)
}

// PlaceRequest is what the app asks for.
type PlaceRequest struct {
	TicketID string
	// Video makes it a video call: the app sends with WriteVideo and
	// hears OnVideoFrame. False is audio only.
	Video bool
	// Skill routes the call to agents with it; empty means the ticket's
	// queue.
	Skill string
	// RecordingConsent is the customer's consent to record the call;
	// without it nothing is recorded.
	RecordingConsent bool
	// IdempotencyKey makes a retried Place return the same call rather
	// than a second one; empty sends none.
	IdempotencyKey string
}

// Caller places calls for the signed-in user of a mobile.Client.
type Caller struct {
	c *sdk.Client
	// api builds PeerConnections; nil means call.DefaultAPI(false). Tests
	// set one that offers loopback candidates.
	api *webrtc.API
	// now is the clock that bounds keyframe requests; nil means
	// time.Now. Tests stop it to see coalescing without waiting.
	now func() time.Time
}

// NewCaller returns a Caller that uses client's gateway and tokens: one
// client, so one token refresh serves both.
func NewCaller(client *mobile.Client) (*Caller, error) {
	if client == nil {
		return nil, errors.New("switchboard: NewCaller needs a Client")
	}
	return &Caller{c: client.SDK()}, nil
}

// Place requests a call and connects its media. It returns once the call
// waits for an agent; l hears StateQueued and what follows. Close the
// call when done with it, ended or not.
func (cl *Caller) Place(req *PlaceRequest, l Listener) (*Call, error) {
	if req == nil || l == nil {
		return nil, errors.New("switchboard: Place needs a request and a Listener")
	}
	c, err := newCall(cl.c, l, req.Video)
	if err != nil {
		return nil, err
	}
	c.now = cl.now
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	sig, err := call.Dial(ctx, cl.c)
	if err != nil {
		return nil, wrap(err)
	}
	o := call.Options{Audio: c.audio, OnTrack: c.onTrack, OnData: c.onData, API: cl.api}
	media := api.MediaAudio
	if req.Video {
		o.Video, media = c.video, api.MediaVideo // not a nil *TrackLocalStaticSample in the interface
	}
	cc, placed, err := call.Place(ctx, cl.c, sig, api.PlaceCallRequest{TicketID: req.TicketID, Media: media,
		Skill: req.Skill, RecordingConsent: req.RecordingConsent}, req.IdempotencyKey, o)
	if err != nil {
		if placed != nil {
			// Placed but without media: end it, or an agent answers silence.
			end, cancel := context.WithTimeout(context.Background(), hangUpTimeout)
			_, _ = cl.c.EndCall(end, placed.Call.ID)
			cancel()
		}
		_ = sig.Close()
		c.stop()
		return nil, wrap(err)
	}
	c.start(cc, sig, placed.Call)
	return c, nil
}

// wrap renders a gateway refusal as "code (status): detail", as package
// mobile does, so Kotlin and Swift code can branch on the code prefix.
func wrap(err error) error {
	if code := sdk.Code(err); code != "" {
		return fmt.Errorf("%s (%d): %w", code, sdk.StatusCode(err), err)
	}
	return err
}
