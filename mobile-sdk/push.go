package sdk

import (
	"context"
	"net/http"

	"github.com/switchboard/switchboard/api"
)

// RegisterDevice registers (or refreshes) this installation as a push
// target. Call it at every app start and whenever FCM hands the app a new
// token (onNewToken): tokens rotate, and a stale one is pruned on the
// server the first time FCM calls it unregistered. installationID must be
// stable for the installation (a UUID kept in app storage, or the
// Firebase installation ID). PUT is idempotent, so a retry is safe.
func (c *Client) RegisterDevice(ctx context.Context, installationID string, reg api.DeviceRegistration) (*api.Device, error) {
	p, err := pathID(installationID)
	if err != nil {
		return nil, err
	}
	var d api.Device
	if err := c.Do(ctx, http.MethodPut, "/v1/me/devices/"+p, reg, &d); err != nil {
		return nil, err
	}
	return &d, nil
}

// UnregisterDevice removes this installation (at sign-out, so the next
// user of the phone does not get the last one's notifications).
func (c *Client) UnregisterDevice(ctx context.Context, installationID string) error {
	p, err := pathID(installationID)
	if err != nil {
		return err
	}
	return c.Do(ctx, http.MethodDelete, "/v1/me/devices/"+p, nil, nil)
}

// Devices lists the signed-in user's push targets (tokens as hints).
func (c *Client) Devices(ctx context.Context) (*api.DeviceList, error) {
	var l api.DeviceList
	if err := c.Do(ctx, http.MethodGet, "/v1/me/devices", nil, &l); err != nil {
		return nil, err
	}
	return &l, nil
}

// SetPushSettings replaces the signed-in user's push settings.
func (c *Client) SetPushSettings(ctx context.Context, s api.PushSettings) (*api.PushSettings, error) {
	var out api.PushSettings
	if err := c.Do(ctx, http.MethodPut, "/v1/me/push-settings", s, &out); err != nil {
		return nil, err
	}
	return &out, nil
}
