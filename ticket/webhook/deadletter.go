package webhook

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/switchboard/switchboard/api"
	"github.com/switchboard/switchboard/state"
)

// Dead-letter listing bounds.
const (
	DefaultDeadLetterPage = 50
	MaxDeadLetterPage     = 200
	// replayLease bounds how long one replay holds its dead letter against
	// a concurrent replay of the same one: three store writes.
	replayLease = 30 * time.Second
)

// deadRecord is a dead letter as stored: what the admin sees plus the job
// to replay.
type deadRecord struct {
	api.DeadLetter
	Job job `json:"job"`
}

// bury turns a job that failed its last attempt into a dead letter.
func (s *Service) bury(ctx context.Context, j job, status int, cause error) error {
	msg := cause.Error()
	if len(msg) > maxErrorLen {
		msg = msg[:maxErrorLen]
	}
	rec := deadRecord{
		DeadLetter: api.DeadLetter{
			ID:         newID("dl_"),
			WebhookID:  j.Sub,
			MessageID:  j.ID,
			EventID:    j.EventID,
			EventType:  j.EventType,
			Attempts:   j.Attempts,
			LastStatus: status,
			LastError:  msg,
			FailedAt:   s.now().UTC(),
		},
		Job: j,
	}
	raw, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	if err := s.st.Set(ctx, keyDead(rec.ID), raw, 0); err != nil {
		return err
	}
	return s.st.ZAdd(ctx, ixDead, rec.ID, float64(rec.FailedAt.UnixMilli()))
}

// DeadLetters lists dead letters, newest first. limit 0 means
// DefaultDeadLetterPage; cursor is a previous page's NextCursor. Pages
// are offsets: a replay during paging may shift one entry across a page
// boundary, which an admin view can live with.
func (s *Service) DeadLetters(ctx context.Context, limit int, cursor string) (api.DeadLetterList, error) {
	if limit <= 0 {
		limit = DefaultDeadLetterPage
	}
	if limit > MaxDeadLetterPage {
		return api.DeadLetterList{}, fmt.Errorf("%w: limit: at most %d", ErrInvalid, MaxDeadLetterPage)
	}
	offset := 0
	if cursor != "" {
		n, err := strconv.Atoi(cursor)
		if err != nil || n < 0 || n > math.MaxInt32 {
			return api.DeadLetterList{}, fmt.Errorf("%w: cursor: not one this server gave out", ErrInvalid)
		}
		offset = n
	}
	ms, err := s.st.ZRange(ctx, ixDead, state.RangeOptions{Min: math.Inf(-1), Max: math.Inf(1), Reverse: true, Offset: offset, Limit: limit + 1})
	if err != nil {
		return api.DeadLetterList{}, err
	}
	out := api.DeadLetterList{DeadLetters: make([]api.DeadLetter, 0, min(limit, len(ms)))}
	if len(ms) > limit {
		ms = ms[:limit]
		out.NextCursor = strconv.Itoa(offset + limit)
	}
	for _, m := range ms {
		rec, err := s.deadLetter(ctx, m.Member)
		if errors.Is(err, ErrNotFound) {
			continue // replayed between the two reads
		}
		if err != nil {
			return api.DeadLetterList{}, err
		}
		out.DeadLetters = append(out.DeadLetters, rec.DeadLetter)
	}
	return out, nil
}

func (s *Service) deadLetter(ctx context.Context, id string) (*deadRecord, error) {
	if id == "" || len(id) > 64 {
		return nil, ErrNotFound
	}
	raw, err := s.st.Get(ctx, keyDead(id))
	if errors.Is(err, state.ErrNotFound) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	var rec deadRecord
	if err := json.Unmarshal(raw, &rec); err != nil {
		return nil, fmt.Errorf("dead letter %s: corrupt record: %w", id, err)
	}
	return &rec, nil
}

// Replay puts a dead letter back on the jobs stream with its attempts
// reset and removes it from the list; it returns the letter replayed. The
// delivery keeps its webhook-id, so a receiver that did get it can drop
// the repeat. If it fails every attempt again it comes back as a new dead
// letter.
func (s *Service) Replay(ctx context.Context, id string) (api.DeadLetter, error) {
	rec, err := s.deadLetter(ctx, id)
	if err != nil {
		return api.DeadLetter{}, err
	}
	if _, err := s.subscription(ctx, rec.WebhookID); errors.Is(err, ErrNotFound) {
		return api.DeadLetter{}, fmt.Errorf("%w: the webhook of this dead letter was deleted", ErrInvalid)
	} else if err != nil {
		return api.DeadLetter{}, err
	}
	won, err := s.st.SetNX(ctx, keyReplay(id), []byte("1"), replayLease)
	if err != nil {
		return api.DeadLetter{}, err
	}
	if !won {
		return api.DeadLetter{}, fmt.Errorf("%w: this dead letter is being replayed", ErrConflict)
	}
	defer func() { _ = s.st.Delete(context.WithoutCancel(ctx), keyReplay(id)) }()
	// Read again under the lease: a replay that finished just before we
	// took it has removed the record.
	if rec, err = s.deadLetter(ctx, id); err != nil {
		return api.DeadLetter{}, err
	}
	j := rec.Job
	j.Attempts = 0
	raw, err := json.Marshal(j)
	if err != nil {
		return api.DeadLetter{}, err
	}
	// Enqueue first: a crash after it leaves the letter listed, and a
	// second replay is a duplicate delivery, not a lost one.
	if _, err := s.st.XAdd(ctx, StreamJobs, raw); err != nil {
		return api.DeadLetter{}, err
	}
	if _, err := s.st.ZRem(ctx, ixDead, id); err != nil {
		return api.DeadLetter{}, err
	}
	if err := s.st.Delete(ctx, keyDead(id)); err != nil {
		return api.DeadLetter{}, err
	}
	s.log.Info("webhook dead letter replayed", "dead_letter", id, "webhook", rec.WebhookID, "message", j.ID)
	return rec.DeadLetter, nil
}
