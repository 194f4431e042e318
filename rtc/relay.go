package rtc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/webrtc/v4"

	"github.com/switchboard/switchboard/api"
	"github.com/switchboard/switchboard/internal/tokenbucket"
)

// partyRole is how a session takes part in a call's media.
type partyRole int

const (
	roleCaller   partyRole = iota + 1 // the customer (or the technician on site)
	roleAgent                         // the agent who answered
	roleListener                      // a supervisor, listen-only
)

const (
	// roomInbox bounds the signals waiting for one room; a burst beyond
	// it (the per-session rate limit makes that hard) drops the excess.
	roomInbox = 256
	// maxListeners bounds supervisors on one call.
	maxListeners = 4
	// maxPendingCandidates bounds candidates held until the offer arrives.
	maxPendingCandidates = 64
	// maxDataMessage bounds one relayed data channel message: diagnostics
	// are small JSON frames; 16 KiB is the portable SCTP message size
	// (RFC 8831 section 6.6).
	maxDataMessage = 16 << 10
	// maxDataBuffered bounds what waits in a data channel to one party; a
	// party that cannot keep up loses messages instead of growing memory.
	maxDataBuffered = 1 << 20
	// pliInterval bounds keyframe requests to one source: a keyframe is
	// large, and receivers ask for one on every loss burst.
	pliInterval = 500 * time.Millisecond
	// mtu is the largest RTP packet read (Ethernet MTU, as pion's default).
	mtu = 1500
	// srRate and srBurst bound the sender reports relayed from one
	// incoming track (per second, and at once). An honest sender reports
	// about once a second per stream (libwebrtc: every 1s for video, 5s
	// for audio, randomized by 0.5-1.5x as RFC 3550 section 6.3.1 asks),
	// a few more when it puts one at the head of a feedback packet; ten
	// leaves room for that, and stops a party from making the relay
	// flood the others with its RTCP.
	srRate  = 10
	srBurst = 10
)

// Relay hosts the media of the calls placed on this node: one room per
// call, one PeerConnection per party.
type Relay struct {
	svc *Service
	api *webrtc.API
	cfg MediaConfig

	mu     sync.Mutex
	rooms  map[string]*room
	closed bool
	wg     sync.WaitGroup

	// Forwarded counts RTP packets written to a party's track.
	forwarded atomic.Uint64
	// media is the one UDP socket of all parties (MediaConfig.UDPAddr),
	// under mux, and fast its packet loop; nil: a port per party, all
	// through pion.
	media *mediaConn
	mux   io.Closer
	fast  *fastPath
}

func newRelay(s *Service, cfg MediaConfig) (*Relay, error) {
	r := &Relay{svc: s, cfg: cfg, rooms: map[string]*room{}}
	if cfg.UDPAddr != "" {
		media, err := listenMedia(cfg.UDPAddr)
		if err != nil {
			return nil, err
		}
		r.media, r.fast = media, newFastPath(&r.forwarded)
		media.fast = r.fast
	}
	a, mux, err := newAPI(cfg, s.log, r.media)
	if err != nil {
		if r.media != nil {
			_ = r.media.Close()
		}
		return nil, err
	}
	r.api, r.mux = a, mux
	return r, nil
}

// Forwarded is the number of RTP packets forwarded since start.
func (r *Relay) Forwarded() uint64 { return r.forwarded.Load() }

// FastForwarded is how many of those the fast path sent itself
// (MediaConfig.UDPAddr); the rest went through pion.
func (r *Relay) FastForwarded() uint64 {
	if r.fast == nil {
		return 0
	}
	return r.fast.sent.Load()
}

// Rooms is the number of calls with media on this node.
func (r *Relay) Rooms() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.rooms)
}

