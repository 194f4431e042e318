package push

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/switchboard/switchboard/api"
	"github.com/switchboard/switchboard/state"
)

// MaxDevices bounds one user's registered devices: a phone, a tablet, a
// watch and a handful of browser consoles fit with room to spare, and it
// bounds the fan-out of one notification and the size of the user record.
const MaxDevices = 20

// casRetries bounds the compare-and-swap loop on a user record. Writers
// race only when one user registers several devices at the same moment.
const casRetries = 16

// device is a registered device as stored: with its secret token.
type device struct {
	InstallationID string                   `json:"iid"`
	Platform       string                   `json:"platform"`
	Token          string                   `json:"token,omitempty"`
	Subscription   *api.WebPushSubscription `json:"sub,omitempty"`
	AppVersion     string                   `json:"app_version,omitempty"`
	Locale         string                   `json:"locale,omitempty"`
	UpdatedAt      time.Time                `json:"updated_at"`
}

// secret is what the push service knows the device by.
func (d *device) secret() string {
	if d.Subscription != nil {
		return d.Subscription.Endpoint
	}
	return d.Token
}

// public is the device as the API shows it: the token reduced to a hint.
func (d *device) public() api.Device {
	return api.Device{InstallationID: d.InstallationID, Platform: d.Platform, TokenHint: hint(d.secret()),
		AppVersion: d.AppVersion, Locale: d.Locale, UpdatedAt: d.UpdatedAt}
}

// hint shows the last 6 characters of a secret: enough for a person to
// tell two devices apart, far too little to push with.
func hint(s string) string {
	if len(s) <= 12 {
		return "…"
	}
	return "…" + s[len(s)-6:]
}

// userRecord is everything push keeps about one user, under one key so a
// notification costs one read: devices and quiet hours.
type userRecord struct {
	Devices []device       `json:"devices,omitempty"`
	Quiet   api.QuietHours `json:"quiet"`
}

func keyUser(user string) string { return "push:u:" + user }

// loadUser returns the user's record and its raw bytes (nil when absent),
// for compare-and-swap.
func (s *Service) loadUser(ctx context.Context, user string) (*userRecord, []byte, error) {
	raw, err := s.st.Get(ctx, keyUser(user))
	if errors.Is(err, state.ErrNotFound) {
		return &userRecord{}, nil, nil
	}
	if err != nil {
		return nil, nil, err
	}
	var u userRecord
	if err := json.Unmarshal(raw, &u); err != nil {
		return nil, nil, fmt.Errorf("push user %s: corrupt record: %w", user, err)
	}
	return &u, raw, nil
}

// updateUser applies fn to the user's record atomically (compare and
// swap, retried). fn returns false to write nothing.
func (s *Service) updateUser(ctx context.Context, user string, fn func(*userRecord) (bool, error)) error {
	for range casRetries {
		u, old, err := s.loadUser(ctx, user)
		if err != nil {
			return err
		}
		write, err := fn(u)
		if err != nil || !write {
			return err
		}
		var ok bool
		if len(u.Devices) == 0 && !u.Quiet.Enabled {
			if old == nil {
				return nil
			}
			ok, err = s.st.CompareAndDelete(ctx, keyUser(user), old)
		} else {
			raw, merr := json.Marshal(u)
			if merr != nil {
				return merr
			}
			ok, err = s.st.CompareAndSwap(ctx, keyUser(user), old, raw, 0)
		}
		if err != nil {
			return err
		}
		if ok {
			return nil
		}
	}
	return ErrConflict
}

// Register adds or replaces the device installationID of user. Tokens are
// secrets: the answer carries only a hint, and nothing here logs one.
func (s *Service) Register(ctx context.Context, user, installationID string, reg api.DeviceRegistration) (api.Device, error) {
	if err := checkUser(user); err != nil {
		return api.Device{}, err
	}
	if err := ValidateRegistration(installationID, reg, s.cfg.AllowInsecureWebPush); err != nil {
		return api.Device{}, err
	}
	d := device{InstallationID: installationID, Platform: reg.Platform, Token: reg.Token, Subscription: reg.Subscription,
		AppVersion: reg.AppVersion, Locale: reg.Locale, UpdatedAt: s.now().UTC()}
	err := s.updateUser(ctx, user, func(u *userRecord) (bool, error) {
		// A token moves with its app: if another installation of this
		// user holds the same token (reinstall), that one is stale.
		u.Devices = slices.DeleteFunc(u.Devices, func(o device) bool {
			return o.InstallationID == installationID || o.secret() == d.secret()
		})
		if len(u.Devices) >= MaxDevices {
			return false, fmt.Errorf("%w: at most %d devices per user; delete one first", ErrTooManyDevices, MaxDevices)
		}
		u.Devices = append(u.Devices, d)
		return true, nil
	})
	if err != nil {
		return api.Device{}, err
	}
	s.log.Info("push device registered", "user", user, "installation", installationID, "platform", reg.Platform)
	return d.public(), nil
}

// Unregister removes the device installationID of user; ErrNotFound if the
// user has no such device (whoever else may have one).
func (s *Service) Unregister(ctx context.Context, user, installationID string) error {
	if err := checkUser(user); err != nil {
		return err
	}
	if err := checkInstallation(installationID); err != nil {
		return ErrNotFound
	}
	found := false
	err := s.updateUser(ctx, user, func(u *userRecord) (bool, error) {
		n := len(u.Devices)
		u.Devices = slices.DeleteFunc(u.Devices, func(o device) bool { return o.InstallationID == installationID })
		found = len(u.Devices) < n
		return found, nil
	})
	if err != nil {
		return err
	}
	if !found {
		return ErrNotFound
	}
	return nil
}

// Devices lists user's devices, tokens reduced to hints.
func (s *Service) Devices(ctx context.Context, user string) (api.DeviceList, error) {
	if err := checkUser(user); err != nil {
		return api.DeviceList{}, err
	}
	u, _, err := s.loadUser(ctx, user)
	if err != nil {
		return api.DeviceList{}, err
	}
	out := api.DeviceList{Devices: make([]api.Device, 0, len(u.Devices))}
	for i := range u.Devices {
		out.Devices = append(out.Devices, u.Devices[i].public())
	}
	return out, nil
}

// prune removes a device whose token the push service refused for good,
// but only if it still has that token: an app that re-registered with a
// fresh token in the meantime keeps it.
func (s *Service) prune(ctx context.Context, user string, d *device) (bool, error) {
	removed := false
	err := s.updateUser(ctx, user, func(u *userRecord) (bool, error) {
		n := len(u.Devices)
		u.Devices = slices.DeleteFunc(u.Devices, func(o device) bool {
			return o.InstallationID == d.InstallationID && o.secret() == d.secret()
		})
		removed = len(u.Devices) < n
		return removed, nil
	})
	return removed, err
}
