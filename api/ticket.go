package api

import (
	"encoding/json"
	"time"
)

// TicketStatus is where a ticket stands.
type TicketStatus string

// Ticket statuses.
const (
	StatusOpen     TicketStatus = "open"
	StatusPending  TicketStatus = "pending" // waiting on the customer or a part
	StatusResolved TicketStatus = "resolved"
	StatusClosed   TicketStatus = "closed"
)

// Priority orders tickets in a queue.
type Priority string

// Priorities.
const (
	PriorityLow    Priority = "low"
	PriorityNormal Priority = "normal"
	PriorityHigh   Priority = "high"
	PriorityUrgent Priority = "urgent"
)

// Channels events come from.
const (
	ChannelApp       = "app"       // the customer app
	ChannelConsole   = "console"   // the agent console
	ChannelField     = "field"     // the technician's location app
	ChannelAppliance = "appliance" // an appliance, relayed or over MQTT
	ChannelSystem    = "system"    // the gateway itself (rules, schedules)
)

// DefaultQueue is the queue of a ticket opened without one.
const DefaultQueue = "general"

// Ticket is one case of one customer.
type Ticket struct {
	ID         string       `json:"id"`
	CustomerID string       `json:"customer_id"`
	Subject    string       `json:"subject"`
	Channel    string       `json:"channel"`
	Status     TicketStatus `json:"status"`
	Priority   Priority     `json:"priority"`
	Queue      string       `json:"queue"`
	// Product is the product (SKU or model) the ticket concerns.
	Product string `json:"product,omitempty"`
	// ApplianceID is the registered appliance the ticket concerns.
	ApplianceID string `json:"appliance_id,omitempty"`
	// Assignee is the agent who owns the ticket.
	Assignee string `json:"assignee,omitempty"`
	// Technician is the field technician dispatched to it.
	Technician  string    `json:"technician,omitempty"`
	Tags        []string  `json:"tags,omitempty"`
	CreatedAt   time.Time `json:"created_at"`
	UpdatedAt   time.Time `json:"updated_at"`
	LastEventID string    `json:"last_event_id,omitempty"`
}

// OpenTicketRequest is the body of POST /v1/tickets. A customer opens a
// ticket for themselves (CustomerID is ignored); an agent or the system
// opens one on a customer's behalf and must name CustomerID.
type OpenTicketRequest struct {
	CustomerID  string   `json:"customer_id,omitempty"`
	Subject     string   `json:"subject"`
	Channel     string   `json:"channel,omitempty"`
	Priority    Priority `json:"priority,omitempty"`
	Queue       string   `json:"queue,omitempty"`
	Product     string   `json:"product,omitempty"`
	ApplianceID string   `json:"appliance_id,omitempty"`
	Tags        []string `json:"tags,omitempty"`
	// Message, if set, is the ticket's first message event.
	Message string `json:"message,omitempty"`
}

// UpdateTicketRequest is the body of PATCH /v1/tickets/{id} (agents):
// only the fields present change.
type UpdateTicketRequest struct {
	Status     *TicketStatus `json:"status,omitempty"`
	Priority   *Priority     `json:"priority,omitempty"`
	Queue      *string       `json:"queue,omitempty"`
	Assignee   *string       `json:"assignee,omitempty"`
	Technician *string       `json:"technician,omitempty"`
	Tags       *[]string     `json:"tags,omitempty"`
}

// TicketList is a page of tickets, most recently updated first.
type TicketList struct {
	Tickets []Ticket `json:"tickets"`
	// Next is the cursor for the following page; empty on the last page.
	Next string `json:"next,omitempty"`
}

// TicketView is a ticket with a page of its timeline, oldest first.
type TicketView struct {
	Ticket Ticket  `json:"ticket"`
	Events []Event `json:"events"`
	// Next is the cursor (?after=) for the following events; empty when
	// the timeline was read to its end. A page may hold fewer events than
	// asked for, even none, and still have a Next: a page looks at a
	// bounded number of events, and some may not be the caller's to see.
	Next string `json:"next,omitempty"`
}

// Timeline is a page of events, oldest first.
type Timeline struct {
	Events []Event `json:"events"`
	// Next continues the timeline as TicketView.Next does.
	Next string `json:"next,omitempty"`
}

// PostEventRequest is the body of POST /v1/tickets/{id}/events.
type PostEventRequest struct {
	Type    EventType       `json:"type"`
	Payload json.RawMessage `json:"payload"`
}

// LinkIdentityRequest is the body of POST /v1/identities: an agent links a
// channel handle (phone number, email, social handle) to a customer.
type LinkIdentityRequest struct {
	CustomerID string `json:"customer_id"`
	Channel    string `json:"channel"`
	Handle     string `json:"handle"`
}

// Identity is a handle on a channel and the customer it belongs to.
type Identity struct {
	Channel    string    `json:"channel"`
	Handle     string    `json:"handle"`
	CustomerID string    `json:"customer_id"`
	LinkedAt   time.Time `json:"linked_at"`
	// MergedFrom names the provisional customer whose events moved to
	// CustomerID when this link was made.
	MergedFrom string `json:"merged_from,omitempty"`
}

// IngestRequest is the body of POST /v1/ingest/{channel}: an event from an
// outside channel (web chat, email, social listening), signed by it.
type IngestRequest struct {
	// Handle is who wrote: an email address, a phone number, a handle.
	Handle string `json:"handle"`
	// ExternalID is the channel's own ID of the message; a repeat is
	// ignored, so the channel may retry.
	ExternalID string `json:"external_id"`
	Text       string `json:"text"`
	// Subject opens a new ticket when the handle has no open one on this
	// channel.
	Subject string `json:"subject,omitempty"`
	// TicketID attaches the event to this ticket (it must belong to the
	// handle's customer).
	TicketID string `json:"ticket_id,omitempty"`
}

// IngestResult answers an ingest.
type IngestResult struct {
	CustomerID  string `json:"customer_id"`
	Provisional bool   `json:"provisional"`
	TicketID    string `json:"ticket_id"`
	EventID     string `json:"event_id"`
	Duplicate   bool   `json:"duplicate,omitempty"`
}

// FollowUpRequest is the body of POST /v1/tickets/{id}/follow-ups.
type FollowUpRequest struct {
	At     time.Time `json:"at"`
	Action string    `json:"action"` // call_back | offer | reminder
	Note   string    `json:"note,omitempty"`
	Offer  string    `json:"offer,omitempty"`
}

// FollowUp is a scheduled action on a ticket; it fires once.
type FollowUp struct {
	ID       string    `json:"id"`
	TicketID string    `json:"ticket_id"`
	At       time.Time `json:"at"`
	Action   string    `json:"action"`
	Note     string    `json:"note,omitempty"`
	Offer    string    `json:"offer,omitempty"`
	By       string    `json:"by"`
}

// Follow-up actions.
const (
	FollowUpCallBack = "call_back"
	FollowUpOffer    = "offer"
	FollowUpReminder = "reminder"
)
