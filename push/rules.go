package push

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strconv"
	"time"

	"github.com/switchboard/switchboard/api"
	"github.com/switchboard/switchboard/state"
	"github.com/switchboard/switchboard/ticket"
)

const (
	groupRules = "push-rules"
	// rulesBatch is how many events one read takes; their notifications
	// go to the outbox in one append.
	rulesBatch = 256
	// snippet bounds the message text shown on a lock screen: FCM and
	// APNs payloads are at most 4 KiB, and a lock screen shows two lines.
	snippet = 140
)

// Rules turns ticket events into notifications. Run one per node; nodes
// share the events through the consumer group "push-rules", created at
// "$" the first time so a new deployment does not notify about history.
type Rules struct {
	svc      *Service
	consumer string
	log      *slog.Logger
	ready    chan struct{}
}

// Rules returns the rules worker for this node.
func (s *Service) Rules(consumer string) *Rules {
	return &Rules{svc: s, consumer: consumer, log: s.log.With("consumer", consumer), ready: make(chan struct{})}
}

// Ready is closed once Run has joined its consumer group: events appended
// after it are turned into notifications.
func (r *Rules) Ready() <-chan struct{} { return r.ready }

// Run reads events until ctx ends. Each batch's notifications are
// appended to the outbox before the events are acknowledged, so a crash
// between the two repeats them rather than losing them.
func (r *Rules) Run(ctx context.Context) error {
	st := r.svc.st
	if err := st.XGroupCreate(ctx, ticket.StreamEvents, groupRules, "$"); err != nil {
		return err
	}
	close(r.ready)
	var lastClaim time.Time
	for ctx.Err() == nil {
		var es []state.Entry
		var err error
		if time.Since(lastClaim) > r.svc.cfg.ClaimIdle/2 {
			lastClaim = time.Now()
			es, err = st.XAutoClaim(ctx, ticket.StreamEvents, groupRules, r.consumer, r.svc.cfg.ClaimIdle, rulesBatch)
		}
		if err == nil && len(es) == 0 {
			es, err = st.XReadGroup(ctx, ticket.StreamEvents, groupRules, r.consumer, rulesBatch, readBlock)
		}
		if err == nil && len(es) > 0 {
			err = r.apply(ctx, es)
		}
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, state.ErrClosed) {
				return nil
			}
			r.log.Warn("push rules", "err", err)
			sleepCtx(ctx, time.Second)
		}
	}
	return nil
}

func (r *Rules) apply(ctx context.Context, es []state.Entry) error {
	var out []Notification
	skipped := 0 // counted once the batch is done: a failed one is read again
	ids := make([]string, 0, len(es))
	for _, e := range es {
		ids = append(ids, e.ID)
		ev, err := ticket.DecodeEvent(e)
		if err != nil {
			r.log.Error("push rules: undecodable event, skipped", "id", e.ID, "err", err)
			continue
		}
		for _, n := range Notifications(ev) {
			if err := n.check(); err != nil {
				r.log.Warn("push rules: notification refused, skipped", "event", e.ID, "err", err)
				continue
			}
			live, err := r.svc.live(ctx, n)
			if err != nil {
				return err
			}
			if live {
				skipped++
				continue // the open feed shows it; no second buzz
			}
			out = append(out, n)
		}
	}
	if err := r.svc.Enqueue(ctx, out...); err != nil {
		return err
	}
	if err := r.svc.st.XAck(ctx, ticket.StreamEvents, groupRules, ids...); err != nil {
		return err
	}
	r.svc.stats.skipped.Add(uint64(skipped))
	return nil
}

// live reports whether n's recipient has the live feed open, so the app
// shows the event itself. A ringing call still goes out: the app may be
// in the background with its socket not yet closed by the OS.
func (s *Service) live(ctx context.Context, n Notification) (bool, error) {
	if s.presence == nil || n.Kind == KindCallIncoming {
		return false, nil
	}
	return s.presence.Online(ctx, n.Recipient)
}

// Notifications is what an event should notify, and to whom: the rules
// of the story. Each notification's ID derives from the event, so the
// same event always yields the same IDs.
func Notifications(ev *api.Event) []Notification {
	if ev.TicketID == "" || ev.CustomerID == "" {
		return nil
	}
	mk := func(k Kind, to string, params map[string]string) Notification {
		return Notification{ID: "pn_" + ev.ID + "_" + string(k), Kind: k, Recipient: to, TicketID: ev.TicketID, Params: params}
	}
	cust := ev.CustomerID
	switch ev.Type {
	case api.EventMessage:
		var p api.MessagePayload
		if json.Unmarshal(ev.Payload, &p) != nil || ev.Actor.Role != "agent" {
			return nil // the customer's own messages, and ingested ones, do not buzz them
		}
		return []Notification{mk(KindAgentReplied, cust, map[string]string{"agent": ev.Actor.ID, "text": clip(p.Text, snippet)})}
	case api.EventCallRequested:
		var p api.CallPayload
		if json.Unmarshal(ev.Payload, &p) != nil || ev.Actor.Role != "agent" {
			return nil // a customer's own request does not ring their phone
		}
		return []Notification{mk(KindCallIncoming, cust, map[string]string{"call_id": p.CallID, "media": p.Media})}
	case api.EventCallMissed:
		var p api.CallPayload
		if json.Unmarshal(ev.Payload, &p) != nil {
			return nil
		}
		return []Notification{mk(KindCallMissed, cust, map[string]string{"call_id": p.CallID, "media": p.Media})}
	case api.EventTechnicianDispatched, api.EventTechnicianArriving, api.EventTechnicianArrived:
		var p api.TechnicianPayload
		if json.Unmarshal(ev.Payload, &p) != nil {
			return nil
		}
		params := map[string]string{"technician": p.TechnicianID, "ticket": ev.TicketID}
		switch ev.Type {
		case api.EventTechnicianDispatched:
			return []Notification{mk(KindTechDispatched, cust, params), mk(KindJobAssigned, p.TechnicianID, params)}
		case api.EventTechnicianArriving:
			params["minutes"] = strconv.Itoa(max(1, (p.ETASeconds+59)/60))
			return []Notification{mk(KindTechArriving, cust, params)}
		}
		return []Notification{mk(KindTechArrived, cust, params)}
	case api.EventPartOrdered:
		var p api.PartOrderedPayload
		if json.Unmarshal(ev.Payload, &p) != nil {
			return nil
		}
		return []Notification{mk(KindPartShipped, cust, map[string]string{"sku": p.SKU})}
	case api.EventPickupOffered:
		var p api.PickupOfferedPayload
		if json.Unmarshal(ev.Payload, &p) != nil {
			return nil
		}
		store := p.StoreName
		if store == "" {
			store = p.StoreID
		}
		return []Notification{mk(KindPickupReady, cust, map[string]string{"store": store, "hold": p.HoldID})}
	case api.EventFollowUpDue:
		var p api.FollowUpPayload
		if json.Unmarshal(ev.Payload, &p) != nil || p.Offer == "" {
			return nil
		}
		return []Notification{mk(KindFollowUpOffer, cust, map[string]string{"offer": clip(p.Offer, snippet)})}
	}
	return nil
}
