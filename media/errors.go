package media

import "errors"

// Errors of the media domain. Their messages are written to be shown to
// the caller (the gateway strips the "media: " prefix); wrapped errors add
// the field and the rule.
var (
	// ErrNotFound: no such photo or upload, or the caller may not see it.
	// The two are the same so a probe cannot learn that another
	// customer's photo exists.
	ErrNotFound = errors.New("media: not found")
	// ErrInvalid: a malformed request (bad tus header, missing ticket_id).
	ErrInvalid = errors.New("media: invalid")
	// ErrEmpty: the upload has no bytes.
	ErrEmpty = errors.New("media: empty")
	// ErrUnsupported: the bytes are not JPEG, PNG, WebP or HEIC, whatever
	// the name or Content-Type says.
	ErrUnsupported = errors.New("media: unsupported type")
	// ErrTooLarge: more bytes than the limit, declared or sent.
	ErrTooLarge = errors.New("media: too large")
	// ErrTooManyPixels: the header declares more pixels than the limit
	// (a decompression bomb); refused before decoding.
	ErrTooManyPixels = errors.New("media: too many pixels")
	// ErrCorrupt: the bytes claim a supported format but do not decode
	// (truncated, damaged).
	ErrCorrupt = errors.New("media: corrupt image")
	// ErrOffsetMismatch: a tus PATCH whose Upload-Offset is not where the
	// upload stands.
	ErrOffsetMismatch = errors.New("media: offset mismatch")
	// ErrChecksumMismatch: a tus PATCH whose body does not match its
	// Upload-Checksum; its bytes were not kept.
	ErrChecksumMismatch = errors.New("media: checksum mismatch")
	// ErrLocked: another PATCH on the same upload is in progress.
	ErrLocked = errors.New("media: upload locked")
	// ErrNoSpace: the blob store is full; what this request wrote was
	// removed.
	ErrNoSpace = errors.New("media: insufficient storage")
	// ErrBadSignature: a signed URL that is forged, altered or expired.
	ErrBadSignature = errors.New("media: bad signature")
)
