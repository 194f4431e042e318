package rtc

import (
	"context"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"

	"github.com/switchboard/switchboard/api"
	"github.com/switchboard/switchboard/auth"
	"github.com/switchboard/switchboard/internal/poll"
	"github.com/switchboard/switchboard/state/embedded"
	"github.com/switchboard/switchboard/ticket"
)

// TestLateLeaveOfAnOldSession: a party that reconnected its signaling
// (session s2) keeps being reached there when its old session s1 closes
// afterwards, as it does after a network change; the close of s2 itself
// still cuts it off.
func TestLateLeaveOfAnOldSession(t *testing.T) {
	rm := &room{bySession: map[string]*party{}}
	p := &party{room: rm}
	old, cur := addr{Node: "n1", Session: "s1"}, addr{Node: "n1", Session: "s2"}
	rm.bySession[old.Session], rm.bySession[cur.Session] = p, p
	p.at.Store(&cur)
	leave := func(from addr) {
		if err := rm.handle(envelope{Kind: kindSig, From: &from, Signal: &api.Signal{Type: sigLeave}}); err != nil {
			t.Fatal(err)
		}
	}
	leave(old)
	if at := p.at.Load(); at == nil || *at != cur {
		t.Fatalf("after the old session left, the party is reached at %v, want %v", at, cur)
	}
	if _, ok := rm.bySession[old.Session]; ok {
		t.Fatal("the old session still names the party")
	}
	leave(cur)
	if at := p.at.Load(); at != nil {
		t.Fatalf("after its current session left, the party is still reached at %v", *at)
	}
}

// relayEnv is a node's relay with one video call placed on it. Its
// clients signal through the node's hub as the gateway would, without
// the HTTP and the routing in between.
type relayEnv struct {
	svc  *Service
	call string
	// offer, when set, rewrites the SDP of the next client's offer.
	offer func(sdp string) string
}

func newRelayEnv(t *testing.T) *relayEnv {
	t.Helper()
	return newRelayEnvWith(t, MediaConfig{IncludeLoopback: true})
}

func newRelayEnvWith(t *testing.T, media MediaConfig) *relayEnv {
	t.Helper()
	checkGoroutines(t)
	st, err := embedded.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	tk := ticket.New(st)
	svc, err := New(Config{Node: "n1", Media: media}, st, tk)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(svc.relay.closeAll)
	ctx := context.Background()
	joe := User{ID: "joe", Role: auth.RoleCustomer}
	tkt, err := tk.Open(ctx, ticket.System, api.OpenTicketRequest{CustomerID: joe.ID, Subject: "s", Queue: "support"})
	if err != nil {
		t.Fatal(err)
	}
	c, err := svc.Place(ctx, joe, api.PlaceCallRequest{TicketID: tkt.ID, Media: api.MediaVideo})
	if err != nil {
		t.Fatal(err)
	}
	return &relayEnv{svc: svc, call: c.ID}
}