// dispatch queues env for its room, creating the room on a join.
func (r *Relay) dispatch(env envelope) {
	r.mu.Lock()
	rm := r.rooms[env.CallID]
	if rm == nil && env.Kind == kindSig && env.Signal != nil && env.Signal.Type == api.SigJoin && !r.closed {
		rm = &room{relay: r, id: env.CallID, inbox: make(chan envelope, roomInbox), done: make(chan struct{}),
			bySession: map[string]*party{}}
		r.rooms[env.CallID] = rm
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			rm.run()
		}()
	}
	r.mu.Unlock()
	if rm == nil {
		if env.Kind == kindSig && env.From != nil {
			r.svc.hub.deliver(context.Background(), *env.From, api.Signal{Type: api.SigError, CallID: env.CallID,
				Code: "not-found", Detail: "join the call first"})
		}
		return
	}
	select {
	case rm.inbox <- env:
	case <-rm.done:
	default:
		r.svc.log.Warn("room inbox full: signal dropped", "call", env.CallID)
	}
}

func (r *Relay) remove(id string) {
	r.mu.Lock()
	delete(r.rooms, id)
	r.mu.Unlock()
}

// closeAll ends every room and waits for them (shutdown).
func (r *Relay) closeAll() {
	r.mu.Lock()
	r.closed = true
	for _, rm := range r.rooms {
		rm.stop()
	}
	r.mu.Unlock()
	r.wg.Wait()
	if r.mux != nil {
		_ = r.mux.Close()
	}
}

// room is one call's media on this node. Its goroutine handles signals in
// order; pion's callbacks run on pion's goroutines and touch only what
// the locks and atomics below guard.
type room struct {
	relay *Relay
	id    string
	inbox chan envelope
	done  chan struct{}
	once  sync.Once

	mu        sync.Mutex
	caller    *party
	agent     *party
	listeners []*party
	bySession map[string]*party
	rec       *callRecord
	ended     bool
}

// party is one PeerConnection of a room.
type party struct {
	room *room
	role partyRole
	user string
	at   atomic.Pointer[addr]
	pc   *webrtc.PeerConnection
	// out are the tracks this party receives: [audio, video] from the
	// other party; a listener's third is the agent's audio.
	out   []*webrtc.TrackLocalStaticRTP
	added bool
	// outSSRC are the SSRCs of the relay's RTPSenders of out, set when
	// offer adds them: a sender report relayed to this party must name a
	// stream the way this party receives it.
	outSSRC []atomic.Uint32
	// inSSRC are the SSRCs of this party's own audio and video, for
	// feedback sent upstream to it.
	inSSRC [2]atomic.Uint32
	// outPT are the payload types this party gets out's codecs under.
	outPT   []atomic.Uint32
	senders []*webrtc.RTPSender
	// sinks are where this party's audio and video go, rebuilt by rewire.
	sinks [2]atomic.Pointer[[]sink]
	// fast is the party's SRTP keys on the fast path, fastAddr its
	// selected remote address, and fastOn which of its incoming tracks
	// (audio, video) the fast path may forward (fastpath.go).
	fast      atomic.Pointer[partyFast]
	fastAddr  atomic.Pointer[net.UDPAddr]
	fastOn    [2]atomic.Bool
	dc        atomic.Pointer[webrtc.DataChannel]
	connected atomic.Bool
	lastPLI   atomic.Int64
	pending   []webrtc.ICECandidateInit
	grace     *time.Timer
	// recording is this party's WebM file when the call is recorded,
	// opened by its first track (record.go); recEnded is set when the
	// room ends, after which none is opened.
	recMu     sync.Mutex
	recording *recording
	recEnded  bool
}

const (
	kAudio = 0
	kVideo = 1
)

// sink is one outgoing track that carries a source's audio or video:
// track out[i] of party to. forward writes the RTP to track; the sender
// reports that go with that RTP go to the same party, under out[i]'s SSRC.
type sink struct {
	track *webrtc.TrackLocalStaticRTP
	to    *party
	i     int
}

func (rm *room) stop() { rm.once.Do(func() { close(rm.done) }) }

