package webhook

import "errors"

var (
	// ErrNotFound: no such subscription or dead letter.
	ErrNotFound = errors.New("webhook: not found")
	// ErrInvalid: the request is malformed; the wrapped message says which
	// field and why, safe to show the caller.
	ErrInvalid = errors.New("webhook: invalid")
	// ErrForbiddenTarget: the URL points at a loopback, private,
	// link-local or otherwise internal address and the server does not
	// allow those (AllowPrivate). Returned at creation and, wrapped in the
	// delivery error, when a name resolves to such an address at dial time.
	ErrForbiddenTarget = errors.New("webhook: target address not allowed")
	// ErrConflict: someone else is replaying the same dead letter.
	ErrConflict = errors.New("webhook: conflict")
)
