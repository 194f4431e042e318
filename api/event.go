package api

import (
	"encoding/json"
	"time"
)

// EventType names what happened. The set is closed: the gateway refuses
// types it does not know.
type EventType string

// Event types, written by every part of the system into the one stream.
const (
	EventMessage              EventType = "message" // a message to or from the customer
	EventNote                 EventType = "note"    // an internal note: never shown to the customer
	EventPhotoAdded           EventType = "photo_added"
	EventCallRequested        EventType = "call_requested"
	EventCallStarted          EventType = "call_started"
	EventCallEnded            EventType = "call_ended"
	EventCallMissed           EventType = "call_missed"
	EventDiagnostic           EventType = "diagnostic"
	EventFaultDetected        EventType = "fault_detected"
	EventPartOrdered          EventType = "part_ordered"
	EventSalesLeadOpened      EventType = "sales_lead_opened"
	EventTechnicianDispatched EventType = "technician_dispatched"
	EventTechnicianArriving   EventType = "technician_arriving"
	EventTechnicianArrived    EventType = "technician_arrived"
	EventPickupOffered        EventType = "pickup_offered"
	EventOfferMade            EventType = "offer_made"
	EventFollowUpScheduled    EventType = "follow_up_scheduled"
	EventFollowUpDue          EventType = "follow_up_due" // a scheduled follow-up fired
	EventPushSent             EventType = "push_sent"
	EventStatusChanged        EventType = "status_changed"
	EventIdentityLinked       EventType = "identity_linked"
	EventTicketOpened         EventType = "ticket_opened"
)

// Actor is who caused an event: a user (by subject and role) or the
// system.
type Actor struct {
	ID   string `json:"id"`
	Role string `json:"role"` // customer, agent, technician, admin, device, system
}

// Event is one entry of the unified ticket stream. Events are append-only:
// no API edits or deletes one.
type Event struct {
	// ID is the event's position in the stream ("ms-seq"); IDs only grow,
	// and a client resumes a feed with the last one it saw.
	ID string `json:"id"`
	// TicketID is empty for customer-level events (identity_linked).
	TicketID   string    `json:"ticket_id,omitempty"`
	CustomerID string    `json:"customer_id"`
	Type       EventType `json:"type"`
	Actor      Actor     `json:"actor"`
	Channel    string    `json:"channel"`
	Time       time.Time `json:"time"`
	// Queue and Status are the ticket's after the event, so live feeds
	// filter without looking the ticket up.
	Queue   string          `json:"queue,omitempty"`
	Status  TicketStatus    `json:"status,omitempty"`
	Payload json.RawMessage `json:"payload"`
}

// MessagePayload: text to or from the customer.
type MessagePayload struct {
	Text string `json:"text"`
	// ExternalID is the outside channel's message ID, for ingested ones.
	ExternalID string `json:"external_id,omitempty"`
	// Handle is who wrote it on an outside channel.
	Handle string `json:"handle,omitempty"`
}

// NotePayload: an internal note among staff.
type NotePayload struct {
	Text string `json:"text"`
}

// TicketOpenedPayload: the ticket as opened.
type TicketOpenedPayload struct {
	Subject     string   `json:"subject"`
	Priority    Priority `json:"priority"`
	Product     string   `json:"product,omitempty"`
	ApplianceID string   `json:"appliance_id,omitempty"`
}

// PhotoAddedPayload: a stored photo.
type PhotoAddedPayload struct {
	PhotoID     string `json:"photo_id"`
	ContentType string `json:"content_type"`
	Width       int    `json:"width,omitempty"`
	Height      int    `json:"height,omitempty"`
	Bytes       int64  `json:"bytes"`
}

// CallPayload: call_requested, call_started, call_missed.
type CallPayload struct {
	CallID string `json:"call_id"`
	Media  string `json:"media,omitempty"` // audio | video
	Skill  string `json:"skill,omitempty"`
	Agent  string `json:"agent,omitempty"`
	Reason string `json:"reason,omitempty"` // why a call was missed
}

// CallEndedPayload: a call that connected, ended.
type CallEndedPayload struct {
	CallID          string `json:"call_id"`
	DurationSeconds int    `json:"duration_seconds"`
	HungUpBy        string `json:"hung_up_by"`
	// RecordingNode, set when the call was recorded (the customer
	// consented), is the gateway node whose --record-dir holds the
	// recording in the call's directory (one WebM file per party), kept
	// for --record-retention.
	RecordingNode string `json:"recording_node,omitempty"`
}

