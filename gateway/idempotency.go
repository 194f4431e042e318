package gateway

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/switchboard/switchboard/api"
	"github.com/switchboard/switchboard/state"
)

const (
	headerIdempotencyKey = "Idempotency-Key"
	headerReplayed       = "Idempotent-Replayed"
	// maxIdempotencyKeyLen follows Stripe's limit; keys are usually UUIDs.
	maxIdempotencyKeyLen = 255
	// idempotencyPendingTTL outlives the longest request (WriteTimeout plus
	// margin) so a node that dies mid-request frees the key soon after.
	idempotencyPendingTTL = 2 * time.Minute
)

// idemRecord is what the state seam keeps for one Idempotency-Key.
type idemRecord struct {
	Done        bool   `json:"done"`
	Fingerprint string `json:"fp"`
	Status      int    `json:"status,omitempty"`
	ContentType string `json:"ct,omitempty"`
	Location    string `json:"loc,omitempty"`
	Body        []byte `json:"body,omitempty"`
}

// idempotent makes a creating POST safe to retry. The same key from the
// same subject with the same method, path and body within IdempotencyTTL
// replays the first response with no second side effect; the same key with
// a different request is 422; a retry that races the first is 409. Server
// errors (5xx) and 429s are not remembered, so the client's retry runs
// again.
func (s *Server) idempotent(c *fiber.Ctx) error {
	key := c.Get(headerIdempotencyKey)
	if key == "" {
		return c.Next()
	}
	if len(key) > maxIdempotencyKeyLen {
		return problem(400, api.CodeValidation, "Idempotency-Key is longer than 255 characters")
	}
	scope := "ip:" + c.IP()
	if cl := claimsOf(c); cl != nil {
		scope = "sub:" + cl.Subject
	}
	sk := "idem:" + digest(scope, key)
	fp := digest(c.Method(), c.Path(), string(c.Body()))
	ctx := c.UserContext()

	pending, _ := json.Marshal(idemRecord{Fingerprint: fp})
	won, err := s.deps.Store.SetNX(ctx, sk, pending, idempotencyPendingTTL)
	if err != nil {
		return err
	}
	if !won {
		return s.replay(c, sk, fp)
	}

	if err := c.Next(); err != nil {
		if herr := s.app.ErrorHandler(c, err); herr != nil {
			return herr
		}
	}
	res := c.Response()
	// A 429 says "retry later", as a 5xx does: the retry must run, not
	// replay the refusal for IdempotencyTTL.
	if res.StatusCode() >= 500 || res.StatusCode() == fiber.StatusTooManyRequests {
		_, err := s.deps.Store.CompareAndDelete(ctx, sk, pending)
		return err
	}
	done, _ := json.Marshal(idemRecord{
		Done:        true,
		Fingerprint: fp,
		Status:      res.StatusCode(),
		ContentType: string(res.Header.ContentType()),
		Location:    string(res.Header.Peek(fiber.HeaderLocation)),
		Body:        res.Body(),
	})
	if _, err := s.deps.Store.CompareAndSwap(ctx, sk, pending, done, s.cfg.IdempotencyTTL); err != nil {
		// The work is done and answered; failing to remember it only means a
		// retry would be treated as new after the pending record expires.
		s.log.Warn("idempotency record not saved", "err", err, "request_id", requestID(c))
	}
	return nil
}

// replay answers a repeated key from its record.
func (s *Server) replay(c *fiber.Ctx, sk, fp string) error {
	raw, err := s.deps.Store.Get(c.UserContext(), sk)
	if errors.Is(err, state.ErrNotFound) {
		// The first attempt failed with a 5xx and let go of the key
		// between our SetNX and this Get: ask the client to retry.
		return &problemError{status: 409, code: api.CodeIdempotencyPending, detail: "a request with this Idempotency-Key is in progress", retryAfter: 1}
	}
	if err != nil {
		return err
	}
	var rec idemRecord
	if err := json.Unmarshal(raw, &rec); err != nil {
		return err
	}
	if rec.Fingerprint != fp {
		return problem(422, api.CodeIdempotencyMismatch, "this Idempotency-Key was used with a different request")
	}
	if !rec.Done {
		return &problemError{status: 409, code: api.CodeIdempotencyPending, detail: "a request with this Idempotency-Key is in progress", retryAfter: 1}
	}
	c.Set(headerReplayed, "true")
	if rec.Location != "" {
		c.Set(fiber.HeaderLocation, rec.Location)
	}
	c.Set(fiber.HeaderContentType, rec.ContentType)
	return c.Status(rec.Status).Send(rec.Body)
}

// digest hashes parts with separators so ("ab","c") != ("a","bc").
func digest(parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil))
}
