package rtc

import "errors"

// Errors returned by the rtc package. Their text is written to be shown to
// clients: it names the rule, never internals.
var (
	// ErrNotFound: no such call, or not one the caller may touch (someone
	// else's call is "not found", never "forbidden").
	ErrNotFound = errors.New("rtc: not found: no such call")
	// ErrInvalid: a request or signaling message breaks a rule.
	ErrInvalid = errors.New("rtc: invalid")
	// ErrForbidden: the caller's role may not do this at all.
	ErrForbidden = errors.New("rtc: forbidden")
	// ErrConflict: the call is not in a state that allows this (answering
	// a call that is no longer ringing you, abandoning an ended call).
	ErrConflict = errors.New("rtc: conflict")
	// ErrBadSDP: an SDP offer was refused before it reached pion
	// (malformed, too large, too many m-lines, no DTLS fingerprint).
	ErrBadSDP = errors.New("rtc: invalid: bad sdp")
	// ErrQueueFull: the queue holds MaxQueue calls already.
	ErrQueueFull = errors.New("rtc: unavailable: the call queue is full; try again later")
	// ErrNoMedia: the node that hosts the call's media is not this one and
	// cannot be reached, or the relay is not running.
	ErrNoMedia = errors.New("rtc: unavailable: the call's media is not reachable")
)

// ErrRateLimited: a signaling connection sent messages faster than
// SignalRate allows; the gateway closes it.
var ErrRateLimited = errors.New("rtc: rate limited: too many signaling messages")
