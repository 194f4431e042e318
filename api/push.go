package api

import "time"

// Push platforms a device registers for.
const (
	PlatformAndroid = "android" // FCM registration token
	PlatformIOS     = "ios"     // FCM registration token (APNs through FCM)
	PlatformWeb     = "web"     // Web Push subscription (RFC 8030), for agents' consoles
)

// WebPushSubscription is what a browser's PushManager.subscribe() returns
// (PushSubscription.toJSON()).
type WebPushSubscription struct {
	Endpoint string `json:"endpoint"`
	Keys     struct {
		P256DH string `json:"p256dh"`
		Auth   string `json:"auth"`
	} `json:"keys"`
}

// DeviceRegistration is the body of PUT /v1/me/devices/{installation_id}:
// where to reach one installation of an app. Exactly one of Token
// (android, ios) and Subscription (web) is set.
type DeviceRegistration struct {
	Platform     string               `json:"platform"`
	Token        string               `json:"token,omitempty"`
	Subscription *WebPushSubscription `json:"subscription,omitempty"`
	AppVersion   string               `json:"app_version,omitempty"`
	// Locale is a BCP 47 tag ("de-DE"); notifications use its language
	// when a template has it, English otherwise.
	Locale string `json:"locale,omitempty"`
}

// Device is a registered push target as the API shows it. The token is a
// secret (whoever has it can push to the phone): only its last characters
// are ever shown.
type Device struct {
	InstallationID string    `json:"installation_id"`
	Platform       string    `json:"platform"`
	TokenHint      string    `json:"token_hint"` // "…" and the last 6 characters
	AppVersion     string    `json:"app_version,omitempty"`
	Locale         string    `json:"locale,omitempty"`
	UpdatedAt      time.Time `json:"updated_at"`
}

// DeviceList is GET /v1/me/devices.
type DeviceList struct {
	Devices []Device `json:"devices"`
}

// QuietHours is a user's do-not-disturb window, daily, in their time
// zone: from Start to End ("22:00" to "07:00" spans midnight). Only
// urgent notifications (a ringing call, a technician at the door) pass
// during it; the rest wait until End.
type QuietHours struct {
	Enabled  bool   `json:"enabled"`
	Start    string `json:"start"`    // HH:MM
	End      string `json:"end"`      // HH:MM
	TimeZone string `json:"timezone"` // IANA, e.g. Europe/Berlin; empty means UTC
}

// PushSettings is GET/PUT /v1/me/push-settings.
type PushSettings struct {
	QuietHours QuietHours `json:"quiet_hours"`
}

// PushFailure is a notification that could not be delivered to some of
// its devices: it used up its attempts, or FCM refused it for good.
type PushFailure struct {
	ID             string    `json:"id"`
	NotificationID string    `json:"notification_id"`
	Kind           string    `json:"kind"`
	Recipient      string    `json:"recipient"`
	TicketID       string    `json:"ticket_id,omitempty"`
	Devices        int       `json:"devices"`
	Attempts       int       `json:"attempts"`
	LastError      string    `json:"last_error"`
	FailedAt       time.Time `json:"failed_at"`
}

// PushFailureList is GET /v1/push/failures.
type PushFailureList struct {
	Failures   []PushFailure `json:"failures"`
	NextCursor string        `json:"next_cursor,omitempty"`
}

// PrunedToken records a device removed because its push service said the
// token is no longer valid (FCM UNREGISTERED or INVALID_ARGUMENT, Web Push
// 404/410).
type PrunedToken struct {
	Recipient      string    `json:"recipient"`
	InstallationID string    `json:"installation_id"`
	Platform       string    `json:"platform"`
	TokenHint      string    `json:"token_hint"`
	Reason         string    `json:"reason"`
	NotificationID string    `json:"notification_id,omitempty"`
	PrunedAt       time.Time `json:"pruned_at"`
}

// PrunedTokenList is GET /v1/push/pruned.
type PrunedTokenList struct {
	Pruned     []PrunedToken `json:"pruned"`
	NextCursor string        `json:"next_cursor,omitempty"`
}
