package sdk

import (
	"context"
	"net/http"
	"net/url"

	"github.com/switchboard/switchboard/api"
)

// PlaceCall requests a call for a ticket. key is an Idempotency-Key (a
// retry with the same key returns the same call); empty sends none. The
// WebRTC side (tracks, data channel, reconnect) is in package call.
func (c *Client) PlaceCall(ctx context.Context, req api.PlaceCallRequest, key string) (*api.PlacedCall, error) {
	var out api.PlacedCall
	if err := c.Send(ctx, Request{Method: http.MethodPost, Path: "/v1/calls", Body: req, IdempotencyKey: key}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Call returns a call with its queue position and expected wait.
func (c *Client) Call(ctx context.Context, id string) (*api.Call, error) {
	var out api.Call
	if err := c.Do(ctx, http.MethodGet, "/v1/calls/"+url.PathEscape(id), nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// EndCall hangs up a connected call or abandons a waiting one.
func (c *Client) EndCall(ctx context.Context, id string) (*api.Call, error) {
	var out api.Call
	if err := c.Do(ctx, http.MethodDelete, "/v1/calls/"+url.PathEscape(id), nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// RequestCallBack stops waiting and asks for a call-back instead.
func (c *Client) RequestCallBack(ctx context.Context, id string, req api.CallBackRequest) error {
	return c.Do(ctx, http.MethodPost, "/v1/calls/"+url.PathEscape(id)+"/callback", req, nil)
}

// SetAgentStatus sets an agent's availability.
func (c *Client) SetAgentStatus(ctx context.Context, status api.AgentStatus) (*api.Agent, error) {
	var out api.Agent
	if err := c.Do(ctx, http.MethodPut, "/v1/agents/me/status", api.AgentStatusRequest{Status: status}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// AccessToken returns a fresh access token (refreshed when close to
// expiry), for connections that carry it themselves (signaling).
func (c *Client) AccessToken(ctx context.Context) (string, error) { return c.freshAccess(ctx) }

// BaseURL is the gateway's URL.
func (c *Client) BaseURL() *url.URL { u := *c.base; return &u }
