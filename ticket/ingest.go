package ticket

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/switchboard/switchboard/api"
	"github.com/switchboard/switchboard/auth"
)

const (
	// IngestMaxSkew is how old (or how far ahead) an ingest timestamp may
	// be: 5 minutes, as the issue asks and as Stripe and Slack do.
	IngestMaxSkew = 5 * time.Minute
	// ingestReplayTTL remembers used signatures for longer than the skew
	// window, so a captured request cannot be replayed while it is fresh.
	ingestReplayTTL = 2 * IngestMaxSkew
	// ingestDedupTTL remembers a channel's message IDs, so its retries
	// (hours later, after an outage) do not post twice.
	ingestDedupTTL = 7 * 24 * time.Hour
)

// WithIngestSecrets sets the per-channel HMAC secrets of POST
// /v1/ingest/{channel}. A channel without a secret does not exist.
func WithIngestSecrets(secrets map[string]string) Option {
	return func(s *Service) { s.ingestSecrets = secrets }
}

// IngestSignature is what a channel sends in the signature header:
// "sha256=" and the hex HMAC-SHA256, keyed with the channel's secret, of
// the timestamp, a dot, and the raw body.
func IngestSignature(secret, timestamp string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(timestamp))
	m.Write([]byte{'.'})
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// VerifyIngest checks a signed request before its body is even parsed:
// the channel exists, the timestamp (Unix seconds) is within
// IngestMaxSkew, the signature matches (constant time), and it was not
// seen before.
func (s *Service) VerifyIngest(ctx context.Context, channel, timestamp, signature string, body []byte) error {
	secret, ok := s.ingestSecrets[channel]
	if !ok || secret == "" {
		return ErrNotFound
	}
	ts, err := strconv.ParseInt(timestamp, 10, 64)
	if err != nil {
		return fmt.Errorf("%w: timestamp must be Unix seconds", ErrBadSignature)
	}
	if d := s.now().Sub(time.Unix(ts, 0)); d > IngestMaxSkew || d < -IngestMaxSkew {
		return fmt.Errorf("%w: timestamp is more than 5 minutes off", ErrBadSignature)
	}
	want := IngestSignature(secret, timestamp, body)
	if !hmac.Equal([]byte(want), []byte(signature)) {
		return fmt.Errorf("%w: signature does not match", ErrBadSignature)
	}
	fresh, err := s.st.SetNX(ctx, "ingest:sig:"+signature, []byte{1}, ingestReplayTTL)
	if err != nil {
		return err
	}
	if !fresh {
		return ErrReplayed
	}
	return nil
}

// Ingest records a message from an outside channel: it finds (or creates
// provisionally) the customer of the handle, the ticket (the one named, or
// the handle's open ticket on this channel, or a new one) and appends the
// message. A repeated external_id returns the first result.
func (s *Service) Ingest(ctx context.Context, channel string, req api.IngestRequest) (api.IngestResult, error) {
	for name, val := range map[string]string{"handle": req.Handle, "external_id": req.ExternalID} {
		if err := short(name, val, true); err != nil {
			return api.IngestResult{}, fmt.Errorf("%w: %v", ErrInvalid, err)
		}
	}
	if err := text("text", req.Text, true); err != nil {
		return api.IngestResult{}, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	h, err := normalizeHandle(channel, req.Handle)
	if err != nil {
		return api.IngestResult{}, err
	}
	// Within MaxText, a text may still make an event over MaxPayload once
	// JSON-encoded (an HTML mail: '<', '>' and '&' take six bytes there),
	// which Append refuses: the event is checked as Append will check it
	// before a customer or ticket is made for a message that would never
	// land on it.
	payload, _ := json.Marshal(api.MessagePayload{Text: req.Text, ExternalID: req.ExternalID, Handle: h})
	if _, err := validatePayload(api.EventMessage, payload); err != nil {
		return api.IngestResult{}, err
	}
	dedup := "ingest:ext:" + channel + ":" + req.ExternalID
	if raw, err := s.st.Get(ctx, dedup); err == nil {
		var res api.IngestResult
		if json.Unmarshal(raw, &res) == nil {
			res.Duplicate = true
			return res, nil
		}
	}
	cust, prov, err := s.Resolve(ctx, channel, req.Handle)
	if err != nil {
		return api.IngestResult{}, err
	}
	tid, err := s.ingestTicket(ctx, channel, cust, req)
	if err != nil {
		return api.IngestResult{}, err
	}
	ev, err := s.Append(ctx, api.Event{TicketID: tid, Type: api.EventMessage, Channel: channel,
		Actor: api.Actor{ID: channel + ":" + h, Role: string(auth.RoleCustomer)}, Payload: payload})
	if err != nil {
		return api.IngestResult{}, err
	}
	res := api.IngestResult{CustomerID: cust, Provisional: prov, TicketID: tid, EventID: ev.ID}
	raw, _ := json.Marshal(res)
	if err := s.st.Set(ctx, dedup, raw, ingestDedupTTL); err != nil {
		s.log.Warn("ingest dedup not saved", "err", err)
	}
	return res, nil
}

// ingestTicket picks the ticket an ingested message belongs to.
func (s *Service) ingestTicket(ctx context.Context, channel, cust string, req api.IngestRequest) (string, error) {
	if req.TicketID != "" {
		t, _, err := s.loadTicket(ctx, req.TicketID)
		if err != nil || t.CustomerID != cust {
			return "", ErrNotFound
		}
		return t.ID, nil
	}
	recent, err := s.st.ZRange(ctx, ixCustomer(cust), rangeAll(true, 0, 20))
	if err != nil {
		return "", err
	}
	for _, m := range recent {
		t, _, err := s.loadTicket(ctx, m.Member)
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			return "", err
		}
		if t.Channel == channel && (t.Status == api.StatusOpen || t.Status == api.StatusPending) {
			return t.ID, nil
		}
	}
	subject := strings.TrimSpace(req.Subject)
	if subject == "" {
		subject = "Message via " + channel
	}
	t, err := s.Open(ctx, System, api.OpenTicketRequest{CustomerID: cust, Subject: subject, Channel: channel})
	if err != nil {
		return "", err
	}
	return t.ID, nil
}
