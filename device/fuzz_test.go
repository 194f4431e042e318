package device_test

import (
	"encoding/base64"
	"encoding/json"
	"testing"
	"time"

	"github.com/switchboard/switchboard/api"
	"github.com/switchboard/switchboard/device"
)

var fuzzSecret = []byte("0123456789abcdef0123456789abcdef")

// FuzzParseFrame: whatever a phone or an MQTT client sends, ParseFrame
// never panics, and accepts only frames signed with the secret whose
// content is within bounds.
func FuzzParseFrame(f *testing.F) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	good := device.SignFrame(fuzzSecret, api.Frame{Serial: "SN1", Seq: 7, At: now, Readings: map[string]float64{"temp_c": 21.5}, FaultCodes: []string{"E42"}})
	raw, _ := json.Marshal(good)
	f.Add(raw)
	f.Add([]byte(`{"frame":"","sig":""}`))
	f.Add([]byte(`{"frame":"e30=","sig":"AAAA"}`))
	f.Add([]byte(`not json`))
	f.Fuzz(func(t *testing.T, b []byte) {
		var sf api.SignedFrame
		if json.Unmarshal(b, &sf) != nil {
			return
		}
		fr, err := device.ParseFrame(fuzzSecret, "SN1", sf, map[string][2]float64{"temp_c": {-50, 150}}, now)
		if err != nil {
			return
		}
		body, _ := base64.StdEncoding.DecodeString(sf.Frame)
		if device.SignFrame(fuzzSecret, fr).Sig == "" || len(body) > device.MaxFrameBytes {
			t.Fatal("accepted an oversized frame")
		}
		if fr.Serial != "SN1" || fr.Seq == 0 || len(fr.Readings) > device.MaxReadings || len(fr.FaultCodes) > device.MaxFaultCodes {
			t.Fatalf("accepted a frame out of bounds: %+v", fr)
		}
		if v, ok := fr.Readings["temp_c"]; ok && (v < -50 || v > 150) {
			t.Fatalf("accepted temp_c %v", v)
		}
	})
}

// FuzzPairingCode: any code a user types is refused or accepted without a
// panic, and only the right one pairs.
func FuzzPairingCode(f *testing.F) {
	f.Add("12345678")
	f.Add("")
	f.Add("1234567\x00")
	f.Add("１２３４５６７８")
	f.Fuzz(func(t *testing.T, code string) {
		r := newRig(t)
		u := r.register(t, "PJ-100")
		right := device.PairingCode(u.secret, r.clock.now(), false)
		_, err := r.svc.Pair(t.Context(), customer("fuzz"), api.PairRequest{Serial: u.serial, Code: code})
		if err == nil && code != right && code != device.PairingCode(u.secret, r.clock.now().Add(-device.CodeStep), false) &&
			code != device.PairingCode(u.secret, r.clock.now().Add(device.CodeStep), false) {
			t.Fatalf("code %q paired", code)
		}
	})
}

// FuzzParseRules: a rules file never panics the loader.
func FuzzParseRules(f *testing.F) {
	f.Add([]byte(testRules))
	f.Add([]byte(`{"rules":[{"model":"*","code":"E1","action":"order_part"}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = device.ParseRules(b)
	})
}
