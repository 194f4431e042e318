package ticket

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"

	"github.com/switchboard/switchboard/api"
	"github.com/switchboard/switchboard/state"
)

// provisionalPrefix marks customers created for a handle nobody has
// linked yet; an agent's link merges them into a real customer.
const provisionalPrefix = "prov_"

func keyIdentity(channel, handle string) string { return "id:" + channel + ":" + handle }

// IsProvisional reports whether a customer ID is a provisional one.
func IsProvisional(customerID string) bool { return strings.HasPrefix(customerID, provisionalPrefix) }

// normalizeHandle puts a handle in the one form it is stored under, so
// "Joe@Example.com " and "joe@example.com" are one identity.
func normalizeHandle(channel, handle string) (string, error) {
	if err := short("channel", channel, true); err != nil || strings.ContainsAny(channel, ": /") {
		return "", fmt.Errorf("%w: channel must be a short name without ':', '/' or spaces", ErrInvalid)
	}
	h := strings.TrimSpace(handle)
	if strings.Contains(h, "@") {
		h = strings.ToLower(h)
	}
	if strings.HasPrefix(h, "+") || channel == "phone" || channel == "sms" {
		h = strings.Map(func(r rune) rune {
			if r == ' ' || r == '-' || r == '(' || r == ')' || r == '.' {
				return -1
			}
			return r
		}, h)
	}
	if err := short("handle", h, true); err != nil {
		return "", fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	return h, nil
}

// Resolve returns the customer a handle belongs to, creating a provisional
// customer for a handle never seen before (an email from a stranger).
func (s *Service) Resolve(ctx context.Context, channel, handle string) (customerID string, provisional bool, err error) {
	h, err := normalizeHandle(channel, handle)
	if err != nil {
		return "", false, err
	}
	key := keyIdentity(channel, h)
	for attempt := 0; attempt < 3; attempt++ {
		raw, err := s.st.Get(ctx, key)
		if err == nil {
			var id api.Identity
			if err := json.Unmarshal(raw, &id); err != nil {
				return "", false, err
			}
			return id.CustomerID, IsProvisional(id.CustomerID), nil
		}
		if !errors.Is(err, state.ErrNotFound) {
			return "", false, err
		}
		id := api.Identity{Channel: channel, Handle: h, CustomerID: newID(provisionalPrefix), LinkedAt: s.now().UTC()}
		raw, _ = json.Marshal(id)
		won, err := s.st.SetNX(ctx, key, raw, 0)
		if err != nil {
			return "", false, err
		}
		if won {
			return id.CustomerID, true, nil
		}
		// Another request created it first: read theirs.
	}
	return "", false, ErrConflict
}

// Link makes a handle belong to a customer (agents). If the handle had a
// provisional customer, that customer's timeline and tickets move to the
// real one: the merge. A handle that belongs to another real customer is a
// conflict; unlinking it is a deliberate, separate act.
func (s *Service) Link(ctx context.Context, v Viewer, req api.LinkIdentityRequest) (api.Identity, error) {
	if !v.isStaff() {
		return api.Identity{}, ErrForbidden
	}
	h, err := normalizeHandle(req.Channel, req.Handle)
	if err != nil {
		return api.Identity{}, err
	}
	if err := short("customer_id", req.CustomerID, true); err != nil {
		return api.Identity{}, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	if IsProvisional(req.CustomerID) {
		return api.Identity{}, fmt.Errorf("%w: link handles to a real customer, not a provisional one", ErrInvalid)
	}
	key := keyIdentity(req.Channel, h)
	next := api.Identity{Channel: req.Channel, Handle: h, CustomerID: req.CustomerID, LinkedAt: s.now().UTC()}
	for attempt := 0; attempt < 5; attempt++ {
		old, err := s.st.Get(ctx, key)
		var prev api.Identity
		switch {
		case errors.Is(err, state.ErrNotFound):
			old = nil
		case err != nil:
			return api.Identity{}, err
		default:
			if err := json.Unmarshal(old, &prev); err != nil {
				return api.Identity{}, err
			}
			if prev.CustomerID == req.CustomerID {
				return prev, nil // already linked: idempotent
			}
			if !IsProvisional(prev.CustomerID) {
				return api.Identity{}, fmt.Errorf("%w: that handle belongs to another customer", ErrConflict)
			}
			next.MergedFrom = prev.CustomerID
		}
		raw, _ := json.Marshal(next)
		ok, err := s.st.CompareAndSwap(ctx, key, old, raw, 0)
		if err != nil {
			return api.Identity{}, err
		}
		if !ok {
			continue
		}
		if next.MergedFrom != "" {
			if err := s.merge(ctx, next.MergedFrom, next.CustomerID); err != nil {
				return api.Identity{}, err
			}
		}
		payload, _ := json.Marshal(api.IdentityLinkedPayload{Channel: next.Channel, Handle: next.Handle, MergedFrom: next.MergedFrom})
		if _, err := s.Append(ctx, api.Event{CustomerID: next.CustomerID, Type: api.EventIdentityLinked, Actor: v.actor(), Channel: api.ChannelConsole, Payload: payload}); err != nil {
			return api.Identity{}, err
		}
		return next, nil
	}
	return api.Identity{}, ErrConflict
}

// merge moves a provisional customer's timeline and tickets to the real
// customer. Events stay as written (the log is immutable); the real
// customer's timeline index gains their IDs. Every step is idempotent, so
// a merge cut short is finished by linking again.
func (s *Service) merge(ctx context.Context, from, to string) error {
	// The handle now points at `to`, so no new event lands on `from`
	// after an ingest in flight finishes; copying twice catches that one.
	for pass := 0; pass < 2; pass++ {
		if err := s.copyIndex(ctx, ixCustomerTL(from), ixCustomerTL(to)); err != nil {
			return err
		}
	}
	tickets, err := s.st.ZRange(ctx, ixCustomer(from), rangeAll(false, 0, 0))
	if err != nil {
		return err
	}
	for _, m := range tickets {
		if err := s.reassign(ctx, m.Member, to); err != nil {
			return err
		}
	}
	return nil
}

func (s *Service) copyIndex(ctx context.Context, from, to string) error {
	const page = 500
	for offset := 0; ; offset += page {
		ms, err := s.st.ZRange(ctx, from, state.RangeOptions{Min: math.Inf(-1), Max: math.Inf(1), Offset: offset, Limit: page})
		if err != nil {
			return err
		}
		for _, m := range ms {
			if err := s.st.ZAdd(ctx, to, m.Member, m.Score); err != nil {
				return err
			}
		}
		if len(ms) < page {
			return nil
		}
	}
}

// reassign moves one ticket to another customer.
func (s *Service) reassign(ctx context.Context, ticketID, to string) error {
	for attempt := 0; attempt < 5; attempt++ {
		t, raw, err := s.loadTicket(ctx, ticketID)
		if errors.Is(err, ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		old := *t
		t.CustomerID = to
		next, _ := json.Marshal(t)
		ok, err := s.st.CompareAndSwap(ctx, keyTicket(ticketID), raw, next, 0)
		if err != nil {
			return err
		}
		if ok {
			// Keep its place by last activity: appends move the list
			// scores, not the record's UpdatedAt, which relist uses.
			s.fillActivity(ctx, System, t)
			return s.relist(ctx, &old, t)
		}
	}
	return ErrConflict
}
