package gateway_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/pion/webrtc/v4"
	"github.com/pion/webrtc/v4/pkg/media"

	"github.com/switchboard/switchboard/api"
	"github.com/switchboard/switchboard/auth"
	"github.com/switchboard/switchboard/internal/poll"
	"github.com/switchboard/switchboard/internal/redistest"
	"github.com/switchboard/switchboard/mobile-sdk/call"
	"github.com/switchboard/switchboard/rtc"
)

// chromiumFlags run Debian's Chromium headless with a fake camera and
// microphone, WebRTC on loopback, and nothing that calls an outside host.
var chromiumFlags = []chromedp.ExecAllocatorOption{
	chromedp.Flag("headless", "new"),
	chromedp.Flag("no-sandbox", true),
	chromedp.Flag("disable-gpu", true),
	chromedp.Flag("disable-quic", true),
	chromedp.Flag("no-first-run", true),
	chromedp.Flag("disable-background-networking", true),
	chromedp.Flag("disable-component-update", true),
	chromedp.Flag("disable-sync", true),
	chromedp.Flag("use-fake-device-for-media-stream", true),
	chromedp.Flag("use-fake-ui-for-media-stream", true),
	chromedp.Flag("allow-loopback-in-peer-connection", true),
	chromedp.Flag("disable-features", "WebRtcHideLocalIpsWithMdns"),
	chromedp.Flag("autoplay-policy", "no-user-gesture-required"),
}

// chromium is the browser to drive: it skips the test loudly when Debian's
// chromium is missing, and fails it when SWITCHBOARD_REQUIRE_SERVICES=1
// (scripts/test installs it).
func chromium(t *testing.T) string {
	t.Helper()
	path, err := exec.LookPath("chromium")
	if err != nil {
		msg := "chromium is not installed (apt-get install chromium, or run scripts/test as root): the headless browser proof did not run"
		if os.Getenv(redistest.RequireEnv) == "1" {
			t.Fatalf("%s, and %s=1 requires it", msg, redistest.RequireEnv)
		}
		fmt.Fprintln(os.Stderr, "SKIP "+t.Name()+": "+msg)
		t.Skip(msg)
	}
	return path
}

// lockedBuffer collects the browser's output for the failure log.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.b.Len() > 1<<20 {
		return len(p), nil
	}
	return l.b.Write(p)
}

func (l *lockedBuffer) tail() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.b.String()
	return s[max(0, len(s)-4000):]
}

// browser starts Chromium with chromiumFlags and returns a tab's context;
// the browser is killed when the test ends. Page console messages and the
// browser's own output are logged if the test fails.
func browser(t *testing.T) context.Context {
	t.Helper()
	path := chromium(t)
	out := &lockedBuffer{}
	opts := append([]chromedp.ExecAllocatorOption{chromedp.ExecPath(path), chromedp.UserDataDir(t.TempDir()),
		chromedp.CombinedOutput(out)}, chromiumFlags...)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	tab, cancelTab := chromedp.NewContext(allocCtx)
	var pageLog lockedBuffer
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("page console:\n%s", pageLog.tail())
			t.Logf("chromium output (tail):\n%s", out.tail())
		}
		cancelTab()
		cancelAlloc() // kills Chromium and waits for it
	})
	// Start the browser now. chromedp ties the browser's life to the
	// context of this first call, so it gets no timeout of its own; a
	// watchdog bounds it instead.
	started := make(chan error, 1)
	go func() { started <- chromedp.Do(tab, chromedp.EmulateViewport(1280, 800)) }()
	select {
	case err := <-started:
		if err != nil {
			t.Fatalf("start chromium: %v\n%s", err, out.tail())
		}
	case <-time.After(60 * time.Second):
		cancelTab()
		t.Fatalf("chromium did not start within 60s\n%s", out.tail())
	}
	_ = chromedp.Listen(tab, func(ev any) {
		switch e := ev.(type) {
		case *runtime.EventConsoleAPICalled:
			var args []string
			for _, a := range e.Args {
				args = append(args, string(a.Value)+a.Description)
			}
			fmt.Fprintf(&pageLog, "%s: %s\n", e.Type, strings.Join(args, " "))
		case *runtime.EventExceptionThrown:
			desc := e.ExceptionDetails.Text
			if e.ExceptionDetails.Exception != nil {
				desc += " " + e.ExceptionDetails.Exception.Description
			}
			fmt.Fprintf(&pageLog, "exception: %s\n", desc)
		}
	})
	return tab
}

// void drops an action's value, for Do.
func void[T any](a chromedp.Action[T]) chromedp.Action[chromedp.Void] {
	return func(ctx context.Context, t *chromedp.Target) (chromedp.Void, error) {
		_, err := a(ctx, t)
		return chromedp.Void{}, err
	}
}

