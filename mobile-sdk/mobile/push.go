package mobile

import (
	"context"

	"github.com/switchboard/switchboard/api"
)

// RegisterFCMDevice registers this installation with its FCM registration
// token; platform is "android" or "ios". Call it at start and from
// onNewToken / messaging(_:didReceiveRegistrationToken:).
func (c *Client) RegisterFCMDevice(installationID, platform, fcmToken, appVersion, locale string) error {
	ctx, cancel := context.WithTimeout(context.Background(), defaultTimeout)
	defer cancel()
	_, err := c.c.RegisterDevice(ctx, installationID, api.DeviceRegistration{
		Platform: platform, Token: fcmToken, AppVersion: appVersion, Locale: locale})
	return wrap(err)
}

// UnregisterDevice removes this installation, at sign-out.
func (c *Client) UnregisterDevice(installationID string) error {
	ctx, cancel := context.WithTimeout(context.Background(), defaultTimeout)
	defer cancel()
	return wrap(c.c.UnregisterDevice(ctx, installationID))
}

// SetQuietHours sets the user's quiet hours ("22:00" to "07:00" in an IANA
// time zone); only urgent notifications pass during them.
func (c *Client) SetQuietHours(enabled bool, start, end, timeZone string) error {
	ctx, cancel := context.WithTimeout(context.Background(), defaultTimeout)
	defer cancel()
	_, err := c.c.SetPushSettings(ctx, api.PushSettings{QuietHours: api.QuietHours{Enabled: enabled, Start: start, End: end, TimeZone: timeZone}})
	return wrap(err)
}