// DiagnosticPayload: one diagnostic frame from an appliance.
type DiagnosticPayload struct {
	ApplianceID string             `json:"appliance_id"`
	Serial      string             `json:"serial"`
	Seq         uint64             `json:"seq"`
	At          time.Time          `json:"at"`
	Readings    map[string]float64 `json:"readings,omitempty"`
	FaultCodes  []string           `json:"fault_codes,omitempty"`
}

// FaultPayload: a fault a rule recognised.
type FaultPayload struct {
	ApplianceID string `json:"appliance_id"`
	Code        string `json:"code"`
	Description string `json:"description,omitempty"`
	Action      string `json:"action,omitempty"`
}

// PartOrderedPayload: a replacement part was ordered.
type PartOrderedPayload struct {
	SKU      string `json:"sku"`
	Quantity int    `json:"quantity"`
	OrderID  string `json:"order_id,omitempty"`
}

// SalesLeadPayload: the unit can't be repaired; sales takes over.
type SalesLeadPayload struct {
	ApplianceID string `json:"appliance_id,omitempty"`
	Reason      string `json:"reason"`
}

// TechnicianPayload: technician_dispatched, _arriving, _arrived.
type TechnicianPayload struct {
	// TechnicianID is empty on a technician_dispatched that asks for a
	// technician by Skill before one is picked (a fault rule).
	TechnicianID string `json:"technician_id"`
	Skill        string `json:"skill,omitempty"`
	ETASeconds   int    `json:"eta_seconds,omitempty"`
	DistanceM    int    `json:"distance_m,omitempty"`
	// OfferID and Stage say which dispatch step a technician_dispatched
	// event records (offered, accepted, declined, expired, exhausted);
	// ExpiresAt is when an offered job lapses unless accepted.
	OfferID   string     `json:"offer_id,omitempty"`
	Stage     string     `json:"stage,omitempty"`
	ExpiresAt *time.Time `json:"expires_at,omitempty"`
}

// PickupOfferedPayload: pick the part up at a store.
type PickupOfferedPayload struct {
	StoreID   string `json:"store_id"`
	StoreName string `json:"store_name,omitempty"`
	SKU       string `json:"sku,omitempty"`
	HoldID    string `json:"hold_id,omitempty"`
}

// OfferPayload: an offer to the customer.
type OfferPayload struct {
	Text      string     `json:"text"`
	Options   []string   `json:"options,omitempty"`
	ExpiresAt *time.Time `json:"expires_at,omitempty"`
}

// FollowUpPayload: follow_up_scheduled and follow_up_due.
type FollowUpPayload struct {
	FollowUpID string    `json:"follow_up_id"`
	At         time.Time `json:"at"`
	Action     string    `json:"action"`
	Note       string    `json:"note,omitempty"`
	Offer      string    `json:"offer,omitempty"`
}

// PushSentPayload: a notification went out (or failed).
type PushSentPayload struct {
	NotificationID string `json:"notification_id"`
	Kind           string `json:"kind"`
	Recipient      string `json:"recipient"`
	Devices        int    `json:"devices"`
	Status         string `json:"status"` // sent | failed | pruned
	// Failed and Pruned count the devices it did not reach: given up on,
	// or removed because their token is dead. Reason says why (an FCM
	// error code, an HTTP status), never a token.
	Failed   int    `json:"failed,omitempty"`
	Pruned   int    `json:"pruned,omitempty"`
	Attempts int    `json:"attempts,omitempty"`
	Reason   string `json:"reason,omitempty"`
}

// StatusChangedPayload: the ticket's status or owner changed.
type StatusChangedPayload struct {
	From       TicketStatus `json:"from,omitempty"`
	To         TicketStatus `json:"to,omitempty"`
	Assignee   *string      `json:"assignee,omitempty"`
	Technician *string      `json:"technician,omitempty"`
	Queue      *string      `json:"queue,omitempty"`
	Priority   *Priority    `json:"priority,omitempty"`
}

// IdentityLinkedPayload: a handle now belongs to the customer.
type IdentityLinkedPayload struct {
	Channel    string `json:"channel"`
	Handle     string `json:"handle"`
	MergedFrom string `json:"merged_from,omitempty"`
}
