package mobile

import (
	"context"
	"time"

	"github.com/switchboard/switchboard/api"
	sdk "github.com/switchboard/switchboard/mobile-sdk"
)

// Paired is the answer to PairAppliance: the appliance and the relay
// token the app keeps (in the Keychain or Keystore) for its Relay.
type Paired struct {
	ApplianceID string
	Serial      string
	Model       string
	RelayToken  string
	// ExpiresAtUnix is the relay token's expiry in Unix seconds.
	ExpiresAtUnix int64
}

// PairAppliance claims the appliance with serial using the code it shows.
func (c *Client) PairAppliance(serial, code string) (*Paired, error) {
	ctx, cancel := context.WithTimeout(context.Background(), defaultTimeout)
	defer cancel()
	r, err := c.c.Pair(ctx, serial, code)
	if err != nil {
		return nil, wrap(err)
	}
	return &Paired{ApplianceID: r.Appliance.ID, Serial: r.Appliance.Serial, Model: r.Appliance.Model, RelayToken: r.Token, ExpiresAtUnix: r.ExpiresAt.Unix()}, nil
}

// Relay carries one appliance's signed frames, keeping them while offline.
type Relay struct{ r *sdk.Relay }

// NewRelay returns a relay for a paired appliance; buffer bounds the
// frames kept offline (0: 10,000).
func (c *Client) NewRelay(applianceID, relayToken string, expiresAtUnix int64, buffer int) (*Relay, error) {
	r, err := c.c.NewRelay(applianceID, api.RelayToken{Token: relayToken, ExpiresAt: time.Unix(expiresAtUnix, 0)}, buffer)
	if err != nil {
		return nil, err
	}
	return &Relay{r: r}, nil
}

// AddFrame keeps one frame as the appliance signed it (both base64).
func (r *Relay) AddFrame(frame, sig string) { r.r.Add(api.SignedFrame{Frame: frame, Sig: sig}) }

// Pending is the number of frames waiting to be sent.
func (r *Relay) Pending() int { return r.r.Pending() }

// Flush sends what is buffered and returns how many frames were accepted.
func (r *Relay) Flush() (int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), defaultTimeout)
	defer cancel()
	res, err := r.r.Flush(ctx)
	return res.Accepted, wrap(err)
}

// RelayToken is the current relay token, for the app to persist after a
// renewal.
func (r *Relay) RelayToken() string { return r.r.Token().Token }

// Refresh renews the relay token now.
func (r *Relay) Refresh() error {
	ctx, cancel := context.WithTimeout(context.Background(), defaultTimeout)
	defer cancel()
	return wrap(r.r.Refresh(ctx))
}
