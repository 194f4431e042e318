package mobilecall

import "errors"

var (
	// ErrClosed is returned by every method of a Call after Close.
	ErrClosed = errors.New("switchboard: the call was closed")
	// ErrNoVideo is returned by WriteVideo and RequestKeyframe on an
	// audio-only call.
	ErrNoVideo = errors.New("switchboard: this call has no video")
	// ErrFrame is returned for an empty frame or a duration outside 1 to
	// 1000 ms.
	ErrFrame = errors.New("switchboard: a frame needs bytes and a duration of 1 to 1000 ms")
	// ErrDataSize is returned by SendData for a message over 16 KiB.
	ErrDataSize = errors.New("switchboard: a data channel message is at most 16 KiB")
)
