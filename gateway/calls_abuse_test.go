package gateway_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	fws "github.com/fasthttp/websocket"
	"github.com/pion/webrtc/v4"

	"github.com/switchboard/switchboard/api"
	"github.com/switchboard/switchboard/auth"
	"github.com/switchboard/switchboard/internal/redistest"
	"github.com/switchboard/switchboard/mobile-sdk/call"
	"github.com/switchboard/switchboard/state/backend"
)

// Two gateway processes' worth of nodes on one Redis: the customer places
// the call on node A (which hosts its media), the agent answers on node B;
// B's signaling reaches A's relay through Redis pub/sub and media flows.
func TestCallAcrossNodesOnRedis(t *testing.T) {
	url := redistest.Start(t).URL()
	stA, err := backend.Open(context.Background(), backend.Config{RedisURL: url, DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stA.Close() })
	stB, err := backend.Open(context.Background(), backend.Config{RedisURL: url, DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stB.Close() })
	key := sharedKey(t)
	a := newCallEnv(t, stA, key, "node-a", nil)
	b := newCallEnv(t, stB, key, "node-b", nil)
	_, _, cc, ac, _ := connectCall(t, a, b, "joe", "ann")
	hangUpSeen(t, cc, ac)
}

// refused waits for an error signal with code.
func refused(t *testing.T, s *call.Signaling, code string) api.Signal {
	t.Helper()
	sig := waitSig(t, s, api.SigError)
	if sig.Code != code {
		t.Fatalf("error %s (%s), want %s", sig.Code, sig.Detail, code)
	}
	return sig
}

func TestCallAbuse(t *testing.T) {
	e := newCallEnv(t, nil, nil, "node-a", nil)
	_, _, cc, _, _ := connectCall(t, e, e, "joe", "ann")

	t.Run("another customer joins", func(t *testing.T) {
		mallory := dial(t, e.client(t, "mallory", auth.RoleCustomer))
		_ = mallory.Send(api.Signal{Type: api.SigJoin, CallID: cc.ID})
		refused(t, mallory, api.CodeNotFound)
		_ = mallory.Send(api.Signal{Type: api.SigOffer, CallID: cc.ID, SDP: "v=0"})
		refused(t, mallory, api.CodeNotFound)
		res := e.do(t, "GET", "/v1/calls/"+cc.ID, e.token(t, "mallory", auth.RoleCustomer), nil)
		readProblem(t, res, 404, api.CodeNotFound)
		res = e.do(t, "DELETE", "/v1/calls/"+cc.ID, e.token(t, "mallory", auth.RoleCustomer), nil)
		readProblem(t, res, 404, api.CodeNotFound)
	})
	t.Run("agent answers a call that rang another agent", func(t *testing.T) {
		bob := dial(t, e.client(t, "bob", auth.RoleAgent))
		_ = bob.Send(api.Signal{Type: api.SigAnswer, CallID: cc.ID})
		refused(t, bob, api.CodeConflict)
		_ = bob.Send(api.Signal{Type: api.SigJoin, CallID: cc.ID})
		refused(t, bob, api.CodeNotFound)
	})
	t.Run("bad offers", func(t *testing.T) {
		joe := dial(t, e.client(t, "joe", auth.RoleCustomer))
		_ = joe.Send(api.Signal{Type: api.SigJoin, CallID: cc.ID})
		waitSig(t, joe, api.SigJoined)
		good := goodOffer(t)
		for name, sdp := range map[string]string{
			"malformed":      "this is not sdp",
			"too large":      strings.Repeat("a", 1<<20),
			"500 m-lines":    good + strings.Repeat("m=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\n", 500),
			"no fingerprint": stripFingerprint(good),
		} {
			_ = joe.Send(api.Signal{Type: api.SigOffer, CallID: cc.ID, SDP: sdp})
			if name == "too large" {
				// Larger than the read limit: the connection closes (1009).
				select {
				case <-joe.Done():
				case <-time.After(10 * time.Second):
					t.Fatal("a 1 MB offer did not close the connection")
				}
				joe = dial(t, e.client(t, "joe", auth.RoleCustomer))
				_ = joe.Send(api.Signal{Type: api.SigJoin, CallID: cc.ID})
				waitSig(t, joe, api.SigJoined)
				continue
			}
			sig := refused(t, joe, api.CodeValidation)
			t.Logf("%s: %s", name, sig.Detail)
		}
	})
	t.Run("flood", func(t *testing.T) {
		c := dial(t, e.client(t, "flooder", auth.RoleCustomer))
		var err error
		for i := 0; i < 10_000 && err == nil; i++ {
			err = c.Send(api.Signal{Type: api.SigPing})
		}
		select {
		case <-c.Done():
		case <-time.After(10 * time.Second):
			t.Fatal("a flood did not close the connection")
		}
	})
	t.Run("rate limit close code", func(t *testing.T) {
		tok := e.token(t, "flooder2", auth.RoleCustomer)
		conn, _, err := fws.DefaultDialer.Dial(strings.Replace(e.base, "http", "ws", 1)+"/v1/rtc?access_token="+tok, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		for range 200 {
			_ = conn.WriteMessage(fws.TextMessage, []byte(`{"type":"ping"}`))
		}
		_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		for {
			if _, _, err = conn.ReadMessage(); err != nil {
				break
			}
		}
		var ce *fws.CloseError
		if !errors.As(err, &ce) || ce.Code != 4029 {
			t.Fatalf("closed with %v, want 4029", err)
		}
	})
	t.Run("the call kept going", func(t *testing.T) {
		if cc.PeerConnection().ConnectionState().String() != "connected" {
			t.Fatalf("customer's connection is %s", cc.PeerConnection().ConnectionState())
		}
		cl := e.client(t, "joe", auth.RoleCustomer)
		got, err := cl.Call(context.Background(), cc.ID)
		if err != nil || got.State != api.CallActive {
			t.Fatalf("call %+v %v", got, err)
		}
	})
}

// goodOffer is a real pion offer with audio, video and a data channel.
func goodOffer(t *testing.T) string {
	t.Helper()
	a, _ := call.DefaultAPI(true)
	pc, err := a.NewPeerConnection(webrtcConfig)
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	for _, k := range []webrtcKind{kindAudio, kindVideo} {
		if _, err := pc.AddTransceiverFromKind(k); err != nil {
			t.Fatal(err)
		}
	}
	o, err := pc.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	return o.SDP
}

func stripFingerprint(sdp string) string {
	var out []string
	for _, l := range strings.Split(sdp, "\r\n") {
		if !strings.HasPrefix(l, "a=fingerprint:") {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\r\n")
}

var webrtcConfig = webrtc.Configuration{}

type webrtcKind = webrtc.RTPCodecType

const (
	kindAudio = webrtc.RTPCodecTypeAudio
	kindVideo = webrtc.RTPCodecTypeVideo
)

// sharedKey is one signing key for several nodes.
func sharedKey(t testing.TB) *auth.Key {
	t.Helper()
	key, err := auth.LoadOrCreateKey(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return key
}
