package api

import "time"

// CreateWebhookRequest subscribes an outside system (a CRM, a ticketing
// system) to the ticket stream.
type CreateWebhookRequest struct {
	// URL receives an HTTP POST per event: http or https, and a host that
	// is not loopback, private or link-local unless the server allows it.
	URL string `json:"url"`
	// EventTypes filters what is sent; empty means every type.
	EventTypes []EventType `json:"event_types,omitempty"`
	// Secret signs deliveries, in the Standard Webhooks form "whsec_" +
	// base64 of 24 to 64 random bytes. Empty: the server generates one.
	Secret string `json:"secret,omitempty"`
}

// Webhook is a subscription as listed; it never shows the secret.
type Webhook struct {
	ID         string      `json:"id"`
	URL        string      `json:"url"`
	EventTypes []EventType `json:"event_types"`
	CreatedAt  time.Time   `json:"created_at"`
	CreatedBy  string      `json:"created_by"`
	Active     bool        `json:"active"`
}

// WebhookCreated is the answer to a create: the subscription and its
// signing secret, shown this once.
type WebhookCreated struct {
	Webhook
	Secret string `json:"secret"`
}

// WebhookList is every subscription, oldest first.
type WebhookList struct {
	Webhooks []Webhook `json:"webhooks"`
}

// WebhookPayload is the body of every delivery, in the Standard Webhooks
// shape: the event type, when it happened, and the event itself.
type WebhookPayload struct {
	Type      EventType `json:"type"`
	Timestamp time.Time `json:"timestamp"`
	Data      Event     `json:"data"`
}

// DeadLetter is a delivery that failed every attempt.
type DeadLetter struct {
	ID         string    `json:"id"`
	WebhookID  string    `json:"webhook_id"`
	MessageID  string    `json:"message_id"` // the webhook-id header sent
	EventID    string    `json:"event_id"`
	EventType  EventType `json:"event_type"`
	Attempts   int       `json:"attempts"`
	LastStatus int       `json:"last_status,omitempty"` // 0: no HTTP answer
	LastError  string    `json:"last_error"`
	FailedAt   time.Time `json:"failed_at"`
}

// DeadLetterList is a page of dead letters, newest first.
type DeadLetterList struct {
	DeadLetters []DeadLetter `json:"dead_letters"`
	// NextCursor fetches the next page; empty on the last.
	NextCursor string `json:"next_cursor,omitempty"`
}
