package sdk

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/switchboard/switchboard/api"
)

// FollowFilter narrows a live feed; empty fields match everything. The
// gateway decides what the user may see; filters only narrow it.
type FollowFilter struct {
	Ticket   string
	Customer string
	Queue    string
	Status   api.TicketStatus
}

func (f FollowFilter) query() url.Values {
	q := url.Values{}
	for k, v := range map[string]string{"ticket": f.Ticket, "customer": f.Customer, "queue": f.Queue, "status": string(f.Status)} {
		if v != "" {
			q.Set(k, v)
		}
	}
	return q
}

// Reconnection of the live feed. The first retry comes soon (a dropped
// mobile connection usually comes back at once); repeated failures back
// off exponentially, with jitter so that a node restart does not bring
// every phone back in the same millisecond, up to 30s (the order of the
// gateway's 2s SSE retry hint times the usual backoff factor of a few
// steps).
const (
	followRetryMin = 250 * time.Millisecond
	followRetryMax = 30 * time.Second
	// followIdle is how long a stream may stay silent before it is taken
	// for dead (a network that vanished without a FIN): three of the
	// gateway's 15s heartbeats.
	followIdle = 45 * time.Second
	// maxSSELine bounds one line of the stream. An event's payload is at
	// most 16 KiB of JSON; escaping can grow it several times.
	maxSSELine = 1 << 20
)

// Close codes the gateway ends a stream with: in the final "close" event
// of Server-Sent Events, and as WebSocket close codes (see
// gateway/stream.go). CloseTokenExpired: the token the connection was
// opened with expired; a new connection with a fresh token goes on.
const (
	CloseTokenExpired  = 4001
	closeReplayTooLong = 4010
)

// Follow delivers live events from GET /v1/stream (Server-Sent Events) to
// fn, oldest first, starting after the event ID after ("": from now on).
// When the connection drops or the gateway restarts it reconnects with
// backoff and resumes with Last-Event-ID set to the last event delivered,
// so fn sees every event once: no gap, no duplicate.
//
// It returns ctx's error when ctx ends, fn's error as soon as fn returns
// one, ErrFeedTooFarBehind when the gateway cannot replay the gap, and a
// gateway refusal that retrying cannot fix (a bad filter, a forbidden
// feed, a sign-out) at once. fn runs on Follow's goroutine: a slow fn
// slows only this feed, and the gateway cuts it off if it falls far
// behind, after which Follow resumes where fn got to.
func (c *Client) Follow(ctx context.Context, filter FollowFilter, after string, fn func(api.Event) error) error {
	hc := *c.http
	hc.Timeout = 0 // a stream lives for hours; followIdle guards it instead
	last := after
	failures := 0
	forceRefresh := false
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		delivered, retry, err := c.followOnce(ctx, &hc, filter, &last, fn, &forceRefresh)
		if !retry {
			return err
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if delivered {
			failures = 0
		}
		failures++
		if werr := sleep(ctx, followBackoff(failures)); werr != nil {
			return werr
		}
	}
}

// followBackoff is the pause after the n-th failure in a row (n ≥ 1).
func followBackoff(n int) time.Duration {
	d := followRetryMax
	if n < 10 {
		d = min(followRetryMin<<(n-1), followRetryMax)
	}
	return d/2 + rand.N(d/2+1)
}

// errFn wraps the callback's own error, so Follow tells it from a
// network error.
type errFn struct{ err error }

func (e errFn) Error() string { return e.err.Error() }

