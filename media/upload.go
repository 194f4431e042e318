package media

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/switchboard/switchboard/state"
	"github.com/switchboard/switchboard/ticket"
)

// Upload is a tus 1.0 resumable upload. Its record lives on the state
// seam, so any node answers HEAD for it; its bytes are in the blob store
// under upload/<id> (see Disk for the multi-node caveat).
type Upload struct {
	ID       string    `json:"id"`
	Owner    string    `json:"owner"`
	TicketID string    `json:"ticket_id"`
	Filename string    `json:"filename,omitempty"`
	Length   int64     `json:"length"`
	Offset   int64     `json:"offset"`
	Metadata string    `json:"metadata,omitempty"` // the Upload-Metadata header, echoed on HEAD
	Expires  time.Time `json:"expires"`
	// PhotoID is set once the last byte arrived and the photo is stored.
	PhotoID string `json:"photo_id,omitempty"`
}

// lockTTL bounds how long a PATCH holds its upload: the gateway's longest
// upload request (its read deadline) plus margin, so a node that dies
// mid-PATCH frees the upload soon after.
const lockTTL = 11 * time.Minute

// CreateUpload starts a tus upload of length bytes for v, attached to the
// ticket named in metadata (ticket_id), which v must see. A length over
// MaxBytes is ErrTooLarge before anything is stored.
func (s *Service) CreateUpload(ctx context.Context, v ticket.Viewer, length int64, metadata string) (Upload, error) {
	if length < 0 {
		return Upload{}, fmt.Errorf("%w: Upload-Length must be a non-negative integer", ErrInvalid)
	}
	if length == 0 {
		return Upload{}, ErrEmpty
	}
	if length > s.cfg.MaxBytes {
		return Upload{}, fmt.Errorf("%w: Upload-Length is over %d bytes", ErrTooLarge, s.cfg.MaxBytes)
	}
	meta, err := ParseMetadata(metadata)
	if err != nil {
		return Upload{}, err
	}
	tid := meta["ticket_id"]
	if tid == "" {
		return Upload{}, fmt.Errorf("%w: Upload-Metadata must name the ticket (ticket_id)", ErrInvalid)
	}
	if _, err := s.tickets.Get(ctx, v, tid); err != nil {
		return Upload{}, err
	}
	u := Upload{ID: randomID(), Owner: v.ID, TicketID: tid, Filename: CleanFilename(meta["filename"]),
		Length: length, Metadata: metadata, Expires: s.now().Add(s.cfg.UploadTTL).UTC()}
	return u, s.saveUpload(ctx, u)
}

func (s *Service) saveUpload(ctx context.Context, u Upload) error {
	data, _ := json.Marshal(u)
	return s.st.Set(ctx, stUpload(u.ID), data, s.cfg.UploadTTL)
}

// Upload returns upload id if v created it; anyone else's is ErrNotFound.
func (s *Service) Upload(ctx context.Context, v ticket.Viewer, id string) (Upload, error) {
	var u Upload
	if id == "" || len(id) > maxPhotoID {
		return u, ErrNotFound
	}
	data, err := s.st.Get(ctx, stUpload(id))
	if errors.Is(err, state.ErrNotFound) {
		return u, ErrNotFound
	}
	if err != nil {
		return u, err
	}
	if err := json.Unmarshal(data, &u); err != nil {
		return u, err
	}
	if u.Owner != v.ID {
		return Upload{}, ErrNotFound
	}
	return u, nil
}

// Terminate deletes an upload and its bytes (tus termination).
func (s *Service) Terminate(ctx context.Context, v ticket.Viewer, id string) error {
	if _, err := s.Upload(ctx, v, id); err != nil {
		return err
	}
	return s.drop(ctx, id)
}

func (s *Service) drop(ctx context.Context, id string) error {
	ctx = context.WithoutCancel(ctx)
	if err := s.blobs.Delete(ctx, uploadKey(id)); err != nil {
		return err
	}
	return s.st.Delete(ctx, stUpload(id))
}

