package push

import "errors"

var (
	// ErrNotFound: no such device (for this user) or record.
	ErrNotFound = errors.New("push: not found")
	// ErrInvalid: the request is malformed; the wrapped message says which
	// field and why, safe to show the caller (it never echoes a token).
	ErrInvalid = errors.New("push: invalid")
	// ErrTooManyDevices: the user already has MaxDevices registered;
	// delete one first.
	ErrTooManyDevices = errors.New("push: too many devices")
	// ErrConflict: a concurrent change to the same user's devices kept
	// winning; retry.
	ErrConflict = errors.New("push: conflict")
	// ErrNoSender: the platform's push service is not configured on this
	// server (no FCM credentials, no VAPID keys).
	ErrNoSender = errors.New("push: no sender configured for this platform")
)
