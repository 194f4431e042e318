package media

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/switchboard/switchboard/api"
	"github.com/switchboard/switchboard/auth"
	"github.com/switchboard/switchboard/state"
	"github.com/switchboard/switchboard/ticket"
)

// photoRecord is a photo on the state seam.
type photoRecord struct {
	api.Photo
	CustomerID string `json:"customer_id"`
	// Sum is the SHA-256 of the uploaded bytes: the blobs' name.
	Sum string `json:"sum"`
}

// blobRecord describes the processed blobs of one distinct upload, shared
// by every photo with the same bytes.
type blobRecord struct {
	ContentType string `json:"ct"`
	Width       int    `json:"w"`
	Height      int    `json:"h"`
	Bytes       int64  `json:"bytes"`
	Thumb       bool   `json:"thumb"`
}

// maxFilename bounds the display name kept with a photo.
const maxFilename = 255

// CleanFilename makes a client's file name safe to show: the last path
// element only, no control characters or NULs, valid UTF-8, at most 255
// bytes. It is for display; no name is ever used as a path.
func CleanFilename(name string) string {
	if i := strings.LastIndexAny(name, `/\`); i >= 0 {
		name = name[i+1:]
	}
	name = strings.ToValidUTF8(name, "")
	name = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || r == utf8.RuneError {
			return -1
		}
		return r
	}, name)
	name = strings.TrimSpace(name)
	if name == "." || name == ".." {
		name = ""
	}
	for len(name) > maxFilename {
		_, size := utf8.DecodeLastRuneInString(name)
		name = name[:len(name)-size]
	}
	return name
}

// Ingest stores the photo read from r on ticketID for v: the multipart
// path. The ticket is checked before a byte is read; the bytes are
// streamed to a spool blob (never held whole in memory while they
// arrive), bounded by MaxBytes, then processed in a worker slot.
func (s *Service) Ingest(ctx context.Context, v ticket.Viewer, ticketID, filename string, r io.Reader) (api.Photo, error) {
	if _, err := s.tickets.Get(ctx, v, ticketID); err != nil {
		return api.Photo{}, err
	}
	key := spoolKey(randomID())
	defer s.blobs.Delete(context.WithoutCancel(ctx), key)
	n, err := s.blobs.Append(ctx, key, 0, io.LimitReader(r, s.cfg.MaxBytes+1))
	if err != nil {
		return api.Photo{}, err
	}
	if n > s.cfg.MaxBytes {
		return api.Photo{}, fmt.Errorf("%w: more than %d bytes", ErrTooLarge, s.cfg.MaxBytes)
	}
	return s.store(ctx, v, ticketID, filename, key)
}

// store turns the upload in blob key into a photo on ticketID: dedupe by
// content hash, process (once per distinct upload), store the blobs
// atomically, record the photo and append photo_added.
func (s *Service) store(ctx context.Context, v ticket.Viewer, ticketID, filename, key string) (api.Photo, error) {
	t, err := s.tickets.Get(ctx, v, ticketID)
	if err != nil {
		return api.Photo{}, err
	}
	select {
	case s.slots <- struct{}{}:
	case <-ctx.Done():
		return api.Photo{}, ctx.Err()
	}
	defer func() { <-s.slots }()

	raw, err := s.readAll(ctx, key)
	if err != nil {
		return api.Photo{}, err
	}
	h := sha256.Sum256(raw)
	sum := hex.EncodeToString(h[:])

	if id, err := s.st.Get(ctx, stDup(ticketID, sum)); err == nil {
		p, err := s.record(ctx, string(id))
		if err == nil {
			p.Duplicate = true
			return p.Photo, nil
		}
	}
	br, err := s.blobsFor(ctx, sum, raw)
	if err != nil {
		return api.Photo{}, err
	}
	raw = nil

	rec := photoRecord{
		Photo: api.Photo{ID: randomID(), TicketID: ticketID, ContentType: br.ContentType, Width: br.Width, Height: br.Height,
			Bytes: br.Bytes, Thumbnail: br.Thumb, UploadedBy: v.ID, Filename: CleanFilename(filename), CreatedAt: s.now().UTC()},
		CustomerID: t.CustomerID, Sum: sum,
	}
	won, err := s.st.SetNX(ctx, stDup(ticketID, sum), []byte(rec.ID), 0)
	if err != nil {
		return api.Photo{}, err
	}
	if !won {
		// The same bytes raced in on another request: theirs stands.
		id, err := s.st.Get(ctx, stDup(ticketID, sum))
		if err != nil {
			return api.Photo{}, err
		}
		p, err := s.record(ctx, string(id))
		if err != nil {
			return api.Photo{}, err
		}
		p.Duplicate = true
		return p.Photo, nil
	}
	data, _ := json.Marshal(rec)
	if err := s.st.Set(ctx, stPhoto(rec.ID), data, 0); err != nil {
		_ = s.st.Delete(context.WithoutCancel(ctx), stDup(ticketID, sum))
		return api.Photo{}, err
	}
	payload, _ := json.Marshal(api.PhotoAddedPayload{PhotoID: rec.ID, ContentType: rec.ContentType, Width: rec.Width, Height: rec.Height, Bytes: rec.Bytes})
	if _, err := s.tickets.Append(ctx, api.Event{TicketID: ticketID, Type: api.EventPhotoAdded,
		Actor: api.Actor{ID: v.ID, Role: string(v.Role)}, Channel: channelOf(v), Payload: payload}); err != nil {
		// Without its event nobody would see the photo: undo, so the
		// client's retry stores it again.
		bg := context.WithoutCancel(ctx)
		_ = s.st.Delete(bg, stDup(ticketID, sum))
		_ = s.st.Delete(bg, stPhoto(rec.ID))
		return api.Photo{}, err
	}
	s.log.Info("photo stored", "photo", rec.ID, "ticket", ticketID, "bytes", rec.Bytes, "type", rec.ContentType)
	return rec.Photo, nil
}

func channelOf(v ticket.Viewer) string {
	switch v.Role {
	case auth.RoleCustomer:
		return api.ChannelApp
	case auth.RoleTechnician:
		return api.ChannelField
	case auth.RoleAgent, auth.RoleAdmin:
		return api.ChannelConsole
	}
	return api.ChannelSystem
}

// readAll reads an upload blob whole, for decoding; its size was bounded
// by MaxBytes as it arrived.
func (s *Service) readAll(ctx context.Context, key string) ([]byte, error) {
	b, err := s.blobs.Open(ctx, key)
	if err != nil {
		return nil, err
	}
	defer b.Close()
	if b.Size() == 0 {
		return nil, ErrEmpty
	}
	if b.Size() > s.cfg.MaxBytes {
		return nil, fmt.Errorf("%w: more than %d bytes", ErrTooLarge, s.cfg.MaxBytes)
	}
	raw := make([]byte, b.Size())
	if _, err := io.ReadFull(b, raw); err != nil {
		return nil, err
	}
	return raw, nil
}

// blobsFor returns the processed blobs of the upload with digest sum,
// processing and storing them if this is the first time these bytes came.
func (s *Service) blobsFor(ctx context.Context, sum string, raw []byte) (blobRecord, error) {
	var br blobRecord
	if data, err := s.st.Get(ctx, stBlob(sum)); err == nil && json.Unmarshal(data, &br) == nil {
		return br, nil
	} else if err != nil && !errors.Is(err, state.ErrNotFound) {
		return br, err
	}
	p, err := Process(raw, Limits{MaxPixels: s.cfg.MaxPixels, ThumbSize: s.cfg.ThumbSize})
	if err != nil {
		return br, err
	}
	// Thumbnail first: the blob record, written last, is what says both
	// exist. A crash in between leaves an unreferenced blob, never a
	// record without its bytes.
	if p.Thumb != nil {
		if err := s.put(ctx, blobKey(keyThumbPrefix, sum), p.Thumb); err != nil {
			return br, err
		}
	}
	if err := s.put(ctx, blobKey(keyPhotoPrefix, sum), p.Full); err != nil {
		if p.Thumb != nil {
			_ = s.blobs.Delete(context.WithoutCancel(ctx), blobKey(keyThumbPrefix, sum))
		}
		return br, err
	}
	br = blobRecord{ContentType: string(p.Format), Width: p.Width, Height: p.Height, Bytes: int64(len(p.Full)), Thumb: p.Thumb != nil}
	data, _ := json.Marshal(br)
	if err := s.st.Set(ctx, stBlob(sum), data, 0); err != nil {
		return br, err
	}
	return br, nil
}

// put writes one blob atomically; on any failure what it wrote is gone.
func (s *Service) put(ctx context.Context, key string, data []byte) error {
	w, err := s.blobs.Create(ctx, key)
	if err != nil {
		return err
	}
	if _, err := w.Write(data); err != nil {
		_ = w.Abort()
		return err
	}
	return w.Commit()
}

func (s *Service) record(ctx context.Context, id string) (photoRecord, error) {
	var rec photoRecord
	data, err := s.st.Get(ctx, stPhoto(id))
	if errors.Is(err, state.ErrNotFound) {
		return rec, ErrNotFound
	}
	if err != nil {
		return rec, err
	}
	if err := json.Unmarshal(data, &rec); err != nil {
		return rec, err
	}
	return rec, nil
}

// maxPhotoID bounds a photo ID from a URL before it reaches the store.
const maxPhotoID = 64

// Photo returns photo id if v may see its ticket: the ticket's customer,
// its agents and the technician dispatched to it. Anyone else gets
// ErrNotFound, as for a photo that does not exist.
func (s *Service) Photo(ctx context.Context, v ticket.Viewer, id string) (api.Photo, error) {
	rec, err := s.visible(ctx, v, id)
	return rec.Photo, err
}

func (s *Service) visible(ctx context.Context, v ticket.Viewer, id string) (photoRecord, error) {
	if id == "" || len(id) > maxPhotoID {
		return photoRecord{}, ErrNotFound
	}
	rec, err := s.record(ctx, id)
	if err != nil {
		return rec, err
	}
	if _, err := s.tickets.Get(ctx, v, rec.TicketID); err != nil {
		if errors.Is(err, ticket.ErrNotFound) {
			return rec, ErrNotFound
		}
		return rec, err
	}
	return rec, nil
}

// Content is a photo's bytes, ready to serve.
type Content struct {
	Blob
	ContentType string
	// ETag is strong: a blob's bytes never change under its key.
	ETag string
}

// Open returns the bytes of photo id (or its thumbnail) for v.
func (s *Service) Open(ctx context.Context, v ticket.Viewer, id string, thumb bool) (*Content, error) {
	rec, err := s.visible(ctx, v, id)
	if err != nil {
		return nil, err
	}
	return s.open(ctx, rec, thumb)
}

// OpenSigned returns the bytes a valid signed URL names; the signature,
// checked here, stands in for the viewer.
func (s *Service) OpenSigned(ctx context.Context, id string, thumb bool, exp, sig string) (*Content, error) {
	if err := s.verify(ctx, id, thumb, exp, sig); err != nil {
		return nil, err
	}
	rec, err := s.record(ctx, id)
	if err != nil {
		return nil, err
	}
	return s.open(ctx, rec, thumb)
}

func (s *Service) open(ctx context.Context, rec photoRecord, thumb bool) (*Content, error) {
	key, ct, tag := blobKey(keyPhotoPrefix, rec.Sum), rec.ContentType, `"`+rec.Sum[:32]+`-f"`
	if thumb {
		if !rec.Thumbnail {
			return nil, ErrNotFound
		}
		key, ct, tag = blobKey(keyThumbPrefix, rec.Sum), string(JPEG), `"`+rec.Sum[:32]+`-t"`
	}
	b, err := s.blobs.Open(ctx, key)
	if err != nil {
		return nil, err
	}
	return &Content{Blob: b, ContentType: ct, ETag: tag}, nil
}
