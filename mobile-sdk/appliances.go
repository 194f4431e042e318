package sdk

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/switchboard/switchboard/api"
)

// Relay bounds. A frame is ~300 bytes on the wire, so the default buffer
// of 10,000 frames is 3 MB: a week of one frame a minute while the phone
// is away from the appliance's owner network, and small for a phone.
const (
	defaultRelayBuffer = 10_000
	// relayBatch is the gateway's most frames per request.
	relayBatch = 1000
	// relayRefreshBefore renews the relay token this long before it
	// expires, so an upload never starts with a token about to die.
	relayRefreshBefore = 2 * time.Minute
)

// Pair claims the appliance with serial using the code it shows, for the
// signed-in customer. The answer holds the relay token for NewRelay.
func (c *Client) Pair(ctx context.Context, serial, code string) (*api.PairResult, error) {
	var res api.PairResult
	if err := c.Send(ctx, Request{Method: http.MethodPost, Path: "/v1/appliances/pair", Body: api.PairRequest{Serial: serial, Code: code}}, &res); err != nil {
		return nil, err
	}
	return &res, nil
}

// ReleaseAppliance gives up the signed-in customer's ownership.
func (c *Client) ReleaseAppliance(ctx context.Context, applianceID string) error {
	id, err := pathID(applianceID)
	if err != nil {
		return err
	}
	return c.Do(ctx, http.MethodDelete, "/v1/appliances/"+id+"/owner", nil, nil)
}

// GrantDiagnostics lets agents see the appliance's live diagnostics for
// hours (0: the server's default of 72).
func (c *Client) GrantDiagnostics(ctx context.Context, applianceID string, hours int) (*api.Grant, error) {
	id, err := pathID(applianceID)
	if err != nil {
		return nil, err
	}
	var g api.Grant
	if err := c.Do(ctx, http.MethodPost, "/v1/appliances/"+id+"/grants", api.GrantRequest{Hours: hours}, &g); err != nil {
		return nil, err
	}
	return &g, nil
}

// RevokeDiagnostics ends the grant.
func (c *Client) RevokeDiagnostics(ctx context.Context, applianceID string) error {
	id, err := pathID(applianceID)
	if err != nil {
		return err
	}
	return c.Do(ctx, http.MethodDelete, "/v1/appliances/"+id+"/grants", nil, nil)
}

// Relay carries one appliance's signed frames to the gateway: frames are
// added as the appliance hands them over (Bluetooth, Wi-Fi Direct, ...),
// kept while the phone is offline, and sent in batches by Flush. Frames
// are opaque: the phone can neither read the secret nor alter a frame.
// It is safe for concurrent use.
type Relay struct {
	c    *Client
	id   string
	max  int
	mu   sync.Mutex
	tok  api.RelayToken
	buf  []api.SignedFrame
	lost int
	// flushing serialises Flush, so two flushes never send one frame twice.
	flushing sync.Mutex
}

// NewRelay returns a relay for the appliance with the token Pair (or
// RefreshRelayToken) gave; buffer bounds the frames kept offline (0: the
// default of 10,000). When full, the oldest frames go first: the newest
// say most about the appliance now.
func (c *Client) NewRelay(applianceID string, tok api.RelayToken, buffer int) (*Relay, error) {
	if _, err := pathID(applianceID); err != nil {
		return nil, err
	}
	if buffer <= 0 {
		buffer = defaultRelayBuffer
	}
	return &Relay{c: c, id: applianceID, tok: tok, max: buffer}, nil
}

// Add keeps frames for the next Flush.
func (r *Relay) Add(frames ...api.SignedFrame) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.buf = append(r.buf, frames...)
	if over := len(r.buf) - r.max; over > 0 {
		r.buf = append(r.buf[:0], r.buf[over:]...)
		r.lost += over
	}
}

// Pending is the number of frames waiting to be sent; Dropped the number
// the full buffer pushed out.
func (r *Relay) Pending() int { r.mu.Lock(); defer r.mu.Unlock(); return len(r.buf) }

// Dropped is the number of frames the full buffer pushed out.
func (r *Relay) Dropped() int { r.mu.Lock(); defer r.mu.Unlock(); return r.lost }