func (rm *room) run() {
	defer rm.relay.remove(rm.id)
	defer rm.closeParties()
	for {
		select {
		case <-rm.done:
			return
		case env := <-rm.inbox:
			if env.Kind == kindEnd {
				return
			}
			if err := rm.handle(env); err != nil && env.From != nil {
				rm.relay.svc.hub.deliver(context.Background(), *env.From, api.Signal{Type: api.SigError,
					CallID: rm.id, Code: errorCode(err), Detail: err.Error()})
			}
		}
	}
}

func (rm *room) closeParties() {
	rm.mu.Lock()
	rm.ended = true
	all := append([]*party{rm.caller, rm.agent}, rm.listeners...)
	for _, p := range all {
		// Under mu, as stateChanged sets it; a callback already running
		// sees ended and does nothing.
		if p != nil && p.grace != nil {
			p.grace.Stop()
			p.grace = nil
		}
	}
	rm.mu.Unlock()
	for _, p := range all {
		if p != nil {
			_ = p.pc.Close()
			if rm.relay.fast != nil {
				rm.relay.fast.detach(p)
			}
		}
	}
	for _, p := range all {
		if p != nil {
			p.closeRecording(rm.relay.svc.log)
		}
	}
}

func (rm *room) handle(env envelope) error {
	sig := env.Signal
	if sig == nil || env.From == nil {
		return nil
	}
	from := *env.From
	switch sig.Type {
	case api.SigJoin:
		return rm.join(from, env.Sender, env.Role)
	case sigLeave:
		rm.mu.Lock()
		if p := rm.bySession[from.Session]; p != nil {
			// Only if the party is still reached through this session:
			// after a reconnect the old session closes late, and must
			// not cut the party off from the new one.
			if at := p.at.Load(); at != nil && *at == from {
				p.at.CompareAndSwap(at, nil)
			}
			delete(rm.bySession, from.Session)
		}
		rm.mu.Unlock()
		return nil
	}
	rm.mu.Lock()
	p := rm.bySession[from.Session]
	rm.mu.Unlock()
	if p == nil {
		return fmt.Errorf("%w: join the call first", ErrNotFound)
	}
	switch sig.Type {
	case api.SigOffer:
		return rm.offer(p, sig.SDP)
	case api.SigCandidate:
		c := webrtc.ICECandidateInit{Candidate: sig.Candidate.Candidate, SDPMid: sig.Candidate.SDPMid,
			SDPMLineIndex: sig.Candidate.SDPMLineIndex, UsernameFragment: sig.Candidate.UsernameFragment}
		if p.pc.RemoteDescription() == nil {
			if len(p.pending) >= maxPendingCandidates {
				return fmt.Errorf("%w: too many candidates before the offer", ErrInvalid)
			}
			p.pending = append(p.pending, c)
			return nil
		}
		if c.Candidate == "" {
			return nil // end of candidates
		}
		if err := p.pc.AddICECandidate(c); err != nil {
			return fmt.Errorf("%w: the candidate was refused", ErrInvalid)
		}
	case api.SigMute:
		rm.toOthers(p, api.Signal{Type: api.SigMute, CallID: rm.id, Mute: sig.Mute, Peer: roleName(p.role)})
	}
	return nil
}

func roleName(r partyRole) string {
	switch r {
	case roleCaller:
		return "caller"
	case roleAgent:
		return "agent"
	}
	return "listener"
}

