package ticket

import (
	"bytes"
	"encoding/json"
	"fmt"
	"unicode/utf8"

	"github.com/switchboard/switchboard/api"
)

// Bounds on what one event may carry. Events are read by every console and
// kept forever, so they stay small; photos and recordings are referenced,
// not embedded.
const (
	// MaxText is the longest message, note or offer text, in bytes
	// (about two pages; SMS-style channels are far below it).
	MaxText = 8 << 10
	// MaxPayload bounds any event's payload JSON.
	MaxPayload = 16 << 10
	// maxShort bounds IDs, names and codes inside payloads.
	maxShort = 256
	// maxList bounds lists inside payloads (fault codes, options, tags).
	maxList = 64
)

// payloadTypes maps every known event type to its payload struct.
var payloadTypes = map[api.EventType]func() any{
	api.EventMessage:              func() any { return new(api.MessagePayload) },
	api.EventNote:                 func() any { return new(api.NotePayload) },
	api.EventTicketOpened:         func() any { return new(api.TicketOpenedPayload) },
	api.EventPhotoAdded:           func() any { return new(api.PhotoAddedPayload) },
	api.EventCallRequested:        func() any { return new(api.CallPayload) },
	api.EventCallStarted:          func() any { return new(api.CallPayload) },
	api.EventCallMissed:           func() any { return new(api.CallPayload) },
	api.EventCallEnded:            func() any { return new(api.CallEndedPayload) },
	api.EventDiagnostic:           func() any { return new(api.DiagnosticPayload) },
	api.EventFaultDetected:        func() any { return new(api.FaultPayload) },
	api.EventPartOrdered:          func() any { return new(api.PartOrderedPayload) },
	api.EventSalesLeadOpened:      func() any { return new(api.SalesLeadPayload) },
	api.EventTechnicianDispatched: func() any { return new(api.TechnicianPayload) },
	api.EventTechnicianArriving:   func() any { return new(api.TechnicianPayload) },
	api.EventTechnicianArrived:    func() any { return new(api.TechnicianPayload) },
	api.EventPickupOffered:        func() any { return new(api.PickupOfferedPayload) },
	api.EventOfferMade:            func() any { return new(api.OfferPayload) },
	api.EventFollowUpScheduled:    func() any { return new(api.FollowUpPayload) },
	api.EventFollowUpDue:          func() any { return new(api.FollowUpPayload) },
	api.EventPushSent:             func() any { return new(api.PushSentPayload) },
	api.EventStatusChanged:        func() any { return new(api.StatusChangedPayload) },
	api.EventIdentityLinked:       func() any { return new(api.IdentityLinkedPayload) },
}

// KnownType reports whether t is an event type of the stream.
func KnownType(t api.EventType) bool { _, ok := payloadTypes[t]; return ok }

// validatePayload checks raw against its type's struct strictly (no
// unknown fields, required fields present, sizes bounded) and returns it
// compacted, ready to store.
func validatePayload(t api.EventType, raw json.RawMessage) (json.RawMessage, error) {
	mk, ok := payloadTypes[t]
	if !ok {
		return nil, fmt.Errorf("%w: unknown event type %q", ErrInvalid, truncate(string(t), 40))
	}
	if len(raw) > MaxPayload {
		return nil, fmt.Errorf("%w: payload is larger than %d bytes", ErrInvalid, MaxPayload)
	}
	if len(bytes.TrimSpace(raw)) == 0 {
		raw = json.RawMessage("{}")
	}
	v := mk()
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return nil, fmt.Errorf("%w: payload does not match type %s: %s", ErrInvalid, t, jsonProblem(err))
	}
	if dec.More() {
		return nil, fmt.Errorf("%w: payload holds more than one JSON value", ErrInvalid)
	}
	if err := checkPayload(v); err != nil {
		return nil, fmt.Errorf("%w: %s payload: %v", ErrInvalid, t, err)
	}
	out, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	return out, nil
}

// checkPayload enforces the rules a struct tag cannot say.
func checkPayload(v any) error {
	switch p := v.(type) {
	case *api.MessagePayload:
		return text("text", p.Text, true)
	case *api.NotePayload:
		return text("text", p.Text, true)
	case *api.OfferPayload:
		if err := text("text", p.Text, true); err != nil {
			return err
		}
		return list("options", p.Options)
	case *api.PickupOfferedPayload:
		return short("store_id", p.StoreID, true)
	case *api.PhotoAddedPayload:
		return short("photo_id", p.PhotoID, true)
	case *api.CallPayload:
		return short("call_id", p.CallID, true)
	case *api.CallEndedPayload:
		return short("call_id", p.CallID, true)
	case *api.DiagnosticPayload:
		if err := short("serial", p.Serial, true); err != nil {
			return err
		}
		if len(p.Readings) > maxList {
			return fmt.Errorf("more than %d readings", maxList)
		}
		return list("fault_codes", p.FaultCodes)
	case *api.FaultPayload:
		return short("code", p.Code, true)
	case *api.PartOrderedPayload:
		if p.Quantity <= 0 || p.Quantity > 1000 {
			return fmt.Errorf("quantity must be 1 to 1000")
		}
		return short("sku", p.SKU, true)
	case *api.SalesLeadPayload:
		return text("reason", p.Reason, true)
	case *api.TechnicianPayload:
		if err := short("skill", p.Skill, false); err != nil {
			return err
		}
		return short("technician_id", p.TechnicianID, p.Skill == "")
	case *api.FollowUpPayload:
		return short("follow_up_id", p.FollowUpID, true)
	case *api.PushSentPayload:
		if p.Status != "sent" && p.Status != "failed" && p.Status != "pruned" {
			return fmt.Errorf("status must be sent, failed or pruned")
		}
		if err := short("reason", p.Reason, false); err != nil {
			return err
		}
		return short("recipient", p.Recipient, true)
	case *api.IdentityLinkedPayload:
		if err := short("channel", p.Channel, true); err != nil {
			return err
		}
		return short("handle", p.Handle, true)
	}
	return nil
}

func text(field, s string, required bool) error {
	switch {
	case required && s == "":
		return fmt.Errorf("%s is required", field)
	case len(s) > MaxText:
		return fmt.Errorf("%s is longer than %d bytes", field, MaxText)
	case !utf8.ValidString(s):
		return fmt.Errorf("%s is not valid UTF-8", field)
	}
	return nil
}

func short(field, s string, required bool) error {
	if len(s) > maxShort {
		return fmt.Errorf("%s is longer than %d bytes", field, maxShort)
	}
	return text(field, s, required)
}

func list(field string, l []string) error {
	if len(l) > maxList {
		return fmt.Errorf("%s has more than %d entries", field, maxList)
	}
	for _, s := range l {
		if err := short(field, s, true); err != nil {
			return err
		}
	}
	return nil
}

func jsonProblem(err error) string {
	switch e := err.(type) {
	case *json.SyntaxError:
		return fmt.Sprintf("malformed JSON at byte %d", e.Offset)
	case *json.UnmarshalTypeError:
		return fmt.Sprintf("field %q has the wrong type", e.Field)
	}
	return truncate(err.Error(), 120)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