// checkGoroutines fails the test if goroutines it started outlive it
// (every forward and senderReports loop must end with its
// PeerConnection): it polls in Cleanup for the count it saw at the start
// (a stand-in for goleak, which the module does not require). Tests using
// it must not run in parallel.
func checkGoroutines(t *testing.T) {
	t.Helper()
	before := runtime.NumGoroutine()
	t.Cleanup(func() {
		deadline := time.Now().Add(10 * time.Second)
		for runtime.NumGoroutine() > before {
			if time.Now().After(deadline) {
				buf := make([]byte, 1<<20)
				t.Errorf("%d goroutines leaked:\n%s", runtime.NumGoroutine()-before, buf[:runtime.Stack(buf, true)])
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
	})
}

// relayClient is a pion client of the relay: a caller or an agent sends
// Opus and VP8 RTP at real rates; a listener only receives.
type relayClient struct {
	pc *webrtc.PeerConnection
	// send are the client's senders by mid ("0" audio, "1" video).
	send map[string]*webrtc.RTPSender
	// got counts the RTP packets received, on every track; bad those
	// not as sent (payload type or SSRC not the track's, or a payload
	// of another size).
	got, bad atomic.Int64

	mu sync.Mutex
	// in are the tracks received, by mid: "0" and "1" the other party's
	// audio and video; a listener's "2" the agent's audio.
	in map[string]*webrtc.TrackRemote
	// reports are the sender reports received, by mid.
	reports map[string][]rtcp.SenderReport
}

// connect joins the call as role and connects a client's media.
func (e *relayEnv) connect(t *testing.T, role partyRole, user string) *relayClient {
	t.Helper()
	ses, err := e.svc.hub.Open(User{ID: user, Role: auth.RoleAgent})
	if err != nil {
		t.Fatal(err)
	}
	a, _, err := newAPI(e.svc.cfg.Media, e.svc.log, nil)
	if err != nil {
		t.Fatal(err)
	}
	pc, err := a.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	c := &relayClient{pc: pc, send: map[string]*webrtc.RTPSender{}, in: map[string]*webrtc.TrackRemote{},
		reports: map[string][]rtcp.SenderReport{}}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	t.Cleanup(func() {
		close(stop)
		_ = pc.Close()
		wg.Wait()
	})
	var audio, video *webrtc.TrackLocalStaticRTP
	if role == roleListener {
		for _, k := range []webrtc.RTPCodecType{webrtc.RTPCodecTypeAudio, webrtc.RTPCodecTypeVideo, webrtc.RTPCodecTypeAudio} {
			if _, err := pc.AddTransceiverFromKind(k, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}); err != nil {
				t.Fatal(err)
			}
		}
	} else {
		audio, _ = webrtc.NewTrackLocalStaticRTP(codecOpus, "audio", user)
		video, _ = webrtc.NewTrackLocalStaticRTP(codecVP8, "video", user)
		for _, tr := range []*webrtc.TrackLocalStaticRTP{audio, video} {
			if _, err := pc.AddTransceiverFromTrack(tr, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendrecv}); err != nil {
				t.Fatal(err)
			}
		}
	}
	pc.OnTrack(func(tr *webrtc.TrackRemote, r *webrtc.RTPReceiver) {
		mid := ""
		for _, x := range pc.GetTransceivers() {
			if x.Receiver() == r {
				mid = x.Mid()
			}
		}
		c.mu.Lock()
		c.in[mid] = tr
		c.mu.Unlock()
		go func() { // ends with the PeerConnection
			for {
				pkts, _, err := r.ReadRTCP()
				if err != nil {
					return
				}
				for _, p := range pkts {
					if sr, ok := p.(*rtcp.SenderReport); ok {
						c.mu.Lock()
						c.reports[mid] = append(c.reports[mid], *sr)
						c.mu.Unlock()
					}
				}
			}
		}()
		for {
			pkt, _, err := tr.ReadRTP()
			if err != nil {
				return
			}
			c.got.Add(1)
			if pkt.PayloadType != uint8(tr.PayloadType()) || pkt.SSRC != uint32(tr.SSRC()) ||
				(len(pkt.Payload) != audioPayload && len(pkt.Payload) != len(videoPayload)) {
				c.bad.Add(1)
			}
		}
	})

	// The relay's answer and trickled candidates come through the session.
	wg.Add(1)
	go func() {
		defer wg.Done()
		var pending []webrtc.ICECandidateInit
		for {
			select {
			case <-stop:
				return
			case sig := <-ses.Out():
				switch sig.Type {
				case api.SigAnswer:
					if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: sig.SDP}); err != nil {
						t.Errorf("answer: %v", err)
						return
					}
					for _, ic := range pending {
						_ = pc.AddICECandidate(ic)
					}
					pending = nil
				case api.SigCandidate:
					if sig.Candidate == nil || sig.Candidate.Candidate == "" {
						continue
					}
					ic := webrtc.ICECandidateInit{Candidate: sig.Candidate.Candidate, SDPMid: sig.Candidate.SDPMid, SDPMLineIndex: sig.Candidate.SDPMLineIndex}
					if pc.RemoteDescription() == nil {
						pending = append(pending, ic)
					} else {
						_ = pc.AddICECandidate(ic)
					}
				}
			}
		}
	}()
	from := addr{Node: "n1", Session: ses.ID()}
	signal := func(sig api.Signal) {
		sig.CallID = e.call
		e.svc.relay.dispatch(envelope{Kind: kindSig, CallID: e.call, From: &from, Sender: user, Role: role, Signal: &sig})
	}
	signal(api.Signal{Type: api.SigJoin})
	offer, err := pc.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	gathered := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(offer); err != nil {
		t.Fatal(err)
	}
	<-gathered // the offer carries every candidate; none trickle from this side
	sdp := pc.LocalDescription().SDP
	if e.offer != nil {
		sdp, e.offer = e.offer(sdp), nil
	}
	signal(api.Signal{Type: api.SigOffer, SDP: sdp})

	for _, x := range pc.GetTransceivers() {
		if s := x.Sender(); s != nil && s.Track() != nil {
			c.send[x.Mid()] = s
		}
	}
	if audio != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tick := time.NewTicker(20 * time.Millisecond)
			defer tick.Stop()
			for i := uint32(0); ; i++ {
				select {
				case <-stop:
					return
				case <-tick.C:
				}
				seq := uint16(i)
				_ = audio.WriteRTP(&rtp.Packet{Header: rtp.Header{Version: 2, SequenceNumber: seq, Timestamp: i * 960}, Payload: make([]byte, audioPayload)})
				_ = video.WriteRTP(&rtp.Packet{Header: rtp.Header{Version: 2, SequenceNumber: seq, Timestamp: i * 1800, Marker: true}, Payload: videoPayload})
			}
		}()
	}
	return c
}

