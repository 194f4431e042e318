package device_test

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"maps"
	"testing"
	"time"

	"github.com/switchboard/switchboard/api"
	"github.com/switchboard/switchboard/device"
	"github.com/switchboard/switchboard/internal/poll"
)

// TestMQTTFrameStats: frames published over MQTT count under the mqtt
// transport by what became of them (recorded, repeated, badly signed, out
// of range, not a frame, of an unpaired appliance), each exactly once,
// and none under http.
func TestMQTTFrameStats(t *testing.T) {
	r := newRig(t)
	b := r.startBroker(t)
	m, err := r.svc.NewMQTT(device.MQTTConfig{URL: b.URL(), ClientID: "switchboard-test-gw", StoreDir: t.TempDir(), Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	runWorker(t, m.Run)
	broker := "tcp://" + b.Addr()
	u := r.register(t, "PJ-100")
	w := r.register(t, "PJ-100") // never paired
	r.pair(t, u, "joe")
	cu, err := applianceClient(t, broker, u.serial, u.serial, device.MQTTPassword(u.secret))
	if err != nil {
		t.Fatal(err)
	}
	cw, err := applianceClient(t, broker, w.serial, w.serial, device.MQTTPassword(w.secret))
	if err != nil {
		t.Fatal(err)
	}
	// Each is published once and acked by the broker: a repeated publish
	// would count twice.
	pub := func(serial string, payload []byte) {
		t.Helper()
		c := cu
		if serial == w.serial {
			c = cw
		}
		tok := c.Publish(device.DiagnosticsTopic(serial), 1, false, payload)
		if !tok.WaitTimeout(15*time.Second) || tok.Error() != nil {
			t.Fatalf("publish to %s not acked: %v", serial, tok.Error())
		}
	}
	frame := func(sf api.SignedFrame) []byte { b, _ := json.Marshal(sf); return b }

	now := r.clock.now()
	good := []api.SignedFrame{u.frame(now, map[string]float64{"lamp_temp_c": 50}), u.frame(now, nil), u.frame(now, nil)}
	for _, f := range good {
		pub(u.serial, frame(f))
	}
	pub(u.serial, frame(good[1])) // a repeat
	bad := u.frame(now, nil)
	bad.Sig = base64.StdEncoding.EncodeToString(make([]byte, 32))
	pub(u.serial, frame(bad))
	pub(u.serial, frame(u.frame(now, map[string]float64{"lamp_temp_c": 5000})))
	pub(u.serial, []byte("not a frame"))
	pub(w.serial, frame(w.frame(now, nil)))
	pub(w.serial, frame(w.frame(now, nil)))

	want := device.FrameStats{Accepted: 3, Duplicates: 1, Refused: map[device.Refusal]uint64{
		device.RefusedUnknown: 0, device.RefusedUnpaired: 2, device.RefusedMalformed: 1,
		device.RefusedSignature: 1, device.RefusedContent: 1,
	}}
	poll.Until(t, 30*time.Second, 20*time.Millisecond, func() error {
		got := r.svc.Stats().Frames[device.TransportMQTT]
		if got.Accepted != want.Accepted || got.Duplicates != want.Duplicates || !maps.Equal(got.Refused, want.Refused) {
			return fmt.Errorf("mqtt frames %+v, want %+v", got, want)
		}
		return nil
	})
	if n := m.Queued(); n != 0 {
		t.Fatalf("%d frames queued after all were recorded", n)
	}
	h := r.svc.Stats().Frames[device.TransportHTTP]
	if h.Accepted != 0 || h.Duplicates != 0 {
		t.Fatalf("http frames %+v after MQTT only", h)
	}
	for reason, n := range h.Refused {
		if n != 0 {
			t.Fatalf("http refused %s: %d after MQTT only", reason, n)
		}
	}
}
