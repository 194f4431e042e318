package device_test

import (
	"encoding/json"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/switchboard/switchboard/api"
	"github.com/switchboard/switchboard/device"
	"github.com/switchboard/switchboard/internal/mosquittotest"
	"github.com/switchboard/switchboard/internal/poll"
	"github.com/switchboard/switchboard/ticket"
)

// BenchmarkMQTTFromMosquitto measures signed frames verified and written
// per second when appliances publish QoS 1 to an external Mosquitto and
// the gateway's client records them, against the raw broker rate in the
// same run: the same publishers, with a bare paho subscriber that only
// counts (auto-ack). Both sides use the same inflight window.
func BenchmarkMQTTFromMosquitto(b *testing.B) {
	ms := mosquittotest.Start(b, "max_inflight_messages 1000")
	r := newRig(b)
	const pubs = 8
	per := max(500, b.N/pubs)
	units := make([]*unit, pubs)
	clients := make([]paho.Client, pubs)
	for i := range units {
		units[i] = r.register(b, "PJ-100")
		r.pair(b, units[i], fmt.Sprintf("cust-%d", i))
		c, err := applianceClient(b, ms.URL(), "bench-pub-"+units[i].serial, "", "")
		if err != nil {
			b.Fatal(err)
		}
		clients[i] = c
	}
	sign := func() [][][]byte {
		out := make([][][]byte, pubs)
		for i, u := range units {
			for range per {
				p, _ := json.Marshal(u.frame(r.clock.now(), map[string]float64{"lamp_temp_c": 70, "fan_rpm": 1200}))
				out[i] = append(out[i], p)
			}
		}
		return out
	}
	publish := func(payloads [][][]byte) {
		var wg sync.WaitGroup
		for i, c := range clients {
			wg.Add(1)
			go func() {
				defer wg.Done()
				toks := make([]paho.Token, 0, len(payloads[i]))
				for _, p := range payloads[i] {
					toks = append(toks, c.Publish(device.DiagnosticsTopic(units[i].serial), 1, false, p))
				}
				for _, t := range toks {
					if !t.WaitTimeout(time.Minute) || t.Error() != nil {
						b.Error("publish not acked")
						return
					}
				}
			}()
		}
		wg.Wait()
	}
	total := pubs * per

	// Raw: a subscriber that only counts.
	var got atomic.Int64
	done := make(chan struct{})
	raw := paho.NewClient(paho.NewClientOptions().AddBroker(ms.URL()).SetClientID("bench-raw").SetCleanSession(true))
	if t := raw.Connect(); !t.WaitTimeout(10*time.Second) || t.Error() != nil {
		b.Fatal("raw subscriber did not connect")
	}
	if t := raw.Subscribe("appliances/+/diagnostics", 1, func(paho.Client, paho.Message) {
		if got.Add(1) == int64(total) {
			close(done)
		}
	}); !t.WaitTimeout(10*time.Second) || t.Error() != nil {
		b.Fatal("raw subscribe failed")
	}
	payloads := sign()
	b.ResetTimer()
	start := time.Now()
	publish(payloads)
	select {
	case <-done:
	case <-time.After(2 * time.Minute):
		b.Fatalf("raw subscriber got %d of %d", got.Load(), total)
	}
	rawRate := float64(total) / time.Since(start).Seconds()
	raw.Disconnect(100)

	// Gateway: verify, dedupe, append, ack.
	b.StopTimer()
	payloads = sign()
	before := streamLen(b, r)
	r.startGatewayMQTT(b, ms.URL(), false)
	// Let the subscription settle with one frame, outside the clock.
	warm := r.register(b, "PJ-100")
	r.pair(b, warm, "warm")
	poll.Until(b, 30*time.Second, 50*time.Millisecond, func() error {
		p, _ := json.Marshal(warm.frame(r.clock.now(), nil))
		clients[0].Publish(device.DiagnosticsTopic(warm.serial), 1, false, p).WaitTimeout(5 * time.Second)
		if streamLen(b, r) == before {
			return fmt.Errorf("gateway not subscribed yet")
		}
		return nil
	})
	base := streamLen(b, r)
	b.StartTimer()
	start = time.Now()
	publish(payloads)
	poll.Until(b, 5*time.Minute, time.Millisecond, func() error {
		if n := streamLen(b, r) - base; n < int64(total) {
			return fmt.Errorf("%d of %d recorded", n, total)
		}
		return nil
	})
	gwRate := float64(total) / time.Since(start).Seconds()
	b.StopTimer()
	b.ReportMetric(rawRate, "raw-frames/s")
	b.ReportMetric(gwRate, "frames/s")
	b.ReportMetric(gwRate/rawRate, "x-raw")
	b.ReportMetric(0, "ns/op")
}

func streamLen(b testing.TB, r *rig) int64 {
	n, err := r.st.XLen(b.Context(), ticket.StreamEvents)
	if err != nil {
		b.Fatal(err)
	}
	return n
}

var _ = api.EventDiagnostic