// What relayClient sends: 20 ms of Opus, and a keyframe-looking VP8 frame.
const audioPayload = 160

var videoPayload = append([]byte{0x10, 0x00, 0x9d, 0x01, 0x2a}, make([]byte, 500)...)

// ssrcOut is the SSRC the client sends its track mid with.
func (c *relayClient) ssrcOut(mid string) uint32 {
	return uint32(c.send[mid].GetParameters().Encodings[0].SSRC)
}

// ssrcIn is the SSRC of the track mid the client receives, 0 before it
// arrived.
func (c *relayClient) ssrcIn(mid string) uint32 {
	c.mu.Lock()
	defer c.mu.Unlock()
	if tr := c.in[mid]; tr != nil {
		return uint32(tr.SSRC())
	}
	return 0
}

// streamOf is the stream ID (msid) of the track mid the client receives.
func (c *relayClient) streamOf(mid string) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if tr := c.in[mid]; tr != nil {
		return tr.StreamID()
	}
	return ""
}

// reportsOn are the sender reports received on track mid.
func (c *relayClient) reportsOn(mid string) []rtcp.SenderReport {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.reports[mid])
}

// withNTP is the first report of rs with that NTP time.
func withNTP(rs []rtcp.SenderReport, ntp uint64) (rtcp.SenderReport, bool) {
	for _, r := range rs {
		if r.NTPTime == ntp {
			return r, true
		}
	}
	return rtcp.SenderReport{}, false
}

// flowing waits until every client has received n RTP packets more than
// it had.
func flowing(t *testing.T, n int64, cs ...*relayClient) {
	t.Helper()
	base := make([]int64, len(cs))
	for i, c := range cs {
		base[i] = c.got.Load()
	}
	poll.Until(t, 20*time.Second, 20*time.Millisecond, func() error {
		for i, c := range cs {
			if got := c.got.Load() - base[i]; got < n {
				return fmt.Errorf("client %d received %d RTP packets, want %d", i, got, n)
			}
		}
		return nil
	})
}