// step runs one browser action, bounded so a hang fails fast.
func step(t *testing.T, tab context.Context, what string, d time.Duration, a ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	ctx, cancel := context.WithTimeout(tab, d)
	defer cancel()
	if err := chromedp.Do(ctx, a...); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// consoleStats is what the console's RTCPeerConnection and video elements
// report, read through window.sbConsole.
type consoleStats struct {
	State       string `json:"state"`
	Audio       int    `json:"audio"`
	Video       int    `json:"video"`
	RemoteWidth int    `json:"remoteWidth"`
	LocalWidth  int    `json:"localWidth"`
	RemoteTime  float64
	Relay       bool     `json:"relay"`
	ICEServers  int      `json:"iceServers"`
	Timeline    []string `json:"timeline"`
	Diag        string   `json:"diag"`
	// RemoteOutAudio counts remote-outbound-rtp entries for audio: the
	// browser makes one from the sender reports about a stream it
	// receives, so it shows the relay forwards them.
	RemoteOutAudio int `json:"remoteOutAudio"`
}

const consoleStatsJS = `(async () => {
  const pc = window.sbConsole.pc, out = { state: "none", audio: 0, video: 0, relay: false };
  const remote = document.getElementById("remote"), local = document.getElementById("local");
  out.remoteWidth = remote.videoWidth; out.localWidth = local.videoWidth; out.RemoteTime = remote.currentTime;
  out.diag = document.getElementById("diag").textContent;
  out.timeline = Array.from(document.querySelectorAll("#timeline li .type")).map((n) => n.textContent);
  if (!pc) return out;
  out.state = pc.connectionState; out.iceServers = pc.getConfiguration().iceServers.length;
  (await pc.getStats()).forEach((s) => {
    if (s.type === "inbound-rtp") out[s.kind] += s.packetsReceived || 0;
    if (s.type === "remote-outbound-rtp" && s.kind === "audio") out.remoteOutAudio = (out.remoteOutAudio || 0) + 1;
    if (s.type === "local-candidate" && s.candidateType === "relay") out.relay = true;
  });
  return out;
})()`

// sampleTracks are a mobile app's tracks fed by its "encoder": a real VP8
// keyframe (150x103, from golang.org/x/image's WebP test data, BSD) 25
// times a second, so the browser decodes and paints it, and Opus silence
// every 20 ms.
func sampleTracks(t *testing.T) (audio, video *webrtc.TrackLocalStaticSample) {
	t.Helper()
	frame, err := os.ReadFile(filepath.Join("testdata", "video-001.vp8"))
	if err != nil {
		t.Fatal(err)
	}
	audio, _ = webrtc.NewTrackLocalStaticSample(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2}, "audio", "app")
	video, _ = webrtc.NewTrackLocalStaticSample(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000}, "video", "app")
	stop, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		silence := []byte{0xf8, 0xff, 0xfe} // an Opus 20 ms silence frame
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			_ = audio.WriteSample(media.Sample{Data: silence, Duration: 20 * time.Millisecond})
			if i%2 == 0 {
				_ = video.WriteSample(media.Sample{Data: frame, Duration: 40 * time.Millisecond})
			}
		}
	}()
	t.Cleanup(func() { close(stop); <-done })
	return audio, video
}

// startTURN runs the embedded TURN server on a free loopback port.
func startTURN(t *testing.T) (addr, secret string) {
	t.Helper()
	secret = "browser-test-turn-secret"
	srv, err := rtc.NewTURNServer(rtc.TURNServerConfig{Addr: "127.0.0.1:0", Secret: secret})
	if err != nil {
		t.Fatal(err)
	}
	pc, err := srv.Listen()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Run(ctx, pc) }()
	t.Cleanup(func() { cancel(); <-done })
	return pc.LocalAddr().String(), secret
}