// join adds a party, or moves an existing one to a new session (the app
// reconnected its signaling, perhaps through another node).
func (rm *room) join(from addr, user string, role partyRole) error {
	ctx := context.Background()
	svc := rm.relay.svc
	rec, err := svc.load(ctx, rm.id)
	if err != nil {
		return err
	}
	if rec.ended() {
		rm.stop()
		return fmt.Errorf("%w: the call has ended", ErrConflict)
	}
	rm.mu.Lock()
	rm.rec = rec
	var p *party
	switch role {
	case roleCaller:
		p = rm.caller
	case roleAgent:
		p = rm.agent
	case roleListener:
		if len(rm.listeners) >= maxListeners {
			rm.mu.Unlock()
			return fmt.Errorf("%w: at most %d supervisors listen to a call", ErrConflict, maxListeners)
		}
	}
	rm.mu.Unlock()
	if p == nil {
		if p, err = rm.newParty(role, user, rec.Media == api.MediaVideo); err != nil {
			return err
		}
		rm.mu.Lock()
		switch role {
		case roleCaller:
			rm.caller = p
		case roleAgent:
			rm.agent = p
		case roleListener:
			rm.listeners = append(rm.listeners, p)
		}
		rm.mu.Unlock()
	}
	a := from
	p.at.Store(&a)
	rm.mu.Lock()
	rm.bySession[from.Session] = p
	rm.mu.Unlock()
	rm.rewire()
	c := rec.Call
	svc.hub.deliver(ctx, from, api.Signal{Type: api.SigJoined, CallID: rm.id, Call: &c, ICEServers: svc.ICEServers(user)})
	if role != roleListener {
		rm.toOthers(p, api.Signal{Type: api.SigPeer, CallID: rm.id, Peer: "joined"})
	}
	return nil
}

func (rm *room) newParty(role partyRole, user string, video bool) (*party, error) {
	pc, err := rm.relay.api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		return nil, err
	}
	p := &party{room: rm, role: role, user: user, pc: pc}
	// The stream ID is the SDP's msid, by which a browser groups the audio
	// and video it lip-syncs (with the sender reports senderReports
	// relays): the other party's audio and video share one; a listener
	// hears the agent in a stream of its own, so the agent's clock is
	// never matched against the caller's video.
	mk := func(c webrtc.RTPCodecCapability, id, stream string) *webrtc.TrackLocalStaticRTP {
		t, _ := webrtc.NewTrackLocalStaticRTP(c, id, stream)
		return t
	}
	stream := "switchboard-" + rm.id
	p.out = []*webrtc.TrackLocalStaticRTP{mk(codecOpus, "audio", stream)}
	if video {
		p.out = append(p.out, mk(codecVP8, "video", stream))
	}
	if role == roleListener {
		p.out = append(p.out, mk(codecOpus, "audio-agent", stream+"-agent"))
	}
	p.outSSRC = make([]atomic.Uint32, len(p.out))
	p.outPT = make([]atomic.Uint32, len(p.out))
	if f := rm.relay.fast; f != nil {
		pc.SCTP().Transport().ICETransport().OnSelectedCandidatePairChange(func(pair *webrtc.ICECandidatePair) { f.moved(p, pair) })
	}
	pc.OnICECandidate(func(c *webrtc.ICECandidate) {
		at := p.at.Load()
		if at == nil {
			return
		}
		sig := api.Signal{Type: api.SigCandidate, CallID: rm.id, Candidate: &api.ICECandidate{}}
		if c != nil {
			init := c.ToJSON()
			sig.Candidate = &api.ICECandidate{Candidate: init.Candidate, SDPMid: init.SDPMid, SDPMLineIndex: init.SDPMLineIndex}
		}
		rm.relay.svc.hub.deliver(context.Background(), *at, sig)
	})
	pc.OnConnectionStateChange(func(s webrtc.PeerConnectionState) { rm.stateChanged(p, s) })
	if role != roleListener {
		pc.OnTrack(func(t *webrtc.TrackRemote, r *webrtc.RTPReceiver) { rm.forward(p, t, r) })
		pc.OnDataChannel(func(dc *webrtc.DataChannel) { rm.relayData(p, dc) })
	}
	return p, nil
}

