package sdk

import (
	"context"
	crand "crypto/rand"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"time"

	"github.com/switchboard/switchboard/api"
)

// Retries of creating requests. A phone on a train loses a request's
// answer often; with its Idempotency-Key the gateway replays the first
// answer, so retrying is safe. Four attempts with backoff from 250ms span
// about two seconds: enough to ride out a dropped connection or a node
// restart behind the load balancer, short enough for a user waiting on
// a button.
const (
	maxAttempts  = 4
	retryBase    = 250 * time.Millisecond
	maxRetryWait = 5 * time.Second // cap on a server's Retry-After
)

// OpenTicket opens a ticket for the signed-in customer (staff name
// req.CustomerID). idempotencyKey makes retries safe; empty means a fresh
// random key for this call, which OpenTicket then reuses for its own
// retries of transient failures (network errors, 5xx), so a lost answer
// never opens a second ticket. Pass your own key to make retries across
// app restarts safe too.
func (c *Client) OpenTicket(ctx context.Context, req api.OpenTicketRequest, idempotencyKey string) (*api.Ticket, error) {
	var t api.Ticket
	err := c.sendIdempotent(ctx, Request{Method: http.MethodPost, Path: "/v1/tickets", Body: req, IdempotencyKey: idempotencyKey}, &t)
	if err != nil {
		return nil, err
	}
	return &t, nil
}

// PostMessage posts a message to a ticket, retrying transient failures
// under one Idempotency-Key like OpenTicket (empty: a random one).
func (c *Client) PostMessage(ctx context.Context, ticketID, text, idempotencyKey string) (*api.Event, error) {
	p, err := pathID(ticketID)
	if err != nil {
		return nil, err
	}
	body := api.PostEventRequest{Type: api.EventMessage, Payload: mustJSON(api.MessagePayload{Text: text})}
	var ev api.Event
	err = c.sendIdempotent(ctx, Request{Method: http.MethodPost, Path: "/v1/tickets/" + p + "/events", Body: body, IdempotencyKey: idempotencyKey}, &ev)
	if err != nil {
		return nil, err
	}
	return &ev, nil
}

// Ticket returns a ticket with a page of its timeline after the event ID
// after ("" from the start); TicketView.Next continues it.
func (c *Client) Ticket(ctx context.Context, id, after string) (*api.TicketView, error) {
	p, err := pathID(id)
	if err != nil {
		return nil, err
	}
	path := "/v1/tickets/" + p
	if after != "" {
		path += "?" + url.Values{"after": {after}}.Encode()
	}
	var v api.TicketView
	if err := c.Do(ctx, http.MethodGet, path, nil, &v); err != nil {
		return nil, err
	}
	return &v, nil
}

// Tickets lists the tickets the user may see, most recently active first:
// a customer's own, an agent's queues, a technician's jobs. status
// filters ("" for any); cursor is the previous page's Next.
func (c *Client) Tickets(ctx context.Context, status api.TicketStatus, cursor string) (*api.TicketList, error) {
	q := url.Values{}
	if status != "" {
		q.Set("status", string(status))
	}
	if cursor != "" {
		q.Set("cursor", cursor)
	}
	path := "/v1/tickets"
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	var l api.TicketList
	if err := c.Do(ctx, http.MethodGet, path, nil, &l); err != nil {
		return nil, err
	}
	return &l, nil
}

// sendIdempotent sends r, with a random Idempotency-Key if it has none,
// and sends it again with the same key, a bounded number of times, when
// the failure was transient.
func (c *Client) sendIdempotent(ctx context.Context, r Request, out any) error {
	if r.IdempotencyKey == "" {
		r.IdempotencyKey = newIdempotencyKey()
	}
	var err error
	for attempt := 0; attempt < maxAttempts; attempt++ {
		if attempt > 0 {
			if werr := sleep(ctx, retryWait(attempt, err)); werr != nil {
				return err // the last real failure says more than "canceled"
			}
		}
		err = c.Send(ctx, r, out)
		if err == nil || ctx.Err() != nil || !transient(err) {
			return err
		}
	}
	return err
}

// transient reports whether a failure may pass if the same idempotent
// request is sent again: no complete answer, a server error, or the
// gateway still working on the first attempt.
func transient(err error) bool {
	var te *transportError
	if errors.As(err, &te) {
		return true
	}
	switch st := StatusCode(err); {
	case st >= 500, st == http.StatusRequestTimeout:
		return true
	case st == http.StatusConflict && Code(err) == api.CodeIdempotencyPending:
		return true
	}
	return false
}

// retryWait is the pause before attempt: exponential with full jitter
// (so a fleet of phones does not retry in step), or the server's
// Retry-After when it gave one.
func retryWait(attempt int, err error) time.Duration {
	var e *Error
	if errors.As(err, &e) && e.RetryAfter > 0 {
		return min(time.Duration(e.RetryAfter)*time.Second, maxRetryWait)
	}
	d := retryBase << (attempt - 1)
	return d/2 + rand.N(d/2+1)
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// newIdempotencyKey is a random key (crypto/rand.Text: 128+ bits).
func newIdempotencyKey() string { return crand.Text() }

// pathID checks an ID before it becomes a path segment: IDs are opaque,
// but one must never turn /v1/tickets/{id} into another route.
func pathID(id string) (string, error) {
	if id == "" || id == "." || id == ".." || url.PathEscape(id) != id {
		return "", fmt.Errorf("switchboard: malformed ID %q", id)
	}
	return id, nil
}
