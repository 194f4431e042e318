package ticket

import "errors"

var (
	// ErrNotFound: no such ticket or customer, or the viewer may not see
	// it. The two are deliberately the same, so a probe cannot learn that
	// someone else's ticket exists.
	ErrNotFound = errors.New("ticket: not found")
	// ErrInvalid: the request or event is malformed; the wrapped message
	// says which field and why, safe to show the caller.
	ErrInvalid = errors.New("ticket: invalid")
	// ErrForbidden: the viewer sees the ticket but may not do this to it
	// (a customer posting a note, a technician changing the queue).
	ErrForbidden = errors.New("ticket: forbidden")
	// ErrConflict: a concurrent change won; retry.
	ErrConflict = errors.New("ticket: conflict")
	// ErrBadSignature: an ingest request's signature or timestamp does not
	// verify.
	ErrBadSignature = errors.New("ticket: bad signature")
	// ErrReplayed: an ingest request's signature was already used.
	ErrReplayed = errors.New("ticket: replayed request")
)
