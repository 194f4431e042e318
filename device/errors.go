package device

import "errors"

// Errors are wrapped with %w and a message safe to show the caller (it
// names the field and the rule, never a secret or a code).
var (
	// ErrNotFound: no such appliance, or the caller may not see it. The two
	// are the same on purpose, so a probe cannot learn an appliance exists.
	ErrNotFound = errors.New("device: not found")
	// ErrInvalid: the request is malformed; the message says why.
	ErrInvalid = errors.New("device: invalid")
	// ErrBadCode: the pairing code is wrong for this serial.
	ErrBadCode = errors.New("device: wrong pairing code")
	// ErrCodeExpired: the pairing code was right a few minutes ago; the
	// appliance shows a new one.
	ErrCodeExpired = errors.New("device: pairing code expired")
	// ErrCodeUsed: the pairing code was already used once.
	ErrCodeUsed = errors.New("device: pairing code already used")
	// ErrLocked: too many wrong codes for this serial or from this user;
	// LockedError says for how long.
	ErrLocked = errors.New("device: too many pairing attempts")
	// ErrOwned: the appliance belongs to someone else; they must release
	// it, or the new owner must pair with a factory-reset code.
	ErrOwned = errors.New("device: appliance already has an owner")
	// ErrBadFrame: a diagnostic frame is malformed, badly signed, for
	// another appliance, or has a reading out of range. Nothing of its
	// batch was written.
	ErrBadFrame = errors.New("device: bad diagnostic frame")
	// ErrReplayed: every frame of the batch was already received.
	ErrReplayed = errors.New("device: frames already received")
	// ErrNoConsent: an agent asked for live diagnostics (or a command)
	// without the owner's grant.
	ErrNoConsent = errors.New("device: no consent from the owner")
	// ErrForbidden: the caller sees the appliance but may not do this.
	ErrForbidden = errors.New("device: forbidden")
	// ErrTooMany: a bound on pending work was reached (commands queued).
	ErrTooMany = errors.New("device: too many pending")
)

// LockedError is ErrLocked with the time until the next attempt.
type LockedError struct{ RetryAfterSeconds int }

func (e *LockedError) Error() string { return ErrLocked.Error() }

// Unwrap makes errors.Is(err, ErrLocked) hold.
func (e *LockedError) Unwrap() error { return ErrLocked }