// TestSenderReportsRelayed: a sender report that a party sends about its
// audio or video reaches every party that receives that track (the other
// party, and a listen-only supervisor), under the SSRC that party
// receives the track with, with its times and counts unchanged and no
// reception reports.
func TestSenderReportsRelayed(t *testing.T) {
	e := newRelayEnv(t)
	caller := e.connect(t, roleCaller, "joe")
	agent := e.connect(t, roleAgent, "ann")
	sup := e.connect(t, roleListener, "sue")
	flowing(t, 10, caller, agent, sup)
	// A browser lip-syncs the audio and video of one stream (msid): the
	// other party's two tracks, never the agent's voice with the caller's
	// video at a supervisor.
	for _, c := range []struct {
		name   string
		client *relayClient
		a, b   string
		same   bool
	}{
		{"agent: caller audio, video", agent, "0", "1", true},
		{"caller: agent audio, video", caller, "0", "1", true},
		{"supervisor: caller audio, video", sup, "0", "1", true},
		{"supervisor: caller video, agent audio", sup, "1", "2", false},
	} {
		if a, b := c.client.streamOf(c.a), c.client.streamOf(c.b); (a == b) != c.same || a == "" {
			t.Errorf("%s: streams %q and %q, same wanted %v", c.name, a, b, c.same)
		}
	}

	for i, c := range []struct {
		name  string
		from  *relayClient
		mid   string // the sender's track
		to    []*relayClient
		toMid []string // the track at each receiver
	}{
		{"caller video", caller, "1", []*relayClient{agent, sup}, []string{"1", "1"}},
		{"caller audio", caller, "0", []*relayClient{agent, sup}, []string{"0", "0"}},
		{"agent audio", agent, "0", []*relayClient{caller, sup}, []string{"0", "2"}},
		{"agent video", agent, "1", []*relayClient{caller}, []string{"1"}},
	} {
		sent := rtcp.SenderReport{SSRC: c.from.ssrcOut(c.mid), NTPTime: 0xE000_0000_0000_0000 + uint64(i)<<32,
			RTPTime: 123456 + uint32(i), PacketCount: 500 + uint32(i), OctetCount: 80000 + uint32(i),
			Reports: []rtcp.ReceptionReport{{SSRC: 42, FractionLost: 1, LastSenderReport: 7}}}
		poll.Until(t, 20*time.Second, 200*time.Millisecond, func() error {
			if err := c.from.pc.WriteRTCP([]rtcp.Packet{&sent}); err != nil {
				return err
			}
			for j, to := range c.to {
				got, ok := withNTP(to.reportsOn(c.toMid[j]), sent.NTPTime)
				if !ok {
					return fmt.Errorf("%s: receiver %d has no report on track %s", c.name, j, c.toMid[j])
				}
				want := rtcp.SenderReport{SSRC: to.ssrcIn(c.toMid[j]), NTPTime: sent.NTPTime, RTPTime: sent.RTPTime,
					PacketCount: sent.PacketCount, OctetCount: sent.OctetCount}
				if want.SSRC == 0 || got.SSRC != want.SSRC || got.RTPTime != want.RTPTime ||
					got.PacketCount != want.PacketCount || got.OctetCount != want.OctetCount || len(got.Reports) != 0 {
					t.Fatalf("%s: receiver %d got %+v, want %+v", c.name, j, got, want)
				}
			}
			return nil
		})
	}
	// Each report went only to the track it is about.
	for _, c := range []struct {
		to  *relayClient
		mid string
		n   int
	}{{agent, "0", 1}, {agent, "1", 1}, {caller, "0", 1}, {caller, "1", 1}, {sup, "0", 1}, {sup, "1", 1}, {sup, "2", 1}} {
		seen := map[uint64]bool{}
		for _, r := range c.to.reportsOn(c.mid) {
			seen[r.NTPTime] = true
		}
		if len(seen) != c.n {
			t.Errorf("track %s of a receiver got reports %v, want %d distinct", c.mid, seen, c.n)
		}
	}
}

