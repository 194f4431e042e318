package media

import (
	"context"
	"errors"
	"io"
	"syscall"
)

// Blobs is where photo bytes live. Keys are built by this package only
// (content hashes and random IDs), never from a client-supplied name.
//
// Guarantees every implementation gives:
//   - Create/Commit is atomic: nothing is visible under the key until
//     Commit returns nil, and an aborted or failed write leaves nothing
//     behind (no partial photo after a crash, an abort or a full disk).
//   - Append is durable: the bytes it reports written survive a crash.
//   - A full store is reported with an error that errors.Is matches
//     against syscall.ENOSPC, so the caller can answer 507.
type Blobs interface {
	// Create starts writing key. The caller must Commit or Abort.
	Create(ctx context.Context, key string) (Writer, error)
	// Append writes r to the resumable object key from offset on: what
	// lay past offset is discarded first, and an offset past the end is
	// ErrOffsetMismatch. It returns how many bytes of r are durably
	// stored, also when r fails midway (a dropped connection keeps what
	// arrived: that is what makes an upload resumable).
	Append(ctx context.Context, key string, offset int64, r io.Reader) (int64, error)
	// Open returns key's bytes or ErrNotFound.
	Open(ctx context.Context, key string) (Blob, error)
	// Delete removes key; an absent key is not an error.
	Delete(ctx context.Context, key string) error
}

// Writer is an object being written; Commit publishes it atomically.
type Writer interface {
	io.Writer
	// Commit makes the bytes durable and visible under the key.
	Commit() error
	// Abort discards the bytes; after Commit it does nothing.
	Abort() error
}

// Blob is a stored object, readable at random (Range requests, decoders
// that re-read the header).
type Blob interface {
	io.ReadSeekCloser
	io.ReaderAt
	Size() int64
}

// noSpace maps a full disk (or quota) onto ErrNoSpace, keeping the cause.
func noSpace(err error) error {
	if err != nil && (errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT)) && !errors.Is(err, ErrNoSpace) {
		return errors.Join(ErrNoSpace, err)
	}
	return err
}