// Patch appends the body r of a tus PATCH at offset. declared is the
// body's Content-Length (-1 if unknown); sum, if not nil, is its
// Upload-Checksum. The bytes go straight to the blob store.
//
//   - offset other than the upload's: ErrOffsetMismatch, nothing read.
//   - a declared body past Upload-Length: ErrTooLarge, nothing read.
//   - a body that runs past Upload-Length: ErrTooLarge, and the whole
//     upload is dropped (the client broke the protocol).
//   - a checksum mismatch: ErrChecksumMismatch, the bytes are discarded.
//   - a body cut short (the connection dropped) without a checksum: the
//     bytes that arrived are kept and the offset moves, so the client
//     resumes from there.
//   - the first bytes are not an accepted image: ErrUnsupported at once,
//     and the upload is dropped.
//
// When the last byte arrives the photo is processed and stored, and the
// returned Upload carries its PhotoID; processing errors drop the upload.
func (s *Service) Patch(ctx context.Context, v ticket.Viewer, id string, offset, declared int64, sum *Checksum, r io.Reader) (Upload, error) {
	u, err := s.Upload(ctx, v, id)
	if err != nil {
		return u, err
	}
	if u.PhotoID != "" && offset == u.Length {
		return u, nil // a retry of the PATCH that completed it
	}
	if offset != u.Offset {
		return u, fmt.Errorf("%w: the upload is at %d", ErrOffsetMismatch, u.Offset)
	}
	if declared >= 0 && offset+declared > u.Length {
		return u, fmt.Errorf("%w: the body runs past Upload-Length", ErrTooLarge)
	}
	lock := []byte(randomID())
	won, err := s.st.SetNX(ctx, stUploadLock(id), lock, lockTTL)
	if err != nil {
		return u, err
	}
	if !won {
		return u, ErrLocked
	}
	defer s.st.CompareAndDelete(context.WithoutCancel(ctx), stUploadLock(id), lock)
	if u, err = s.Upload(ctx, v, id); err != nil { // it may have moved before we locked
		return u, err
	}
	if offset != u.Offset {
		return u, fmt.Errorf("%w: the upload is at %d", ErrOffsetMismatch, u.Offset)
	}

	remaining := u.Length - offset
	body := io.LimitReader(r, remaining+1)
	if offset == 0 {
		br := bufio.NewReaderSize(body, 4096)
		if head, _ := br.Peek(int(min(sniffLen, remaining))); len(head) >= 12 || int64(len(head)) == remaining {
			if _, err := Sniff(head); err != nil {
				_ = s.drop(ctx, id)
				return u, err
			}
		}
		body = br
	}
	if sum != nil {
		body = io.TeeReader(body, sum.hash)
	}
	n, err := s.blobs.Append(ctx, uploadKey(id), offset, body)
	switch {
	case n > remaining:
		_ = s.drop(ctx, id)
		return u, fmt.Errorf("%w: the body ran past Upload-Length", ErrTooLarge)
	case errors.Is(err, ErrNoSpace):
		return u, err
	case sum != nil && err != nil:
		return u, err // a checksum can't vouch for part of a body
	case sum != nil && !bytes.Equal(sum.hash.Sum(nil), sum.sum):
		return u, ErrChecksumMismatch
	}
	u.Offset += n
	u.Expires = s.now().Add(s.cfg.UploadTTL).UTC()
	if serr := s.saveUpload(context.WithoutCancel(ctx), u); serr != nil {
		return u, serr
	}
	if err != nil {
		return u, err
	}
	if u.Offset < u.Length {
		return u, nil
	}
	p, err := s.store(ctx, v, u.TicketID, u.Filename, uploadKey(id))
	if err != nil {
		if !errors.Is(err, ErrNoSpace) && !errors.Is(err, context.Canceled) {
			_ = s.drop(ctx, id)
		}
		return u, err
	}
	u.PhotoID = p.ID
	_ = s.blobs.Delete(context.WithoutCancel(ctx), uploadKey(id))
	return u, s.saveUpload(context.WithoutCancel(ctx), u)
}
