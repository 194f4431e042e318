package push_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/switchboard/switchboard/api"
	"github.com/switchboard/switchboard/push"
)

// FuzzValidateRegistration feeds arbitrary registration bodies and
// installation IDs: no panic, and whatever passes is within bounds and
// never echoed into an error.
func FuzzValidateRegistration(f *testing.F) {
	f.Add("inst-1", `{"platform":"android","token":"abc:APA91b","locale":"de-DE"}`)
	f.Add("inst-2", `{"platform":"web","subscription":{"endpoint":"https://push.example/x","keys":{"p256dh":"BNcRdreALRFXTkOOUHK1EtK2wtaz5Ry4YfYCA_0QTpQtUbVlUls0VJXg7A8u-Ts1XbjhazAkj7I99e8QcYP7DkM","auth":"tBHItJI5svbpez7KI4CCXg"}}}`)
	f.Add("x", `{"platform":"ios","token":""}`)
	f.Add("a b", `{"platform":"web","token":"t"}`)
	f.Add("q", `{"quiet_hours":{"enabled":true,"start":"22:00","end":"07:00","timezone":"Europe/Berlin"}}`)
	f.Fuzz(func(t *testing.T, iid, body string) {
		var reg api.DeviceRegistration
		if json.Unmarshal([]byte(body), &reg) == nil {
			err := push.ValidateRegistration(iid, reg, false)
			if err == nil {
				if len(reg.Token) > 4096 || len(iid) > 128 || (reg.Platform == api.PlatformWeb) == (reg.Subscription == nil) {
					t.Fatalf("accepted out of bounds: %q %+v", iid, reg)
				}
			} else if len(reg.Token) > 8 && strings.Contains(err.Error(), reg.Token) {
				t.Fatalf("error echoes the token: %v", err)
			}
		}
		var set api.PushSettings
		if json.Unmarshal([]byte(body), &set) == nil {
			_ = push.ValidateQuietHours(set.QuietHours)
		}
	})
}
