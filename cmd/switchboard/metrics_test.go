package main

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

// TestServeExposesDomainMetrics: the node built by serve shows on one
// /metrics the series of every domain and worker it runs, with the
// workers' (MQTT queue) registered beside the gateway's.
func TestServeExposesDomainMetrics(t *testing.T) {
	addr, _, _ := startServe(t, t.TempDir())
	res, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode != 200 {
		t.Fatalf("/metrics: %d %s", res.StatusCode, b)
	}
	lines := map[string]bool{}
	for _, l := range strings.Split(string(b), "\n") {
		lines[l] = true
	}
	for _, want := range []string{
		`switchboard_ticket_events_appended_total{type="message"} 0`,
		`switchboard_feed_subscribers 0`,
		`switchboard_webhook_retry_queue_length 0`,
		`switchboard_push_sent_total 0`,
		`switchboard_appliance_frames_refused_total{reason="signature",transport="mqtt"} 0`,
		`switchboard_appliance_mqtt_queued_frames 0`,
		`switchboard_calls{state="queued"} 0`,
		`switchboard_rtc_packets_forwarded_total 0`,
	} {
		if !lines[want] {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}
