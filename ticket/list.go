package ticket

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/switchboard/switchboard/api"
	"github.com/switchboard/switchboard/auth"
	"github.com/switchboard/switchboard/state"
)

// MaxPage is the most items one list or timeline page returns; larger
// limits are clamped to it.
const MaxPage = 100

// ListOptions filters and pages a ticket list.
type ListOptions struct {
	Status api.TicketStatus // empty: any
	Queue  string           // agents: one of their queues; empty: all they serve
	Limit  int              // 0: 50; clamped to MaxPage
	Cursor string           // Next of the previous page
}

// List returns the tickets v may list, most recently active first: a
// customer's own, an agent's queues, a technician's dispatched jobs.
func (s *Service) List(ctx context.Context, v Viewer, o ListOptions) (api.TicketList, error) {
	limit := clamp(o.Limit, 50)
	var ixs []string
	switch v.Role {
	case auth.RoleCustomer:
		ixs = []string{ixCustomer(v.ID)}
	case auth.RoleTechnician:
		ixs = []string{ixTechnician(v.ID)}
	case auth.RoleAgent, auth.RoleAdmin, RoleSystem:
		switch {
		case o.Queue != "":
			if !v.servesQueue(o.Queue) {
				return api.TicketList{Tickets: []api.Ticket{}}, nil
			}
			ixs = []string{ixQueue(o.Queue)}
		case len(v.Queues) > 0:
			for _, q := range v.Queues {
				ixs = append(ixs, ixQueue(q))
			}
		default:
			ixs = []string{ixAll()}
		}
	default:
		return api.TicketList{}, ErrForbidden
	}
	if o.Status != "" {
		if err := checkUpdate(api.UpdateTicketRequest{Status: &o.Status}); err != nil {
			return api.TicketList{}, err
		}
	}
	cur, err := parseCursor(o.Cursor)
	if err != nil {
		return api.TicketList{}, err
	}
	out := api.TicketList{Tickets: []api.Ticket{}}
	// Scan a bounded number of index entries: a status filter that matches
	// little must not turn one request into a walk of the whole index.
	budget := limit * 20
	for budget > 0 && len(out.Tickets) < limit {
		batch, err := s.mergedPage(ctx, ixs, cur, limit)
		if err != nil {
			return api.TicketList{}, err
		}
		if len(batch) == 0 {
			cur = cursor{}
			break
		}
		for _, m := range batch {
			budget--
			cur = cursor{score: m.Score, member: m.Member, set: true}
			t, _, err := s.loadTicket(ctx, m.Member)
			if err != nil {
				continue // removed or corrupt: skip, never fail the list
			}
			if !v.CanSee(t) || (o.Status != "" && t.Status != o.Status) {
				continue
			}
			s.fillActivity(ctx, v, t)
			out.Tickets = append(out.Tickets, *t)
			if len(out.Tickets) == limit {
				break
			}
		}
	}
	if cur.set && len(out.Tickets) == limit || budget <= 0 {
		out.Next = cur.String()
	}
	return out, nil
}

// mergedPage returns up to n members after cur from the union of ixs,
// highest score first (ties: member descending, as Reverse orders them).
func (s *Service) mergedPage(ctx context.Context, ixs []string, cur cursor, n int) ([]state.ScoredMember, error) {
	var all []state.ScoredMember
	seen := map[string]bool{}
	for _, ix := range ixs {
		opt := rangeAll(true, 0, n)
		if cur.set {
			opt.Max = cur.score
			// Members tied with the cursor's score come first in reverse
			// order; fetch enough to skip past the ones already returned.
			opt.Limit = n + 64
		}
		ms, err := s.st.ZRange(ctx, ix, opt)
		if err != nil {
			return nil, err
		}
		for _, m := range ms {
			if cur.set && m.Score == cur.score && m.Member >= cur.member {
				continue
			}
			if !seen[m.Member] {
				seen[m.Member] = true
				all = append(all, m)
			}
		}
	}
	sortDesc(all)
	if len(all) > n {
		all = all[:n]
	}
	return all, nil
}

func sortDesc(ms []state.ScoredMember) {
	for i := 1; i < len(ms); i++ {
		for j := i; j > 0 && less(ms[j-1], ms[j]); j-- {
			ms[j-1], ms[j] = ms[j], ms[j-1]
		}
	}
}

func less(a, b state.ScoredMember) bool {
	return a.Score < b.Score || (a.Score == b.Score && a.Member < b.Member)
}

// cursor is a position in a list: the last (score, member) returned.
type cursor struct {
	score  float64
	member string
	set    bool
}

func (c cursor) String() string {
	return strconv.FormatInt(int64(c.score), 10) + "." + c.member
}

func parseCursor(s string) (cursor, error) {
	if s == "" {
		return cursor{}, nil
	}
	score, m, ok := strings.Cut(s, ".")
	n, err := strconv.ParseInt(score, 10, 64)
	if !ok || err != nil || m == "" || len(m) > maxShort {
		return cursor{}, fmt.Errorf("%w: malformed cursor", ErrInvalid)
	}
	return cursor{score: float64(n), member: m, set: true}, nil
}

func rangeAll(reverse bool, offset, limit int) state.RangeOptions {
	return state.RangeOptions{Min: math.Inf(-1), Max: math.Inf(1), Reverse: reverse, Offset: offset, Limit: limit}
}

// clamp bounds a client's page size: 0 means def, and anything above
// MaxPage is MaxPage (never an error: ?limit=1000000 just gets MaxPage).
func clamp(n, def int) int {
	switch {
	case n <= 0:
		return def
	case n > MaxPage:
		return MaxPage
	}
	return n
}

func unixMilli(ms int64) time.Time { return time.UnixMilli(ms).UTC() }

// trimMember turns an index member back into an event ID ("ms-seq").
func trimMember(m string) string {
	p, err := state.ParseID(m)
	if err != nil {
		return m
	}
	return p.String()
}