// offer applies a party's offer (the first, a renegotiation, or an ICE
// restart after a network change) and sends the answer.
func (rm *room) offer(p *party, sdp string) error {
	if err := p.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: sdp}); err != nil {
		return fmt.Errorf("%w: the offer was refused: %v", ErrBadSDP, err)
	}
	if !p.added {
		p.added = true
		for i, t := range p.out {
			sender, err := p.pc.AddTrack(t)
			if err != nil {
				return err
			}
			if enc := sender.GetParameters().Encodings; len(enc) > 0 {
				p.outSSRC[i].Store(uint32(enc[0].SSRC))
			}
			p.senders = append(p.senders, sender)
			rm.relay.wg.Add(1)
			go func() {
				defer rm.relay.wg.Done()
				rm.feedback(p, i, sender)
			}()
		}
	}
	for _, c := range p.pending {
		if c.Candidate != "" {
			_ = p.pc.AddICECandidate(c)
		}
	}
	p.pending = nil
	answer, err := p.pc.CreateAnswer(nil)
	if err != nil {
		return fmt.Errorf("%w: no answer to this offer: %v", ErrBadSDP, err)
	}
	if err := p.pc.SetLocalDescription(answer); err != nil {
		return fmt.Errorf("%w: no answer to this offer: %v", ErrBadSDP, err)
	}
	for i, sender := range p.senders {
		for _, c := range sender.GetParameters().Codecs {
			if strings.EqualFold(c.MimeType, p.out[i].Codec().MimeType) {
				p.outPT[i].Store(uint32(c.PayloadType))
				break
			}
		}
	}
	if at := p.at.Load(); at != nil {
		rm.relay.svc.hub.deliver(context.Background(), *at, api.Signal{Type: api.SigAnswer, CallID: rm.id, SDP: p.pc.LocalDescription().SDP})
	}
	return nil
}

// stateChanged tracks a party's connection. Media flows only to connected
// parties, so one whose consent expired (ICE failed, RFC 7675) gets none;
// a failed party has ReconnectGrace to come back (ICE restart) before the
// call ends.
func (rm *room) stateChanged(p *party, s webrtc.PeerConnectionState) {
	svc := rm.relay.svc
	switch s {
	case webrtc.PeerConnectionStateConnected:
		if f := rm.relay.fast; f != nil {
			if err := f.attach(p, rm.relay.media.keys); err != nil {
				svc.log.Debug("media stays on pion: no SRTP keys", "call", rm.id, "err", err)
			}
		}
		p.connected.Store(true)
		rm.mu.Lock()
		if p.grace != nil {
			p.grace.Stop()
			p.grace = nil
		}
		rm.mu.Unlock()
		rm.rewire()
		rm.keyframe(rm.other(p))
		rm.keyframe(p)
	case webrtc.PeerConnectionStateDisconnected, webrtc.PeerConnectionStateFailed:
		p.connected.Store(false)
		rm.rewire()
		rm.toOthers(p, api.Signal{Type: api.SigPeer, CallID: rm.id, Peer: "reconnecting"})
		if s == webrtc.PeerConnectionStateFailed && p.role != roleListener {
			rm.mu.Lock()
			if p.grace == nil && !rm.ended {
				p.grace = time.AfterFunc(svc.cfg.ReconnectGrace, func() {
					rm.mu.Lock()
					ended := rm.ended
					rm.mu.Unlock()
					// A closed room (the call ended, or this node is
					// stopping and another will take the call over) is
					// not this timer's to end.
					if ended || p.connected.Load() {
						return
					}
					ctx := context.Background()
					if rec, err := svc.load(ctx, rm.id); err == nil && rec.Node != svc.cfg.Node {
						rm.stop() // another node took the call over: not ours to end
						return
					}
					_, _ = svc.finish(ctx, rm.id, "system", "network")
				})
			}
			rm.mu.Unlock()
		}
	}
}

func (rm *room) other(p *party) *party {
	rm.mu.Lock()
	defer rm.mu.Unlock()
	switch p.role {
	case roleCaller:
		return rm.agent
	case roleAgent:
		return rm.caller
	}
	return nil
}

// toOthers signals every other party of the room.
func (rm *room) toOthers(p *party, sig api.Signal) {
	rm.mu.Lock()
	all := append([]*party{rm.caller, rm.agent}, rm.listeners...)
	rm.mu.Unlock()
	for _, o := range all {
		if o != nil && o != p {
			if at := o.at.Load(); at != nil {
				rm.relay.svc.hub.deliver(context.Background(), *at, sig)
			}
		}
	}
}