// TestSenderReportFlood: a burst of 1,000 sender reports from one party
// reaches the other at the relay's bound (srBurst at once, srRate a
// second after), and the call's RTP keeps flowing.
func TestSenderReportFlood(t *testing.T) {
	e := newRelayEnv(t)
	caller := e.connect(t, roleCaller, "joe")
	agent := e.connect(t, roleAgent, "ann")
	flowing(t, 10, caller, agent)

	ssrc := caller.ssrcOut("1")
	const flood = 1000
	start := time.Now()
	for i := range flood {
		if err := caller.pc.WriteRTCP([]rtcp.Packet{&rtcp.SenderReport{SSRC: ssrc, NTPTime: 1<<40 + uint64(i)}}); err != nil {
			t.Fatal(err)
		}
	}
	// The relay reads a track's RTCP in order: once a report sent after
	// the flood arrives, the flood is through.
	const marker = 1 << 50
	poll.Until(t, 20*time.Second, 200*time.Millisecond, func() error {
		_ = caller.pc.WriteRTCP([]rtcp.Packet{&rtcp.SenderReport{SSRC: ssrc, NTPTime: marker}})
		if _, ok := withNTP(agent.reportsOn("1"), marker); !ok {
			return fmt.Errorf("the report after the flood has not arrived")
		}
		return nil
	})
	elapsed := time.Since(start)
	n := 0
	for _, r := range agent.reportsOn("1") {
		if r.NTPTime >= 1<<40 && r.NTPTime < 1<<40+flood {
			n++
		}
	}
	bound := srBurst + int(srRate*elapsed.Seconds()) + 1
	if n == 0 || n > bound {
		t.Fatalf("%d of %d flooded reports relayed in %v; want 1 to %d", n, flood, elapsed, bound)
	}
	flowing(t, 10, caller, agent)
}

// TestSenderReportOfAnotherSSRC: a sender report that reaches a track's
// RTCP only because a report block names that track (its own SSRC is
// another) is not relayed as that track's; one about the party's other
// track goes out on that track only.
func TestSenderReportOfAnotherSSRC(t *testing.T) {
	e := newRelayEnv(t)
	caller := e.connect(t, roleCaller, "joe")
	agent := e.connect(t, roleAgent, "ann")
	flowing(t, 10, caller, agent)

	audio, video := caller.ssrcOut("0"), caller.ssrcOut("1")
	const foreign, ofAudio, ofVideo = 1 << 40, 2 << 40, 3 << 40
	poll.Until(t, 20*time.Second, 200*time.Millisecond, func() error {
		err := caller.pc.WriteRTCP([]rtcp.Packet{
			&rtcp.SenderReport{SSRC: 0xBADC0DE, NTPTime: foreign, Reports: []rtcp.ReceptionReport{{SSRC: video}, {SSRC: audio}}},
			&rtcp.SenderReport{SSRC: audio, NTPTime: ofAudio, Reports: []rtcp.ReceptionReport{{SSRC: video}}},
			&rtcp.SenderReport{SSRC: video, NTPTime: ofVideo},
		})
		if err != nil {
			return err
		}
		_, a := withNTP(agent.reportsOn("0"), ofAudio)
		_, v := withNTP(agent.reportsOn("1"), ofVideo)
		if !a || !v {
			return fmt.Errorf("reports arrived: audio %v, video %v", a, v)
		}
		return nil
	})
	for mid, want := range map[string]uint64{"0": ofAudio, "1": ofVideo} {
		for _, r := range agent.reportsOn(mid) {
			if r.NTPTime != want {
				t.Errorf("track %s got a report with NTP time %#x, want only %#x", mid, r.NTPTime, want)
			}
		}
	}
}
