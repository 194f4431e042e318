package location

import (
	"errors"
	"fmt"
	"time"
)

var (
	// ErrInvalid: the request is malformed or out of bounds (a latitude of
	// 91, a fix from the future, a radius of a million km). The wrapped
	// message names the field and the rule and is safe to show.
	ErrInvalid = errors.New("location: invalid")
	// ErrNotFound: no such technician, store, offer or dispatch, or the
	// caller may not see it (the two are the same on purpose, so a probe
	// learns nothing).
	ErrNotFound = errors.New("location: not found")
	// ErrForbidden: the caller is known but may not do this (a technician
	// posting positions for someone else).
	ErrForbidden = errors.New("location: forbidden")
	// ErrRateLimited: a technician sent more fixes than FixesPerMinute
	// allows in the current minute. The error is a *RateLimitError, which
	// says when to try again.
	ErrRateLimited = errors.New("location: rate limited")
	// ErrConflict: the object is not in a state that allows this (an offer
	// that already expired, a dispatch already under way), or a concurrent
	// change won.
	ErrConflict = errors.New("location: conflict")
	// ErrNoTechnician: no on-duty technician with the skills is within the
	// radius, or all of them are booked.
	ErrNoTechnician = errors.New("location: no technician available")
)

// RateLimitError refuses a batch of fixes over the technician's limit.
// It matches ErrRateLimited.
type RateLimitError struct {
	Limit int // fixes a window
	// RetryAfter is how long until the window ends and the count starts
	// afresh.
	RetryAfter time.Duration
}

func (e *RateLimitError) Error() string {
	return fmt.Sprintf("%v: at most %d fixes a minute", ErrRateLimited, e.Limit)
}

func (e *RateLimitError) Unwrap() error { return ErrRateLimited }
