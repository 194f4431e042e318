// Package mobile is the gomobile-bindable face of the Switchboard SDK:
// only types gomobile can bind (strings, numbers, bool, []byte, error, and
// pointers to this package's structs and interfaces) cross its surface, so
// `gomobile bind` produces a Kotlin/Java and a Swift/Objective-C library.
// The logic lives in the idiomatic Go package sdk; this is a thin wrapper.
package mobile

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/switchboard/switchboard/api"
	sdk "github.com/switchboard/switchboard/mobile-sdk"
)

// defaultTimeout bounds a call from the app: bound languages have no
// context.Context, so every call gets its own deadline.
const defaultTimeout = 30 * time.Second

// TokenStore is implemented by the app on top of Keychain or the Android
// Keystore. SaveTokens is called after every rotation.
type TokenStore interface {
	AccessToken() string
	RefreshToken() string
	SaveTokens(access, refresh string) error
}

// tokenAdapter lets the sdk use an app-supplied TokenStore.
type tokenAdapter struct{ s TokenStore }

func (t tokenAdapter) Load() (string, string)            { return t.s.AccessToken(), t.s.RefreshToken() }
func (t tokenAdapter) Save(access, refresh string) error { return t.s.SaveTokens(access, refresh) }

// Client is the app's connection to the gateway.
type Client struct {
	c *sdk.Client
}

// NewClient returns a client for baseURL that keeps tokens in store.
func NewClient(baseURL string, store TokenStore) (*Client, error) {
	c, err := sdk.New(sdk.Config{BaseURL: baseURL, Tokens: tokenAdapter{store}})
	if err != nil {
		return nil, err
	}
	return &Client{c: c}, nil
}

// SDK is the Go client underneath, for Go wrappers bound beside this
// package (mobilecall) so they share its token refresh: two clients
// refreshing one refresh token at once would look like theft to the
// gateway and sign the user out. gomobile skips this method (*sdk.Client
// does not bind), so apps never see it.
func (c *Client) SDK() *sdk.Client { return c.c }

// Me is the signed-in user.
type Me struct {
	Subject string
	Role    string
	// ExpiresAtUnix is the access token's expiry in Unix seconds.
	ExpiresAtUnix int64
}

// Me returns the signed-in user.
func (c *Client) Me() (*Me, error) {
	ctx, cancel := context.WithTimeout(context.Background(), defaultTimeout)
	defer cancel()
	me, err := c.c.Me(ctx)
	if err != nil {
		return nil, wrap(err)
	}
	return &Me{Subject: me.Subject, Role: me.Role, ExpiresAtUnix: me.ExpiresAt.Unix()}, nil
}

// wrap renders a gateway refusal as "code (status): detail", so Kotlin
// and Swift code, which sees errors only as messages, can branch on the
// code prefix.
func wrap(err error) error {
	if code := sdk.Code(err); code != "" {
		return fmt.Errorf("%s (%d): %w", code, sdk.StatusCode(err), err)
	}
	return err
}

// Ticket is a support ticket.
type Ticket struct {
	ID          string
	CustomerID  string
	Subject     string
	Status      string // open | pending | resolved | closed
	Priority    string
	Queue       string
	LastEventID string
	// CreatedAtUnix and UpdatedAtUnix are Unix seconds.
	CreatedAtUnix int64
	UpdatedAtUnix int64
}

func ticketOf(t *api.Ticket) *Ticket {
	return &Ticket{ID: t.ID, CustomerID: t.CustomerID, Subject: t.Subject, Status: string(t.Status),
		Priority: string(t.Priority), Queue: t.Queue, LastEventID: t.LastEventID,
		CreatedAtUnix: t.CreatedAt.Unix(), UpdatedAtUnix: t.UpdatedAt.Unix()}
}