// The proof with real clients: headless Chromium opens the console
// as an agent, signs in with a token, goes available, hears the ring and
// answers a video call placed by a customer built with mobile-sdk (pion,
// sending VP8 and Opus). Media flows both ways through the gateway's relay:
// the browser's getStats() and the SDK's pion stats both count inbound RTP
// for audio and video, the browser decodes the customer's video, and the
// customer's diagnostics reach the console over the relayed data channel,
// and the ticket's live timeline beside the call shows the call starting.
// A screenshot of the console mid-call is kept in artifacts/.
func TestConsoleBrowserAnswersSDKCall(t *testing.T) {
	tab := browser(t)
	turnAddr, secret := startTURN(t)
	e := newCallEnv(t, nil, nil, "node-a", func(c *rtc.Config) {
		c.TURN = rtc.TURNConfig{URLs: []string{"turn:" + turnAddr + "?transport=udp"}, Secret: secret}
	})
	agentTok, _, err := e.issuer.Access("ann", auth.RoleAgent, nil, 0)
	if err != nil {
		t.Fatal(err)
	}

	// The agent signs in and goes available.
	step(t, tab, "open the console", 30*time.Second,
		chromedp.Navigate(e.base+"/console/"),
		chromedp.WaitVisible(chromedp.ID("token")),
		chromedp.SendKeys(chromedp.ID("token"), agentTok),
		chromedp.Click(chromedp.ID("signin-btn")))
	step(t, tab, "signaling online", 30*time.Second,
		void(chromedp.Poll[bool](`document.getElementById("conn").textContent === "online"`, chromedp.WithPollingInterval(50*time.Millisecond))))
	step(t, tab, "go available", 10*time.Second, chromedp.Evaluate[chromedp.Void](
		`(() => { const s = document.getElementById("status"); s.value = "available"; s.dispatchEvent(new Event("change")); })()`))
	poll.Until(t, 20*time.Second, 50*time.Millisecond, func() error {
		a, err := e.calls.Agent(context.Background(), "ann")
		if err != nil || a.Status != api.AgentAvailable {
			return fmt.Errorf("agent %+v %v", a, err)
		}
		return nil
	})

	// The customer places a video call from the app.
	customer := e.client(t, "joe", auth.RoleCustomer)
	tk := openTicket(t, customer)
	custSig := dial(t, customer)
	audio, video := sampleTracks(t)
	api0, err := call.DefaultAPI(true)
	if err != nil {
		t.Fatal(err)
	}
	cc, placed, err := call.Place(context.Background(), customer, custSig,
		api.PlaceCallRequest{TicketID: tk.ID, Media: api.MediaVideo}, "",
		call.Options{Audio: audio, Video: video, API: api0, OnTrack: func(tr *webrtc.TrackRemote) {
			go func() { // drain, so pion's buffers keep moving
				buf := make([]byte, 1500)
				for {
					if _, _, err := tr.Read(buf); err != nil {
						return
					}
				}
			}()
		}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cc.Close)
	if len(placed.ICEServers) != 1 || placed.ICEServers[0].Username == "" || placed.ICEServers[0].Credential == "" {
		t.Fatalf("placed call's ICE servers lack TURN credentials: %+v", placed.ICEServers)
	}

	// The console rings; the agent answers.
	step(t, tab, "ring", 30*time.Second,
		void(chromedp.Poll[bool](`!document.getElementById("ring").hidden`, chromedp.WithPollingInterval(50*time.Millisecond))),
		chromedp.Click(chromedp.ID("answer")))

	// Media both ways, the video decoded, the diagnostics relayed, and
	// the SDK's sender reports relayed to the browser (its audio's
	// remote-outbound-rtp stats).
	var st consoleStats
	deadline := time.Now().Add(60 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(tab, 10*time.Second)
		st, err = chromedp.Run(ctx, chromedp.Evaluate[consoleStats](consoleStatsJS, chromedp.EvalAwaitPromise))
		cancel()
		if err != nil {
			t.Fatalf("read the console's stats: %v", err)
		}
		in := cc.InboundPackets()
		if cc.DataOpen() && !strings.Contains(st.Diag, "E42") {
			_ = cc.SendData([]byte(`{"fault":"E42","drum_temp_c":71}`))
		}
		if st.Audio > 0 && st.Video > 0 && st.RemoteWidth > 0 && st.LocalWidth > 0 && st.RemoteTime > 1 &&
			in["audio"] > 0 && in["video"] > 0 && strings.Contains(st.Diag, "E42") &&
			slices.Contains(st.Timeline, string(api.EventCallStarted)) && st.RemoteOutAudio > 0 {
			t.Logf("browser inbound RTP: audio %d video %d (remote video %dpx wide; %d ICE servers from the gateway, relay candidate %v; %d remote-outbound-rtp for audio); SDK inbound RTP: audio %d video %d",
				st.Audio, st.Video, st.RemoteWidth, st.ICEServers, st.Relay, st.RemoteOutAudio, in["audio"], in["video"])
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("media did not flow both ways: browser %+v, SDK %v, data channel open %v", st, in, cc.DataOpen())
		}
		time.Sleep(200 * time.Millisecond)
	}
	if st.RemoteWidth != 150 {
		t.Errorf("the console shows a %dpx wide remote video; the customer sends 150px", st.RemoteWidth)
	}
	// The relay recovered Chromium's SRTP keys from its DTLS handshake:
	// its own loop forwards this call's RTP (each packet it sends is
	// encrypted with the keys of the browser, or decrypted with them).
	poll.Until(t, 20*time.Second, 50*time.Millisecond, func() error {
		if n := e.calls.Relay().FastForwarded(); n < 50 {
			return fmt.Errorf("the relay's fast path sent %d packets of %d", n, e.calls.Relay().Forwarded())
		}
		return nil
	})

	// The screenshot mid-call, kept as a test artifact.
	ctx, cancel := context.WithTimeout(tab, 20*time.Second)
	png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	cancel()
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	dir := filepath.Join("..", "artifacts")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	shot := filepath.Join(dir, "console-call.png")
	if err := os.WriteFile(shot, png, 0o644); err != nil {
		t.Fatal(err)
	}
	abs, _ := filepath.Abs(shot)
	t.Logf("screenshot of the console mid-call: %s", abs)

	// The agent hangs up in the console; the app sees the call end.
	step(t, tab, "hang up", 10*time.Second, chromedp.Click(chromedp.ID("hangup")))
	select {
	case <-cc.Ended():
	case <-time.After(20 * time.Second):
		t.Fatal("the customer did not see the console's hang-up")
	}
	got, err := customer.Call(context.Background(), cc.ID)
	if err != nil || got.State != api.CallEnded || got.HungUpBy != "ann" {
		t.Fatalf("call after the console hung up: %+v %v", got, err)
	}
}
