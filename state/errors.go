package state

import "errors"

var (
	// ErrNotFound is returned when a key, member or entry does not exist
	// (or has expired). Backends translate their own "nil" replies to it.
	ErrNotFound = errors.New("state: not found")

	// ErrInvalidCoordinates is returned by geo operations for a latitude
	// outside ±MaxLatitude, a longitude outside ±180, or a NaN/Inf value.
	// Both backends refuse the same inputs, so modes never disagree.
	ErrInvalidCoordinates = errors.New("state: invalid coordinates")

	// ErrInvalidArgument is returned for arguments no backend can honour:
	// an empty key, a negative count, a malformed stream ID.
	ErrInvalidArgument = errors.New("state: invalid argument")

	// ErrClosed is returned by every method after Close.
	ErrClosed = errors.New("state: closed")
)
