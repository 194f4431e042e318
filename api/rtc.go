package api

import "time"

// Call media kinds.
const (
	MediaAudio = "audio"
	MediaVideo = "video"
)

// CallState is where a call is in its life.
type CallState string

// Call states. A call moves queued -> ringing -> (queued again on decline
// or ring timeout) -> active -> ended, or ends missed from queued/ringing
// (abandoned, call-back requested, nobody answered).
const (
	CallQueued  CallState = "queued"
	CallRinging CallState = "ringing"
	CallActive  CallState = "active"
	CallEnded   CallState = "ended"
	CallMissed  CallState = "missed"
)

// Reasons a call was missed (CallPayload.Reason, Call.EndReason).
const (
	MissAbandoned = "abandoned"
	MissCallBack  = "call_back_requested"
	MissNoAgent   = "no_agent"
)

// PlaceCallRequest is the body of POST /v1/calls.
type PlaceCallRequest struct {
	TicketID string `json:"ticket_id"`
	Media    string `json:"media"`           // audio | video
	Skill    string `json:"skill,omitempty"` // empty: the ticket's queue
	// RecordingConsent is the customer's consent to record the call.
	// Without it nothing is recorded.
	RecordingConsent bool `json:"recording_consent,omitempty"`
}

// ICEServer is one STUN or TURN server for a client's RTCPeerConnection,
// in the shape browsers take (RTCIceServer).
type ICEServer struct {
	URLs       []string `json:"urls"`
	Username   string   `json:"username,omitempty"`
	Credential string   `json:"credential,omitempty"`
}

// Call is a call as its parties see it.
type Call struct {
	ID         string    `json:"id"`
	TicketID   string    `json:"ticket_id"`
	CustomerID string    `json:"customer_id"`
	Caller     string    `json:"caller"`      // who placed it: the customer, or a technician on site
	CallerRole string    `json:"caller_role"` // customer | technician
	Media      string    `json:"media"`
	Skill      string    `json:"skill"`
	State      CallState `json:"state"`
	Agent      string    `json:"agent,omitempty"` // ringing or answered by
	Recording  bool      `json:"recording,omitempty"`
	CreatedAt  time.Time `json:"created_at"`
	AnsweredAt time.Time `json:"answered_at,omitzero"`
	EndedAt    time.Time `json:"ended_at,omitzero"`
	EndReason  string    `json:"end_reason,omitempty"`
	HungUpBy   string    `json:"hung_up_by,omitempty"`
	// Position is the 1-based place in the queue while queued.
	Position int `json:"position,omitempty"`
	// ExpectedWaitSeconds estimates the wait while queued.
	ExpectedWaitSeconds int `json:"expected_wait_seconds,omitempty"`
}

// PlacedCall is the answer to POST /v1/calls: the call, where to signal,
// and the ICE servers (with short-lived TURN credentials) to use.
type PlacedCall struct {
	Call         Call        `json:"call"`
	SignalingURL string      `json:"signaling_url"`
	ICEServers   []ICEServer `json:"ice_servers"`
}

// CallBackRequest is the body of POST /v1/calls/{id}/callback: instead of
// waiting, the customer asks to be called back (a follow-up on the ticket).
type CallBackRequest struct {
	// At is when; zero means as soon as an agent can.
	At time.Time `json:"at,omitzero"`
	// Note is shown to the agent who calls back.
	Note string `json:"note,omitempty"`
}

// AgentStatus is an agent's availability.
type AgentStatus string

// Agent statuses.
const (
	AgentAvailable AgentStatus = "available"
	AgentBusy      AgentStatus = "busy" // on a call, or doing something else
	AgentAway      AgentStatus = "away"
)

// AgentStatusRequest is the body of PUT /v1/agents/me/status.
type AgentStatusRequest struct {
	Status AgentStatus `json:"status"`
}

// Agent is an agent's presence as routing sees it.
type Agent struct {
	ID     string      `json:"id"`
	Status AgentStatus `json:"status"`
	Skills []string    `json:"skills"`
	// IdleSince is when the agent last became free; routing prefers the
	// longest idle.
	IdleSince time.Time `json:"idle_since,omitzero"`
	// Call is the call ringing or connected, if any.
	Call string `json:"call,omitempty"`
}

// SignalType names a signaling message on GET /v1/rtc.
type SignalType string

// Signaling messages. "c>s" is client to server, "s>c" server to client.
const (
	SigHello     SignalType = "hello"     // s>c: connected; Agent is the agent's presence
	SigStatus    SignalType = "status"    // c>s: agent availability (Status); s>c: the new presence
	SigRing      SignalType = "ring"      // s>c: a call rings this agent (Call)
	SigRingEnd   SignalType = "ring_end"  // s>c: the ring stopped (answered elsewhere, timeout, abandoned)
	SigAnswer    SignalType = "answer"    // c>s: agent accepts the ringing call; s>c: SDP answer
	SigDecline   SignalType = "decline"   // c>s: agent declines the ringing call
	SigJoin      SignalType = "join"      // c>s: join CallID's media (caller, answering agent, supervisor)
	SigJoined    SignalType = "joined"    // s>c: joined; Call and ICE servers
	SigOffer     SignalType = "offer"     // c>s: SDP offer (first, renegotiation, ICE restart)
	SigCandidate SignalType = "candidate" // both: a trickled ICE candidate
	SigMute      SignalType = "mute"      // c>s: own mute state; s>c: the peer's
	SigHangUp    SignalType = "hangup"    // c>s: hang up; s>c: the call ended (Call)
	SigCall      SignalType = "call"      // s>c: the call changed (queue position, state)
	SigPeer      SignalType = "peer"      // s>c: the other party joined or left its media (Peer)
	SigError     SignalType = "error"     // s>c: a refused message (Code, Detail); the connection stays
	SigPing      SignalType = "ping"      // c>s: keep presence alive; answered with "pong"
	SigPong      SignalType = "pong"
)

// Signal is one signaling message, as JSON in one WebSocket text frame.
type Signal struct {
	Type   SignalType `json:"type"`
	CallID string     `json:"call_id,omitempty"`
	// SDP carries an offer (c>s) or an answer (s>c).
	SDP string `json:"sdp,omitempty"`
	// Candidate is a trickled candidate; an empty Candidate.Candidate
	// marks the end of candidates.
	Candidate *ICECandidate `json:"candidate,omitempty"`
	Status    AgentStatus   `json:"status,omitempty"`
	Agent     *Agent        `json:"agent,omitempty"`
	Call      *Call         `json:"call,omitempty"`
	Mute      *MuteState    `json:"mute,omitempty"`
	// Listen joins as a listen-only supervisor.
	Listen     bool        `json:"listen,omitempty"`
	ICEServers []ICEServer `json:"ice_servers,omitempty"`
	Peer       string      `json:"peer,omitempty"` // "joined" | "left" | "reconnecting"
	Code       string      `json:"code,omitempty"`
	Detail     string      `json:"detail,omitempty"`
}

// ICECandidate is RTCIceCandidateInit.
type ICECandidate struct {
	Candidate        string  `json:"candidate"`
	SDPMid           *string `json:"sdpMid,omitempty"`
	SDPMLineIndex    *uint16 `json:"sdpMLineIndex,omitempty"`
	UsernameFragment *string `json:"usernameFragment,omitempty"`
}

// MuteState is what a party sends: true means muted.
type MuteState struct {
	Audio bool `json:"audio"`
	Video bool `json:"video"`
}

// DataChannelLabel is the label of the data channel the gateway relays
// between the app and the console (remote diagnostics).
const DataChannelLabel = "diagnostics"