// rewire rebuilds where each party's media goes: the other party and
// every listener, when connected.
func (rm *room) rewire() {
	rm.mu.Lock()
	defer rm.mu.Unlock()
	for _, src := range []*party{rm.caller, rm.agent} {
		if src == nil {
			continue
		}
		dst := rm.agent
		if src.role == roleAgent {
			dst = rm.caller
		}
		for k := range 2 {
			var sinks []sink
			if dst != nil && dst.connected.Load() && k < len(dst.out) && (k == kAudio || dst.out[k].Kind() == webrtc.RTPCodecTypeVideo) {
				sinks = append(sinks, sink{dst.out[k], dst, k})
			}
			for _, l := range rm.listeners {
				if !l.connected.Load() {
					continue
				}
				switch {
				case src.role == roleCaller && k < 2 && k < len(l.out)-1:
					sinks = append(sinks, sink{l.out[k], l, k})
				case src.role == roleAgent && k == kAudio:
					sinks = append(sinks, sink{l.out[len(l.out)-1], l, len(l.out) - 1})
				}
			}
			src.sinks[k].Store(&sinks)
		}
	}
}

// forward copies one incoming track of p to its sinks, packet by packet,
// and its sender reports beside it (senderReports). It ends when the
// track does (the PeerConnection closed).
func (rm *room) forward(p *party, t *webrtc.TrackRemote, r *webrtc.RTPReceiver) {
	k := kAudio
	if t.Kind() == webrtc.RTPCodecTypeVideo {
		k = kVideo
	}
	p.inSSRC[k].Store(uint32(t.SSRC()))
	rec := rm.recorder(p, t)
	if rec != nil {
		defer rec.release()
	} else {
		// The fast path takes this track's packets from here on; a
		// recorded one stays here, where the recorder sees each packet.
		p.fastOn[k].Store(true)
		defer p.fastOn[k].Store(false)
	}
	reports := make(chan struct{})
	go func() {
		defer close(reports)
		rm.senderReports(p, k, uint32(t.SSRC()), r, rec)
	}()
	defer func() { <-reports }()
	if k == kVideo {
		rm.keyframe(p)
	}
	buf := make([]byte, mtu)
	for {
		n, _, err := t.Read(buf)
		if err != nil {
			return
		}
		if rec != nil && !rec.write(buf[:n]) {
			rec = nil // the recording is over; the call goes on
		}
		sinks := p.sinks[k].Load()
		if sinks == nil {
			continue
		}
		for _, s := range *sinks {
			if _, err := s.track.Write(buf[:n]); err == nil {
				rm.relay.forwarded.Add(1)
			}
		}
	}
}

// senderReports reads the RTCP that p sends about its track of kind k
// (SSRC ssrc) and relays its sender reports to the parties that receive
// that track, so they can map its RTP timestamps to wall-clock time:
// browsers need that to lip-sync audio with video, and to report
// remote-outbound-rtp stats. The RTP goes out with its timestamps
// unchanged, so only the SSRC is rewritten; the reception reports are
// dropped (they tell what p received, not what the relay sends), and so
// is the rest (SDES, BYE): browsers group streams for sync by the msid of
// the SDP, not by an RTCP CNAME, and the SDP already carries the CNAME
// (pion's, the track's stream ID). rec, when the track is recorded, gets
// the reports too, to line the recording's audio and video up. It ends
// when the receiver does (the PeerConnection closed).
func (rm *room) senderReports(p *party, k int, ssrc uint32, r *webrtc.RTPReceiver, rec *trackRecorder) {
	limit := tokenbucket.New(srBurst, srRate, time.Now())
	buf := make([]byte, mtu)
	for {
		n, _, err := r.Read(buf)
		if err != nil {
			return
		}
		pkts, err := rtcp.Unmarshal(buf[:n])
		if err != nil {
			continue
		}
		for _, pkt := range pkts {
			sr, ok := pkt.(*rtcp.SenderReport)
			// A report about another SSRC (one that reached this track
			// through a report block naming it) is not this track's.
			if !ok || sr.SSRC != ssrc {
				continue
			}
			if rec != nil {
				rec.senderReport(sr.NTPTime, sr.RTPTime)
			}
			if !limit.Allow(time.Now()) {
				continue
			}
			sinks := p.sinks[k].Load()
			if sinks == nil {
				continue
			}
			for _, s := range *sinks {
				if out := s.to.outSSRC[s.i].Load(); out != 0 {
					_ = s.to.pc.WriteRTCP([]rtcp.Packet{&rtcp.SenderReport{SSRC: out, NTPTime: sr.NTPTime,
						RTPTime: sr.RTPTime, PacketCount: sr.PacketCount, OctetCount: sr.OctetCount}})
				}
			}
		}
	}
}

