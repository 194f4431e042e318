package sdk

import (
	"errors"
	"fmt"

	"github.com/switchboard/switchboard/api"
)

// ErrSignedOut means the refresh token is gone, expired, revoked or was
// reused: the app must sign the user in again.
var ErrSignedOut = errors.New("switchboard: signed out")

// Error is a refusal from the gateway, carrying its problem document.
type Error struct {
	api.Problem
}

func (e *Error) Error() string { return "switchboard: " + e.Problem.Error() }

// Code returns the problem code of err ("" if err is not a gateway
// refusal), so callers can switch on api.Code* values.
func Code(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return ""
}

// StatusCode returns the HTTP status of a gateway refusal, or 0.
func StatusCode(err error) int {
	var e *Error
	if errors.As(err, &e) {
		return e.Status
	}
	return 0
}

// errUnexpected is what a non-problem error answer becomes, e.g. an HTML
// page from a captive portal or proxy in front of the gateway.
func errUnexpected(status int, contentType string) error {
	return &Error{Problem: api.Problem{
		Status: status,
		Title:  "unexpected response",
		Detail: fmt.Sprintf("status %d with content type %q", status, contentType),
		Code:   "unexpected-response",
	}}
}

// transportError is a request that got no complete answer: the network
// failed, the connection dropped, or the body was cut short. The request
// may or may not have been processed, so only an idempotent request (one
// with an Idempotency-Key) is safe to send again.
type transportError struct{ err error }

func (e *transportError) Error() string { return "switchboard: " + e.err.Error() }
func (e *transportError) Unwrap() error { return e.err }

// ErrFeedTooFarBehind ends Follow when the gateway cannot replay all that
// happened since the last event delivered (close code 4010): reload the
// timeline (Ticket, CustomerTimeline) and follow again from its last event.
var ErrFeedTooFarBehind = errors.New("switchboard: too far behind to resume the live feed: reload the timeline, then follow from its last event")