// Event is one entry of a ticket's timeline.
type Event struct {
	ID         string
	TicketID   string
	CustomerID string
	Type       string // message, photo_added, call_started, ... (api.Event* values)
	ActorID    string
	ActorRole  string
	Channel    string
	Status     string
	// TimeUnixMilli is when it happened, in Unix milliseconds.
	TimeUnixMilli int64
	// Text is the text of a message, note or offer; empty for other types.
	Text string
	// PayloadJSON is the type's payload as JSON, for the types Text does
	// not cover.
	PayloadJSON string
}

func eventOf(ev *api.Event) *Event {
	var p struct {
		Text string `json:"text"`
	}
	_ = json.Unmarshal(ev.Payload, &p)
	return &Event{ID: ev.ID, TicketID: ev.TicketID, CustomerID: ev.CustomerID, Type: string(ev.Type),
		ActorID: ev.Actor.ID, ActorRole: ev.Actor.Role, Channel: ev.Channel, Status: string(ev.Status),
		TimeUnixMilli: ev.Time.UnixMilli(), Text: p.Text, PayloadJSON: string(ev.Payload)}
}

// OpenTicket opens a ticket with a subject and, if message is not empty,
// a first message. Retries inside it are safe: a lost answer never opens
// a second ticket.
func (c *Client) OpenTicket(subject, message string) (*Ticket, error) {
	ctx, cancel := context.WithTimeout(context.Background(), defaultTimeout)
	defer cancel()
	t, err := c.c.OpenTicket(ctx, api.OpenTicketRequest{Subject: subject, Message: message}, "")
	if err != nil {
		return nil, wrap(err)
	}
	return ticketOf(t), nil
}

// PostMessage posts a message to a ticket; retries inside it are safe.
func (c *Client) PostMessage(ticketID, text string) (*Event, error) {
	ctx, cancel := context.WithTimeout(context.Background(), defaultTimeout)
	defer cancel()
	ev, err := c.c.PostMessage(ctx, ticketID, text, "")
	if err != nil {
		return nil, wrap(err)
	}
	return eventOf(ev), nil
}

// EventHandler receives a live feed's events, on a background thread.
type EventHandler interface {
	// OnEvent is called once per event, in order. Returning an error
	// stops the feed.
	OnEvent(e *Event) error
	// OnStopped is called once when the feed has ended: reason is empty
	// after Stop, and otherwise says why ("too far behind", a refusal, or
	// the error OnEvent returned).
	OnStopped(reason string)
}

// FollowFilter narrows a live feed; empty fields match everything.
type FollowFilter struct {
	TicketID   string
	CustomerID string
	Queue      string
	Status     string
}

// Feed is a running live feed; Stop ends it.
type Feed struct {
	cancel context.CancelFunc
	done   chan struct{}
}

// Stop ends the feed and waits until its handler is no longer called
// (OnStopped has returned). Call it from the app, never from inside the
// handler: to stop from OnEvent, return an error.
func (f *Feed) Stop() {
	f.cancel()
	<-f.done
}

// Follow starts following live events in the background, after the event
// ID after ("" for only new ones), and returns at once. It reconnects by
// itself when the network drops, resuming after the last event handed to
// h: h sees no gap and no duplicate. filter may be nil.
func (c *Client) Follow(filter *FollowFilter, after string, h EventHandler) (*Feed, error) {
	if h == nil {
		return nil, fmt.Errorf("switchboard: Follow needs an EventHandler")
	}
	var f sdk.FollowFilter
	if filter != nil {
		f = sdk.FollowFilter{Ticket: filter.TicketID, Customer: filter.CustomerID, Queue: filter.Queue, Status: api.TicketStatus(filter.Status)}
	}
	ctx, cancel := context.WithCancel(context.Background())
	feed := &Feed{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(feed.done)
		err := c.c.Follow(ctx, f, after, func(ev api.Event) error { return h.OnEvent(eventOf(&ev)) })
		reason := ""
		if err != nil && !errors.Is(err, context.Canceled) {
			reason = wrap(err).Error()
		}
		h.OnStopped(reason)
	}()
	return feed, nil
}
