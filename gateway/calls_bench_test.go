package gateway_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pion/interceptor"
	"github.com/pion/webrtc/v4"

	"github.com/switchboard/switchboard/api"
	"github.com/switchboard/switchboard/auth"
	"github.com/switchboard/switchboard/internal/poll"
	"github.com/switchboard/switchboard/mobile-sdk/call"
	"github.com/switchboard/switchboard/rtc"
)

// BenchmarkCallSetup measures a call from POST /v1/calls to media flowing
// both ways (the first RTP packet received by the customer and by the
// agent), pion to pion through the relay on loopback, with an agent
// already available and answering at once. Reports p50 and p99.
func BenchmarkCallSetup(b *testing.B) {
	// One agent connection takes every call back to back, far faster than
	// a person would: lift its signaling rate limit.
	e := newCallEnv(b, nil, nil, "node-a", func(c *rtc.Config) { c.SignalRate, c.SignalBurst = 1e6, 1e6 })
	agent := e.client(b, "ann", auth.RoleAgent)
	agentSig := dial(b, agent)
	_ = agentSig.Send(api.Signal{Type: api.SigStatus, Status: api.AgentAvailable})
	waitSig(b, agentSig, api.SigStatus)
	customer := e.client(b, "joe", auth.RoleCustomer)
	custSig := dial(b, customer)
	cm, am := newTracks(b), newTracks(b)
	capi, _ := call.DefaultAPI(true)
	aapi, _ := call.DefaultAPI(true)
	tickets := make([]api.Ticket, b.N)
	for i := range b.N {
		tickets[i] = openTicket(b, customer)
	}
	var took []time.Duration
	ctx := context.Background()
	b.ResetTimer()
	for i := range b.N {
		cm.got.Store(0)
		am.got.Store(0)
		start := time.Now()
		cc, _, err := call.Place(ctx, customer, custSig, api.PlaceCallRequest{TicketID: tickets[i].ID, Media: api.MediaVideo}, "",
			call.Options{Audio: cm.audio, Video: cm.video, OnTrack: cm.onTrack, API: capi})
		if err != nil {
			b.Fatal(err)
		}
		ring := waitSig(b, agentSig, api.SigRing)
		_ = agentSig.Send(api.Signal{Type: api.SigAnswer, CallID: ring.CallID})
		waitSig(b, agentSig, api.SigCall)
		ac, err := call.Join(ctx, agentSig, ring.CallID, call.Options{Audio: am.audio, Video: am.video, ReceiveVideo: true, OnTrack: am.onTrack, API: aapi})
		if err != nil {
			b.Fatal(err)
		}
		poll.Until(b, 20*time.Second, 200*time.Microsecond, func() error {
			if cm.got.Load() == 0 || am.got.Load() == 0 {
				return fmt.Errorf("call %d: no media yet: customer %d (%s), agent %d (%s)", i, cm.got.Load(), cc.PeerConnection().ConnectionState(), am.got.Load(), ac.PeerConnection().ConnectionState())
			}
			return nil
		})
		took = append(took, time.Since(start))
		b.StopTimer()
		_ = ac.HangUp()
		cc.Close()
		waitSig(b, agentSig, api.SigStatus) // the agent is free again
		b.StartTimer()
	}
	slices.Sort(took)
	b.ReportMetric(float64(took[len(took)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(took[len(took)*99/100].Microseconds())/1000, "p99-ms")
}

// BenchmarkRelayCPU holds `calls` concurrent video calls, each party
// sending 50 VP8 packets of ~1 KB (400 kbit/s) and 50 Opus packets a
// second, and reports process CPU time per packet the relay forwarded and
// the loss. The pion clients of both parties run in this process too, so
// the figure is an upper bound on the gateway's own cost (each forwarded
// packet is also encrypted by one client and decrypted by another).
func BenchmarkRelayCPU(b *testing.B) {
	const calls = 10
	const window = 3 * time.Second
	e := newCallEnv(b, nil, nil, "node-a", nil)
	// The parties run beside the gateway on the same cores: without
	// interceptors (no RTCP reports, no NACK) their own work per packet
	// stays small, so the gateway, not they, sets the pace.
	lean := leanAPI()
	var parties []*tracks
	for i := range calls {
		cm, am, _, _, _ := connectCallWith(b, e, e, fmt.Sprint("cust", i), fmt.Sprint("agent", i), callOpts{API: lean, AgentAPI: lean})
		parties = append(parties, cm, am)
	}
	b.ResetTimer()
	for range b.N {
		var got0 int64
		for _, p := range parties {
			got0 += p.got.Load()
		}
		fwd0 := e.calls.Relay().Forwarded()
		cpu0 := cpuTime()
		time.Sleep(window) // a measurement window, not a wait for a condition
		cpu := cpuTime() - cpu0
		fwd := e.calls.Relay().Forwarded() - fwd0
		var got int64
		for _, p := range parties {
			got += p.got.Load()
		}
		got -= got0
		b.ReportMetric(float64(cpu.Microseconds())/float64(max(fwd, 1)), "cpu-us/pkt")
		b.ReportMetric(float64(fwd)/window.Seconds(), "fwd-pkt/s")
		sent := float64(2*calls) * 100 * window.Seconds()
		b.ReportMetric(max(0, 100*(1-float64(got)/sent)), "loss-%")
	}
	b.ReportMetric(calls, "calls")
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkRelayProcess runs the gateway in its own process (the real
// switchboard binary, built here) and holds SWITCHBOARD_BENCH_CALLS
// (default 10) concurrent video calls through it, pion parties in this
// process each sending 50 VP8 packets of ~1 KB (400 kbit/s) and 50 Opus
// packets a second. It reports the gateway process's own CPU time (from
// /proc/<pid>/stat) per packet delivered through it, and the loss.
// SWITCHBOARD_BENCH_BIN runs a gateway binary built beforehand instead,
// so two builds can be compared run for run.
// The gateway takes all media on one UDP address (--media-udp-addr, here
// a free port), where its fast path forwards the RTP;
// SWITCHBOARD_BENCH_MEDIA_UDP_ADDR=off gives each party a port of its own
// instead, all through pion. SWITCHBOARD_BENCH_WINDOW (default 5s) is how
// long the measurement runs.
//
//	SWITCHBOARD_BENCH_CALLS=20 go test ./gateway/ -run '^$' -bench BenchmarkRelayProcess -benchtime 1x
func BenchmarkRelayProcess(b *testing.B) {
	calls := 10
	if v := os.Getenv("SWITCHBOARD_BENCH_CALLS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 500 {
			b.Fatalf("SWITCHBOARD_BENCH_CALLS=%q: want 1-500", v)
		}
		calls = n
	}
	window := 5 * time.Second
	if v := os.Getenv("SWITCHBOARD_BENCH_WINDOW"); v != "" { // longer, to profile the relay alone
		d, err := time.ParseDuration(v)
		if err != nil || d < time.Second {
			b.Fatalf("SWITCHBOARD_BENCH_WINDOW=%q: want a duration of 1s or more", v)
		}
		window = d
	}
	bin := os.Getenv("SWITCHBOARD_BENCH_BIN")
	if bin == "" {
		bin = filepath.Join(b.TempDir(), "switchboard")
		build := exec.Command("go", "build", "-o", bin, "../cmd/switchboard")
		if out, err := build.CombinedOutput(); err != nil {
			b.Fatalf("build: %v\n%s", err, out)
		}
	}
	data := b.TempDir()
	key, err := auth.LoadOrCreateKey(filepath.Join(data, "keys"))
	if err != nil {
		b.Fatal(err)
	}
	args := []string{"serve", "--data", data, "--addr", "127.0.0.1:0", "--turn-addr", "", "--mqtt-addr", "",
		"--public-ips", "127.0.0.1", "--rate-ip", "-1", "--rate-subject", "-1", "--log-format", "json"}
	switch a := os.Getenv("SWITCHBOARD_BENCH_MEDIA_UDP_ADDR"); a {
	case "":
		args = append(args, "--media-udp-addr", ":0")
	case "off":
		args = append(args, "--media-udp-addr", "")
	default:
		args = append(args, "--media-udp-addr", a)
	}
	gw := exec.Command(bin, args...)
	stderr, _ := gw.StderrPipe()
	if err := gw.Start(); err != nil {
		b.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = gw.Wait(); close(exited) }()
	b.Cleanup(func() {
		_ = gw.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(20 * time.Second):
			_ = gw.Process.Kill()
			<-exited
		}
	})
	addrc := make(chan string, 1)
	go func() { // find the listen address, then drain the log
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			var line struct{ Msg, Addr string }
			if json.Unmarshal(sc.Bytes(), &line) == nil && line.Msg == "listening" {
				select {
				case addrc <- line.Addr:
				default:
				}
			}
		}
	}()
	var addr string
	select {
	case addr = <-addrc:
	case <-exited:
		b.Fatal("the gateway exited at start")
	case <-time.After(30 * time.Second):
		b.Fatal("the gateway did not start listening within 30s")
	}
	// The benchmark's clients mint tokens with the gateway's own key.
	e := &callEnv{env: &env{issuer: auth.NewIssuer(auth.Config{}, key, nil)}, base: "http://" + addr}
	// The parties run beside the gateway on the same cores: without
	// interceptors (no RTCP reports, no NACK) their own work per packet
	// stays small, so the gateway, not they, sets the pace.
	lean := leanAPI()
	var parties []*tracks
	for i := range calls {
		cm, am, _, _, _ := connectCallWith(b, e, e, fmt.Sprint("cust", i), fmt.Sprint("agent", i), callOpts{API: lean, AgentAPI: lean})
		parties = append(parties, cm, am)
	}
	count := func() (sent, got int64) {
		for _, p := range parties {
			sent += p.sent.Load()
			got += p.got.Load()
		}
		return sent, got
	}
	b.ResetTimer()
	for range b.N {
		sent0, got0 := count()
		cpu0 := procCPU(b, gw.Process.Pid)
		time.Sleep(window) // a measurement window, not a wait for a condition
		cpu := procCPU(b, gw.Process.Pid) - cpu0
		sent, got := count()
		sent, got = sent-sent0, got-got0
		b.ReportMetric(float64(cpu.Microseconds())/float64(max(got, 1)), "gw-cpu-us/pkt")
		b.ReportMetric(100*cpu.Seconds()/window.Seconds(), "gw-cpu-%")
		b.ReportMetric(float64(got)/window.Seconds(), "pkt/s")
		b.ReportMetric(max(0, 100*(1-float64(got)/float64(max(sent, 1)))), "loss-%")
	}
	b.ReportMetric(float64(calls), "calls")
}

// procCPU is a process's user plus system CPU time, from /proc/<pid>/stat.
func procCPU(b *testing.B, pid int) time.Duration {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		b.Fatal(err)
	}
	// Fields after the command name (which may hold spaces), from field 3:
	// utime and stime are fields 14 and 15, in clock ticks (100 a second
	// on Linux).
	rest := string(raw[bytes.LastIndexByte(raw, ')')+2:])
	f := strings.Fields(rest)
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * 10 * time.Millisecond
}

