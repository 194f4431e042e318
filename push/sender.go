package push

import (
	"context"
	"net/http"
	"strconv"
	"time"
)

// Message is one notification rendered for one device.
type Message struct {
	Device      *device
	Title, Body string
	// Data travels to the app: kind, ticket, deep link, action.
	Data        map[string]string
	High        bool
	DataOnly    bool
	CollapseKey string
	TTL         time.Duration
	Category    string
}

// Outcome is what a push service said about one message.
type Outcome uint8

const (
	// Delivered: the push service accepted it.
	Delivered Outcome = iota
	// Retry: a transient failure (5xx, 429, network); send again later.
	Retry
	// Gone: the token or subscription is dead; remove the device.
	Gone
	// Failed: refused for good for another reason; do not retry.
	Failed
)

// Result is the outcome of one message.
type Result struct {
	Outcome Outcome
	// RetryAfter is the push service's Retry-After, when it gave one: no
	// retry may go out sooner.
	RetryAfter time.Duration
	// Reason is a short, safe description (an FCM error code, an HTTP
	// status), never a token.
	Reason string
}

// Sender delivers messages to one kind of push service. Send returns one
// Result per message, in order; it must not retry on its own beyond what
// its library does, because the outbox owns retries.
type Sender interface {
	Send(ctx context.Context, msgs []*Message) []Result
}

// maxRetryAfter caps a Retry-After we honour: a push service asking for
// more than an hour is broken or hostile, and the outbox's own backoff
// takes over.
const maxRetryAfter = time.Hour

// retryAfter reads a Retry-After header, seconds or HTTP date (RFC 9110
// section 10.2.3).
func retryAfter(h http.Header, now time.Time) time.Duration {
	v := h.Get("Retry-After")
	if v == "" {
		return 0
	}
	var d time.Duration
	if n, err := strconv.Atoi(v); err == nil {
		d = time.Duration(n) * time.Second
	} else if t, err := http.ParseTime(v); err == nil {
		d = t.Sub(now)
	}
	return min(max(d, 0), maxRetryAfter)
}