// followOnce runs one connection. It reports whether any event was
// delivered or the stream at least opened (so backoff restarts), whether
// to reconnect, and the error that ended it.
func (c *Client) followOnce(ctx context.Context, hc *http.Client, filter FollowFilter, last *string,
	fn func(api.Event) error, forceRefresh *bool) (opened, retry bool, err error) {
	access, err := c.freshAccess(ctx)
	if err == nil && *forceRefresh {
		access, err = c.refreshAfter(ctx, access)
	}
	if err != nil {
		return false, transient(err), err
	}
	*forceRefresh = false

	connCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	u := c.base.JoinPath("/v1/stream")
	u.RawQuery = filter.query().Encode()
	req, err := http.NewRequestWithContext(connCtx, http.MethodGet, u.String(), nil)
	if err != nil {
		return false, false, fmt.Errorf("switchboard: %w", err)
	}
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("Cache-Control", "no-store")
	req.Header.Set("User-Agent", c.agent)
	if access != "" {
		req.Header.Set("Authorization", "Bearer "+access)
	}
	if *last != "" {
		req.Header.Set("Last-Event-ID", *last)
	}
	res, err := hc.Do(req)
	if err != nil {
		return false, true, &transportError{err}
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		err := decode(res, nil)
		if err == nil {
			err = errUnexpected(res.StatusCode, res.Header.Get("Content-Type"))
		}
		if StatusCode(err) == http.StatusUnauthorized && Code(err) == api.CodeTokenExpired {
			*forceRefresh = true
			return false, true, err
		}
		return false, transient(err) || StatusCode(err) == http.StatusTooManyRequests, err
	}
	if ct := res.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/event-stream") {
		return false, true, errUnexpected(res.StatusCode, ct)
	}

	// A silent connection is a dead one: every line read rearms the timer.
	watchdog := time.AfterFunc(followIdle, cancel)
	defer watchdog.Stop()
	sc := bufio.NewScanner(res.Body)
	sc.Buffer(make([]byte, 0, 4096), maxSSELine)
	var id, event string
	var data bytes.Buffer
	for sc.Scan() {
		watchdog.Reset(followIdle)
		line := sc.Bytes()
		if len(line) > 0 {
			field, value, _ := bytes.Cut(line, []byte(":"))
			value = bytes.TrimPrefix(value, []byte(" "))
			switch string(field) {
			case "": // a comment: a heartbeat
			case "id":
				id = string(value)
			case "event":
				event = string(value)
			case "data":
				if data.Len() > 0 {
					data.WriteByte('\n')
				}
				data.Write(value)
			}
			continue
		}
		// A blank line dispatches the event gathered so far.
		switch event {
		case "", "message":
			if data.Len() > 0 {
				if err := deliver(data.Bytes(), id, last, fn); err != nil {
					var fe errFn
					if errors.As(err, &fe) {
						return true, false, fe.err
					}
					return true, false, err
				}
			}
		case "close":
			var cl struct {
				Code   int    `json:"code"`
				Reason string `json:"reason"`
			}
			_ = json.Unmarshal(data.Bytes(), &cl)
			switch cl.Code {
			case closeReplayTooLong:
				return true, false, ErrFeedTooFarBehind
			case CloseTokenExpired:
				*forceRefresh = true
			}
			return true, true, fmt.Errorf("switchboard: live feed closed: %d %s", cl.Code, cl.Reason)
		}
		id, event = "", ""
		data.Reset()
	}
	err = sc.Err()
	if err == nil {
		err = io.ErrUnexpectedEOF
	}
	return true, true, &transportError{fmt.Errorf("live feed: %w", err)}
}

// deliver decodes one event and hands it to fn unless it is not newer
// than the last one delivered (the gateway resumes exactly after
// Last-Event-ID; this is the client's own guard against a duplicate).
func deliver(data []byte, id string, last *string, fn func(api.Event) error) error {
	var ev api.Event
	if err := json.Unmarshal(data, &ev); err != nil {
		return fmt.Errorf("switchboard: live feed: malformed event: %w", err)
	}
	if ev.ID == "" {
		ev.ID = id
	}
	if *last != "" && !idAfter(ev.ID, *last) {
		return nil
	}
	if err := fn(ev); err != nil {
		return errFn{err}
	}
	*last = ev.ID
	return nil
}

// idAfter reports whether event ID a ("ms-seq") comes after b. IDs that do
// not parse are compared as text, which keeps them moving forward.
func idAfter(a, b string) bool {
	am, as, okA := parseID(a)
	bm, bs, okB := parseID(b)
	if !okA || !okB {
		return a > b
	}
	return am > bm || am == bm && as > bs
}

func parseID(s string) (ms, seq uint64, ok bool) {
	m, q, found := strings.Cut(s, "-")
	if !found {
		return 0, 0, false
	}
	ms, err1 := strconv.ParseUint(m, 10, 64)
	seq, err2 := strconv.ParseUint(q, 10, 64)
	return ms, seq, err1 == nil && err2 == nil
}
