package push

import (
	"encoding/base64"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/switchboard/switchboard/api"
)

// Bounds on a registration. All of it comes from a phone or a browser,
// so none of it is trusted.
const (
	// maxInstallationID: apps use a UUID (36) or Firebase installation
	// ID (22); 128 leaves room for a prefix.
	maxInstallationID = 128
	// maxToken: FCM registration tokens are about 160 characters today;
	// Google documents no maximum, so 4 KiB leaves room to grow.
	maxToken = 4096
	// maxEndpoint: push services' endpoint URLs are 200-500 bytes; 2 KiB
	// is the common URL limit.
	maxEndpoint = 2048
	// maxAppVersion and maxLocale: "12.4.1 (2031)", and the longest
	// BCP 47 tag in common use is under 20; RFC 5646 advises 35.
	maxAppVersion = 64
	maxLocale     = 35
	// maxUser bounds the subject a token names (auth caps it at 128).
	maxUser = 128
)

func checkUser(user string) error {
	if user == "" || len(user) > maxUser {
		return fmt.Errorf("%w: user: 1 to %d bytes", ErrInvalid, maxUser)
	}
	return nil
}

// checkInstallation allows what installation IDs are made of: letters,
// digits and - _ . :
func checkInstallation(id string) error {
	if id == "" || len(id) > maxInstallationID {
		return fmt.Errorf("%w: installation_id: 1 to %d characters", ErrInvalid, maxInstallationID)
	}
	for _, r := range id {
		if !isIDChar(r) {
			return fmt.Errorf("%w: installation_id: only letters, digits and - _ . :", ErrInvalid)
		}
	}
	return nil
}

func isIDChar(r rune) bool {
	return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.' || r == ':'
}

// ValidateRegistration checks a device registration from an app. Errors
// wrap ErrInvalid and never echo the token. allowHTTP lets a Web Push
// endpoint be plain http (tests and private deployments only: a real push
// service is always https).
func ValidateRegistration(installationID string, r api.DeviceRegistration, allowHTTP bool) error {
	if err := checkInstallation(installationID); err != nil {
		return err
	}
	switch r.Platform {
	case api.PlatformAndroid, api.PlatformIOS:
		if r.Subscription != nil {
			return fmt.Errorf("%w: subscription is for platform web; %s takes token", ErrInvalid, r.Platform)
		}
		if r.Token == "" || len(r.Token) > maxToken {
			return fmt.Errorf("%w: token: 1 to %d characters", ErrInvalid, maxToken)
		}
		for i := 0; i < len(r.Token); i++ {
			if c := r.Token[i]; c <= ' ' || c > '~' {
				return fmt.Errorf("%w: token: printable ASCII without spaces", ErrInvalid)
			}
		}
	case api.PlatformWeb:
		if r.Token != "" {
			return fmt.Errorf("%w: token is for android and ios; web takes subscription", ErrInvalid)
		}
		if err := checkSubscription(r.Subscription, allowHTTP); err != nil {
			return err
		}
	default:
		return fmt.Errorf("%w: platform: android, ios or web", ErrInvalid)
	}
	if len(r.AppVersion) > maxAppVersion || !printable(r.AppVersion) {
		return fmt.Errorf("%w: app_version: at most %d printable characters", ErrInvalid, maxAppVersion)
	}
	if len(r.Locale) > maxLocale {
		return fmt.Errorf("%w: locale: at most %d characters", ErrInvalid, maxLocale)
	}
	for _, c := range r.Locale {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return fmt.Errorf("%w: locale: a BCP 47 tag such as de-DE", ErrInvalid)
		}
	}
	return nil
}

// checkSubscription checks a PushSubscription: an absolute https endpoint
// and the keys RFC 8291 needs (a P-256 point and a 16-byte secret).
func checkSubscription(s *api.WebPushSubscription, allowHTTP bool) error {
	if s == nil {
		return fmt.Errorf("%w: subscription is required for platform web", ErrInvalid)
	}
	if s.Endpoint == "" || len(s.Endpoint) > maxEndpoint {
		return fmt.Errorf("%w: subscription.endpoint: 1 to %d characters", ErrInvalid, maxEndpoint)
	}
	u, err := url.Parse(s.Endpoint)
	if err != nil || u.Host == "" || u.User != nil || !(u.Scheme == "https" || allowHTTP && u.Scheme == "http") {
		return fmt.Errorf("%w: subscription.endpoint: an https URL", ErrInvalid)
	}
	if k, err := b64(s.Keys.P256DH); err != nil || len(k) != 65 || k[0] != 4 {
		return fmt.Errorf("%w: subscription.keys.p256dh: an uncompressed P-256 point, base64url", ErrInvalid)
	}
	if a, err := b64(s.Keys.Auth); err != nil || len(a) != 16 {
		return fmt.Errorf("%w: subscription.keys.auth: 16 bytes, base64url", ErrInvalid)
	}
	return nil
}

// b64 decodes base64url with or without padding, as browsers vary.
func b64(s string) ([]byte, error) {
	if len(s) > 256 {
		return nil, fmt.Errorf("too long")
	}
	return base64.RawURLEncoding.DecodeString(strings.TrimRight(s, "="))
}

func printable(s string) bool {
	for _, r := range s {
		if r < ' ' || r == 0x7f {
			return false
		}
	}
	return true
}

// parseClock reads "HH:MM" as minutes after midnight.
func parseClock(s string) (int, error) {
	t, err := time.Parse("15:04", s)
	if err != nil || len(s) != 5 {
		return 0, fmt.Errorf("want HH:MM, 24-hour")
	}
	return t.Hour()*60 + t.Minute(), nil
}

// ValidateQuietHours checks a quiet-hours setting.
func ValidateQuietHours(q api.QuietHours) error {
	if !q.Enabled && q.Start == "" && q.End == "" && q.TimeZone == "" {
		return nil
	}
	a, err := parseClock(q.Start)
	if err != nil {
		return fmt.Errorf("%w: quiet_hours.start: %v", ErrInvalid, err)
	}
	b, err := parseClock(q.End)
	if err != nil {
		return fmt.Errorf("%w: quiet_hours.end: %v", ErrInvalid, err)
	}
	if a == b {
		return fmt.Errorf("%w: quiet_hours: start and end must differ", ErrInvalid)
	}
	if len(q.TimeZone) > 64 {
		return fmt.Errorf("%w: quiet_hours.timezone: an IANA name such as Europe/Berlin", ErrInvalid)
	}
	if _, err := time.LoadLocation(q.TimeZone); err != nil || strings.EqualFold(q.TimeZone, "local") {
		return fmt.Errorf("%w: quiet_hours.timezone: an IANA name such as Europe/Berlin", ErrInvalid)
	}
	return nil
}