// Token is the current relay token, for the app to persist.
func (r *Relay) Token() api.RelayToken { r.mu.Lock(); defer r.mu.Unlock(); return r.tok }

// Flush sends the buffered frames in batches until the buffer is empty or
// a send fails. A batch the gateway already had (409) or refused as bad
// (422: a frame that does not verify will never verify) leaves the buffer;
// a network or server failure keeps it for the next Flush. The result
// sums what the gateway accepted.
func (r *Relay) Flush(ctx context.Context) (api.DiagnosticsResult, error) {
	r.flushing.Lock()
	defer r.flushing.Unlock()
	var total api.DiagnosticsResult
	for {
		r.mu.Lock()
		n := min(len(r.buf), relayBatch)
		batch := append([]api.SignedFrame(nil), r.buf[:n]...)
		r.mu.Unlock()
		if n == 0 {
			return total, nil
		}
		res, err := r.send(ctx, batch)
		switch {
		case err == nil:
			total.Accepted += res.Accepted
			total.Duplicates += res.Duplicates
		case Code(err) == api.CodeFramesReplayed:
			total.Duplicates += n
		case Code(err) == api.CodeBadFrame:
			r.drop(n)
			return total, err
		default:
			return total, err
		}
		r.drop(n)
	}
}

// drop removes the first n frames, which were sent (frames added during
// the send are behind them; frames pushed out by a full buffer are gone
// from the front already).
func (r *Relay) drop(n int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	n = min(n, len(r.buf))
	r.buf = append(r.buf[:0], r.buf[n:]...)
}

func (r *Relay) send(ctx context.Context, batch []api.SignedFrame) (api.DiagnosticsResult, error) {
	tok, err := r.fresh(ctx)
	if err != nil {
		return api.DiagnosticsResult{}, err
	}
	var res api.DiagnosticsResult
	req := Request{Method: http.MethodPost, Path: "/v1/appliances/" + r.id + "/diagnostics"}
	body, err := jsonBody(api.DiagnosticsBatch{Frames: batch})
	if err != nil {
		return res, err
	}
	err = r.c.send(ctx, req, body, tok, &res)
	if StatusCode(err) == http.StatusUnauthorized {
		// Expired early (a clock off): renew once and retry.
		if err := r.Refresh(ctx); err != nil {
			return res, err
		}
		err = r.c.send(ctx, req, body, r.Token().Token, &res)
	}
	return res, err
}

// Commands fetches the commands an agent sent the appliance through the
// phone (each once); the app hands them to the appliance.
func (r *Relay) Commands(ctx context.Context) ([]api.Command, error) {
	tok, err := r.fresh(ctx)
	if err != nil {
		return nil, err
	}
	var l api.CommandList
	if err := r.c.send(ctx, Request{Method: http.MethodGet, Path: "/v1/appliances/" + r.id + "/commands"}, nil, tok, &l); err != nil {
		return nil, err
	}
	return l.Commands, nil
}

// fresh returns a relay token good for a while, renewing it first if not.
func (r *Relay) fresh(ctx context.Context) (string, error) {
	t := r.Token()
	if r.c.now().Add(relayRefreshBefore).Before(t.ExpiresAt) {
		return t.Token, nil
	}
	if err := r.Refresh(ctx); err != nil {
		return "", err
	}
	return r.Token().Token, nil
}

// Refresh renews the relay token: with the current one while it lives,
// else with the signed-in owner's own token.
func (r *Relay) Refresh(ctx context.Context) error {
	var nt api.RelayToken
	req := Request{Method: http.MethodPost, Path: "/v1/appliances/" + r.id + "/relay-token"}
	cur := r.Token()
	err := errors.New("relay token expired")
	if r.c.now().Before(cur.ExpiresAt) {
		err = r.c.send(ctx, req, nil, cur.Token, &nt)
	}
	if err != nil {
		if err = r.c.Send(ctx, req, &nt); err != nil {
			return fmt.Errorf("switchboard: refresh relay token: %w", err)
		}
	}
	r.mu.Lock()
	r.tok = nt
	r.mu.Unlock()
	return nil
}

func jsonBody(v any) ([]byte, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("switchboard: encode request: %w", err)
	}
	return b, nil
}
