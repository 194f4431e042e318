package push

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"

	"github.com/switchboard/switchboard/api"
	"github.com/switchboard/switchboard/state"
)

// Feedback: what did not go out, visible to admins (two bounded lists)
// and on the ticket (a push_sent event per notification), never silently
// dropped.

const (
	ixFailures = "push:ix:failures"
	ixPruned   = "push:ix:pruned"
	// DefaultPage and MaxPage bound the admin lists' pages.
	DefaultPage = 50
	MaxPage     = 200
)

func keyFailure(id string) string { return "push:fail:" + id }
func keyPruned(id string) string  { return "push:pruned:" + id }

// bury records that n could not reach devices devices after its last
// attempt.
func (s *Service) bury(ctx context.Context, n *Notification, devices int) error {
	f := api.PushFailure{ID: newID("pf_"), NotificationID: n.ID, Kind: string(n.Kind), Recipient: n.Recipient,
		TicketID: n.TicketID, Devices: devices, Attempts: n.Attempts, LastError: clip(n.LastError, maxReason), FailedAt: s.now().UTC()}
	if err := s.addFeedback(ctx, ixFailures, keyFailure, f.ID, f); err != nil {
		return err
	}
	s.log.Warn("push dead letter", "notification", n.ID, "user", n.Recipient, "devices", devices, "attempts", n.Attempts, "reason", f.LastError)
	return nil
}

// recordPruned removes d from n's recipient and lists it as pruned.
func (s *Service) recordPruned(ctx context.Context, n *Notification, d *device, reason string) error {
	removed, err := s.prune(ctx, n.Recipient, d)
	if err != nil || !removed {
		return err // already gone (another notification pruned it): listed once
	}
	p := api.PrunedToken{Recipient: n.Recipient, InstallationID: d.InstallationID, Platform: d.Platform,
		TokenHint: hint(d.secret()), Reason: clip(reason, maxReason), NotificationID: n.ID, PrunedAt: s.now().UTC()}
	if err := s.addFeedback(ctx, ixPruned, keyPruned, newID("pt_"), p); err != nil {
		return err
	}
	s.log.Info("push device pruned", "user", n.Recipient, "installation", d.InstallationID, "reason", p.Reason)
	return nil
}

// addFeedback stores v under key(id), lists it by time, and drops the
// oldest entries beyond MaxFeedback.
func (s *Service) addFeedback(ctx context.Context, ix string, key func(string) string, id string, v any) error {
	raw, err := json.Marshal(v)
	if err != nil {
		return err
	}
	if err := s.st.Set(ctx, key(id), raw, 0); err != nil {
		return err
	}
	if err := s.st.ZAdd(ctx, ix, id, float64(s.now().UnixMilli())); err != nil {
		return err
	}
	n, err := s.st.ZCard(ctx, ix)
	if err != nil || n <= int64(s.cfg.MaxFeedback) {
		return err
	}
	old, err := s.st.ZPopMin(ctx, ix, int(n)-s.cfg.MaxFeedback)
	if err != nil {
		return err
	}
	for _, m := range old {
		if err := s.st.Delete(ctx, key(m.Member)); err != nil {
			return err
		}
	}
	return nil
}

// page reads one page of a feedback list, newest first.
func page[T any](ctx context.Context, s *Service, ix string, key func(string) string, limit int, cursor string) ([]T, string, error) {
	if limit <= 0 {
		limit = DefaultPage
	}
	if limit > MaxPage {
		return nil, "", fmt.Errorf("%w: limit: at most %d", ErrInvalid, MaxPage)
	}
	offset := 0
	if cursor != "" {
		n, err := strconv.Atoi(cursor)
		if err != nil || n < 0 || n > math.MaxInt32 {
			return nil, "", fmt.Errorf("%w: cursor: not one this server gave out", ErrInvalid)
		}
		offset = n
	}
	ms, err := s.st.ZRange(ctx, ix, state.RangeOptions{Min: math.Inf(-1), Max: math.Inf(1), Reverse: true, Offset: offset, Limit: limit + 1})
	if err != nil {
		return nil, "", err
	}
	next := ""
	if len(ms) > limit {
		ms, next = ms[:limit], strconv.Itoa(offset+limit)
	}
	out := make([]T, 0, len(ms))
	for _, m := range ms {
		raw, err := s.st.Get(ctx, key(m.Member))
		if errors.Is(err, state.ErrNotFound) {
			continue // trimmed between the two reads
		}
		if err != nil {
			return nil, "", err
		}
		var v T
		if err := json.Unmarshal(raw, &v); err != nil {
			return nil, "", fmt.Errorf("push feedback %s: corrupt: %w", m.Member, err)
		}
		out = append(out, v)
	}
	return out, next, nil
}

// Failures lists notifications that used up their attempts, newest first.
func (s *Service) Failures(ctx context.Context, limit int, cursor string) (api.PushFailureList, error) {
	fs, next, err := page[api.PushFailure](ctx, s, ixFailures, keyFailure, limit, cursor)
	return api.PushFailureList{Failures: fs, NextCursor: next}, err
}

// Pruned lists devices removed for dead tokens, newest first.
func (s *Service) Pruned(ctx context.Context, limit int, cursor string) (api.PrunedTokenList, error) {
	ps, next, err := page[api.PrunedToken](ctx, s, ixPruned, keyPruned, limit, cursor)
	return api.PrunedTokenList{Pruned: ps, NextCursor: next}, err
}

// report appends a push_sent event with n's outcome to its ticket. Only
// notifications about a ticket are reported; one that reached no device
// at all (the user has none) has nothing to say.
func (s *Service) report(ctx context.Context, n *Notification) error {
	if s.tickets == nil || n.TicketID == "" || n.Sent+n.Failed+n.Pruned == 0 {
		return nil
	}
	status := "sent"
	switch {
	case n.Failed > 0:
		status = "failed"
	case n.Sent == 0:
		status = "pruned"
	}
	p := api.PushSentPayload{NotificationID: n.ID, Kind: string(n.Kind), Recipient: n.Recipient,
		Devices: n.Sent, Status: status, Failed: n.Failed, Pruned: n.Pruned, Attempts: n.Attempts}
	if status != "sent" {
		p.Reason = clip(n.LastError, maxReason)
	}
	raw, err := json.Marshal(p)
	if err != nil {
		return err
	}
	_, err = s.tickets.Append(ctx, api.Event{TicketID: n.TicketID, Type: api.EventPushSent,
		Actor: api.Actor{ID: "push", Role: "system"}, Channel: api.ChannelSystem, Payload: raw})
	return err
}