// feedback reads the RTCP a party sends about track i of what it receives
// and relays keyframe requests and NACKs to that track's source.
func (rm *room) feedback(p *party, i int, s *webrtc.RTPSender) {
	buf := make([]byte, mtu)
	for {
		n, _, err := s.Read(buf)
		if err != nil {
			return
		}
		pkts, err := rtcp.Unmarshal(buf[:n])
		if err != nil {
			continue
		}
		src, k := rm.sourceOf(p, i)
		if src == nil {
			continue
		}
		for _, pkt := range pkts {
			switch f := pkt.(type) {
			case *rtcp.PictureLossIndication, *rtcp.FullIntraRequest:
				rm.keyframe(src)
			case *rtcp.TransportLayerNack:
				ssrc := src.inSSRC[k].Load()
				if ssrc == 0 {
					continue
				}
				_ = src.pc.WriteRTCP([]rtcp.Packet{&rtcp.TransportLayerNack{SenderSSRC: f.SenderSSRC, MediaSSRC: ssrc, Nacks: f.Nacks}})
			}
		}
	}
}

// sourceOf is the party and kind that feed track i of p.
func (rm *room) sourceOf(p *party, i int) (*party, int) {
	rm.mu.Lock()
	defer rm.mu.Unlock()
	switch {
	case p.role == roleCaller:
		return rm.agent, i
	case p.role == roleAgent:
		return rm.caller, i
	case i == len(p.out)-1:
		return rm.agent, kAudio
	}
	return rm.caller, i
}

// keyframe asks p for a keyframe (PLI), at most once per pliInterval.
func (rm *room) keyframe(p *party) {
	if p == nil {
		return
	}
	ssrc := p.inSSRC[kVideo].Load()
	now := time.Now().UnixNano()
	last := p.lastPLI.Load()
	if ssrc == 0 || now-last < int64(pliInterval) || !p.lastPLI.CompareAndSwap(last, now) {
		return
	}
	_ = p.pc.WriteRTCP([]rtcp.Packet{&rtcp.PictureLossIndication{MediaSSRC: ssrc}})
}

// relayData relays the diagnostics data channel between the app and the
// console, message by message.
func (rm *room) relayData(p *party, dc *webrtc.DataChannel) {
	if dc.Label() != api.DataChannelLabel {
		_ = dc.Close()
		return
	}
	p.dc.Store(dc)
	dc.OnMessage(func(m webrtc.DataChannelMessage) {
		if len(m.Data) > maxDataMessage {
			return
		}
		o := rm.other(p)
		if o == nil {
			return
		}
		to := o.dc.Load()
		if to == nil || to.ReadyState() != webrtc.DataChannelStateOpen || to.BufferedAmount() > maxDataBuffered {
			return
		}
		if m.IsString {
			_ = to.SendText(string(m.Data))
		} else {
			_ = to.Send(m.Data)
		}
	})
}

// errorCode is the problem code of a refused signal.
func errorCode(err error) string {
	switch {
	case errors.Is(err, ErrNotFound):
		return api.CodeNotFound
	case errors.Is(err, ErrConflict):
		return api.CodeConflict
	case errors.Is(err, ErrForbidden):
		return api.CodeForbidden
	case errors.Is(err, ErrRateLimited):
		return api.CodeRateLimited
	case errors.Is(err, ErrInvalid), errors.Is(err, ErrBadSDP):
		return api.CodeValidation
	}
	return api.CodeInternal
}