// leanAPI is call.DefaultAPI without interceptors: Opus and VP8 on
// loopback, with the same codecs and feedback in its SDP.
func leanAPI() *webrtc.API {
	m := sdkCodecs()
	se := webrtc.SettingEngine{}
	se.SetIncludeLoopbackCandidate(true)
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	return webrtc.NewAPI(webrtc.WithMediaEngine(m), webrtc.WithSettingEngine(se), webrtc.WithInterceptorRegistry(&interceptor.Registry{}))
}

// sdkCodecs are the codecs call.DefaultAPI offers (Opus, and VP8 with
// NACK and PLI feedback), for test APIs built without its interceptors.
func sdkCodecs() *webrtc.MediaEngine {
	m := &webrtc.MediaEngine{}
	_ = m.RegisterCodec(webrtc.RTPCodecParameters{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus,
		ClockRate: 48000, Channels: 2, SDPFmtpLine: "minptime=10;useinbandfec=1"}, PayloadType: 111}, webrtc.RTPCodecTypeAudio)
	_ = m.RegisterCodec(webrtc.RTPCodecParameters{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8,
		ClockRate: 90000, RTCPFeedback: []webrtc.RTCPFeedback{{Type: "nack"}, {Type: "nack", Parameter: "pli"}}}, PayloadType: 96}, webrtc.RTPCodecTypeVideo)
	return m
}
