package push

import (
	"time"
)

// Kind is what a notification is about; it picks the template, the
// priority and whether quiet hours hold it back.
type Kind string

// Kinds of notification, one per step of the story that reaches a phone.
const (
	KindAgentReplied   Kind = "agent_replied"
	KindCallIncoming   Kind = "call_incoming" // an agent is calling: rings full-screen
	KindCallMissed     Kind = "call_missed"   // with a call-back button
	KindTechDispatched Kind = "technician_dispatched"
	KindTechArriving   Kind = "technician_arriving"
	KindTechArrived    Kind = "technician_arrived"
	KindJobAssigned    Kind = "job_assigned" // to the technician
	KindPartShipped    Kind = "part_shipped"
	KindPickupReady    Kind = "pickup_ready"
	KindFollowUpOffer  Kind = "follow_up_offer"
)

// kindSpec is how a kind of notification travels.
type kindSpec struct {
	// urgent ones pass quiet hours: someone is calling or at the door.
	urgent bool
	// high asks FCM for high priority (Android "high", APNs priority 10),
	// which wakes a dozing phone; FCM deprioritises apps that use it for
	// messages the user does not act on, so only time-critical kinds do.
	high bool
	// dataOnly sends no notification block: the app draws its own
	// full-screen call UI (Android full-screen intent, iOS CallKit).
	dataOnly bool
	// collapse groups messages where only the newest matters ("5 minutes
	// away" replaces "10 minutes away"); the ticket ID is appended.
	collapse string
	// ttl is how long the push service keeps it for an offline device:
	// a ring is useless after 30s, an arrival after 30 minutes.
	ttl time.Duration
	// category names the action buttons (APNs category, Android
	// click_action); the app declares them.
	category string
}

var kinds = map[Kind]kindSpec{
	KindAgentReplied:   {ttl: 24 * time.Hour, collapse: "reply-"},
	KindCallIncoming:   {urgent: true, high: true, dataOnly: true, ttl: 30 * time.Second, collapse: "call-", category: "INCOMING_CALL"},
	KindCallMissed:     {high: true, ttl: 24 * time.Hour, collapse: "call-", category: "CALL_BACK"},
	KindTechDispatched: {ttl: 12 * time.Hour, collapse: "tech-"},
	KindTechArriving:   {urgent: true, high: true, ttl: 30 * time.Minute, collapse: "tech-"},
	KindTechArrived:    {urgent: true, high: true, ttl: 30 * time.Minute, collapse: "tech-"},
	KindJobAssigned:    {high: true, ttl: 12 * time.Hour, category: "JOB"},
	KindPartShipped:    {ttl: 72 * time.Hour},
	KindPickupReady:    {ttl: 72 * time.Hour, category: "PICKUP"},
	KindFollowUpOffer:  {ttl: 72 * time.Hour, category: "OFFER"},
}

// Notification is one message for one person, on all their devices. It
// is what the outbox stores: written before any send, carried through
// retries with the devices still owed.
type Notification struct {
	// ID is stable across retries; a rule derives it from the event, so
	// a redelivered event does not notify twice.
	ID        string            `json:"id"`
	Kind      Kind              `json:"kind"`
	Recipient string            `json:"recipient"`
	TicketID  string            `json:"ticket_id,omitempty"`
	Params    map[string]string `json:"params,omitempty"`
	CreatedAt time.Time         `json:"created_at"`

	// Set by the outbox.
	Started   bool     `json:"started,omitempty"` // a first attempt ran: Pending is the list owed
	Pending   []string `json:"pending,omitempty"` // installation IDs still owed
	Attempts  int      `json:"attempts,omitempty"`
	Sent      int      `json:"sent,omitempty"`
	Pruned    int      `json:"pruned,omitempty"`
	Failed    int      `json:"failed,omitempty"`
	LastError string   `json:"last_error,omitempty"`
}

// maxParams and maxParam bound a notification's template parameters:
// a push payload is at most 4 KiB (FCM and APNs), so longer text is cut.
const (
	maxParams = 16
	maxParam  = 512
)
