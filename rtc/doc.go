// Package rtc is click-to-call: the agent queue and routing (longest-idle
// agent with the skill, ring with a timeout, move on), agent presence,
// signaling sessions, the WebRTC relay that carries each call's media
// through the gateway (pion: one PeerConnection per party, RTP forwarded
// between them, RTCP feedback relayed upstream, a data channel relayed for
// remote diagnostics, listen-only supervisors), and an embedded TURN server
// with time-limited REST-API credentials.
//
// State lives on the state seam, so presence and the queue hold across
// gateway nodes. A call's media is pinned to the node that placed it;
// signaling from a party connected to another node reaches that node
// through state pub/sub (LiveKit's pattern).
//
// rtc is plain Go: it never imports gateway or Fiber. Calls write their
// events (call_requested, call_started, call_ended, call_missed) through
// ticket.Service.Append, never into ticket's internals.
package rtc
