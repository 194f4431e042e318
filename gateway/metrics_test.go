package gateway_test

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/switchboard/switchboard/api"
	"github.com/switchboard/switchboard/auth"
	"github.com/switchboard/switchboard/device"
	"github.com/switchboard/switchboard/gateway"
	"github.com/switchboard/switchboard/internal/poll"
	"github.com/switchboard/switchboard/rtc"
	"github.com/switchboard/switchboard/ticket"
)

// metricsEnv is a served gateway with the ticket stream, a running live
// feed and the appliance domain, so one test can drive each and read
// /metrics.
type metricsEnv struct {
	*applianceEnv
	stream *streamEnv
}

func newMetricsEnv(t testing.TB) *metricsEnv {
	t.Helper()
	e, devices := newApplianceDeps(t)
	e.reg = prometheus.NewRegistry()
	hub := ticket.NewHub(e.tickets, ticket.HubConfig{})
	e.srv = gateway.New(gateway.Config{}, gateway.Deps{Store: e.store, Issuer: e.issuer, Verifier: auth.NewVerifier(e.authc, e.key),
		Tickets: e.tickets, Hub: hub, Devices: devices, Registry: e.reg})
	se := &streamEnv{env: e, hub: hub, addr: e.listen(t)}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- hub.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return &metricsEnv{applianceEnv: &applianceEnv{env: e, devices: devices}, stream: se}
}

// scrape reads GET /metrics into series name{labels} -> value, as the
// text format prints them (labels sorted by name).
func (e *env) scrape(t testing.TB) map[string]float64 {
	t.Helper()
	res := e.do(t, "GET", "/metrics", "", nil)
	defer res.Body.Close()
	if res.StatusCode != 200 {
		b, _ := io.ReadAll(res.Body)
		t.Fatalf("/metrics: %d %s", res.StatusCode, b)
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(res.Body)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("/metrics line %q: %v", line, err)
		}
		out[line[:i]] = v
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// want checks series against values; a series missing from m fails.
func wantSeries(t testing.TB, m map[string]float64, series map[string]float64) {
	t.Helper()
	for s, v := range series {
		got, ok := m[s]
		if !ok {
			t.Errorf("%s missing from /metrics", s)
		} else if got != v {
			t.Errorf("%s = %v, want %v", s, got, v)
		}
	}
}

func refusedSeries(transport, reason string) string {
	return fmt.Sprintf(`switchboard_appliance_frames_refused_total{reason=%q,transport=%q}`, reason, transport)
}

func framesSeries(kind, transport string) string {
	return fmt.Sprintf(`switchboard_appliance_frames_%s_total{transport=%q}`, kind, transport)
}

func appendedSeries(typ api.EventType) string {
	return fmt.Sprintf(`switchboard_ticket_events_appended_total{type=%q}`, typ)
}

// relayFrames posts a batch of frames for u with the relay token tok.
func (e *applianceEnv) relayFrames(t testing.TB, tok, id string, fs ...api.SignedFrame) *http.Response {
	t.Helper()
	body, _ := json.Marshal(api.DiagnosticsBatch{Frames: fs})
	return e.do(t, "POST", "/v1/appliances/"+id+"/diagnostics", tok, body)
}

// TestDomainMetricsOnMetricsEndpoint: events appended, live feed
// subscribers, and relayed frames (recorded, repeated, badly signed, out
// of range, for someone else's appliance) show on /metrics with exactly
// the counts of what was done; domains the gateway was not given have no
// series.
func TestDomainMetricsOnMetricsEndpoint(t *testing.T) {
	e := newMetricsEnv(t)
	m := e.scrape(t)
	zero := map[string]float64{
		appendedSeries(api.EventMessage):                     0,
		appendedSeries(api.EventDiagnostic):                  0,
		"switchboard_feed_subscribers":                       0,
		"switchboard_feed_slow_consumers_total":              0,
		framesSeries("accepted", "http"):                     0,
		framesSeries("accepted", "mqtt"):                     0,
		refusedSeries("http", string(device.RefusedUnknown)): 0,
	}
	wantSeries(t, m, zero)
	for s := range m {
		if strings.HasPrefix(s, "switchboard_webhook_") || strings.HasPrefix(s, "switchboard_push_") || strings.HasPrefix(s, "switchboard_calls") {
			t.Errorf("series %s of a domain the gateway was not given", s)
		}
	}

	// The ticket stream: one event of each type appended over HTTP.
	joe := e.token(t, "joe", auth.RoleCustomer)
	tk := e.open(t, joe, api.OpenTicketRequest{Subject: "projector broken"})
	e.post(t, joe, tk.ID, api.EventMessage, api.MessagePayload{Text: "it flickers"})
	e.post(t, joe, tk.ID, api.EventMessage, api.MessagePayload{Text: "then stops"})
	wantSeries(t, e.scrape(t), map[string]float64{appendedSeries(api.EventTicketOpened): 1, appendedSeries(api.EventMessage): 2})

	// The live feed: a subscriber counts while connected.
	c := e.stream.dial(t, joe, "", nil)
	poll.Until(t, 10*time.Second, 10*time.Millisecond, func() error {
		if n := e.scrape(t)["switchboard_feed_subscribers"]; n != 1 {
			return fmt.Errorf("feed subscribers %v, want 1", n)
		}
		return nil
	})
	c.Close()
	poll.Until(t, 10*time.Second, 10*time.Millisecond, func() error {
		if n := e.scrape(t)["switchboard_feed_subscribers"]; n != 0 {
			return fmt.Errorf("feed subscribers %v after close, want 0", n)
		}
		return nil
	})

	// Appliance frames relayed over HTTP.
	us := e.importUnits(t, 2)
	u, v := us[0], us[1]
	relay := e.pair(t, u, "joe")
	relayV := e.pair(t, v, "eve")
	good := []api.SignedFrame{u.frame(map[string]float64{"lamp_temp_c": 80}), u.frame(nil), u.frame(nil)}
	decodeJSON(t, e.relayFrames(t, relay, u.id, good...), 202, nil)
	readProblem(t, e.relayFrames(t, relay, u.id, good...), 409, api.CodeFramesReplayed)
	bad := u.frame(nil)
	bad.Sig = base64.StdEncoding.EncodeToString(make([]byte, 32))
	readProblem(t, e.relayFrames(t, relay, u.id, u.frame(nil), bad), 422, api.CodeBadFrame)
	readProblem(t, e.relayFrames(t, relay, u.id, u.frame(map[string]float64{"lamp_temp_c": 5000})), 422, api.CodeBadFrame)
	readProblem(t, e.relayFrames(t, relayV, u.id, u.frame(nil)), 404, api.CodeNotFound)

	wantSeries(t, e.scrape(t), map[string]float64{
		framesSeries("accepted", "http"):                       3,
		framesSeries("duplicate", "http"):                      3,
		refusedSeries("http", string(device.RefusedSignature)): 2, // the good frame fails with its batch
		refusedSeries("http", string(device.RefusedContent)):   1,
		refusedSeries("http", string(device.RefusedUnknown)):   1,
		refusedSeries("http", string(device.RefusedUnpaired)):  0,
		framesSeries("accepted", "mqtt"):                       0,
		appendedSeries(api.EventDiagnostic):                    3,
	})
}

// TestRefusedFramesCountExactly: the refused counter goes up by exactly
// the frames refused, batch by batch, and a refused frame is never
// counted as accepted (nor a recorded one as refused).
func TestRefusedFramesCountExactly(t *testing.T) {
	e := newApplianceEnv(t, gateway.Config{})
	u := e.importUnits(t, 1)[0]
	relay := e.pair(t, u, "joe")
	sig := refusedSeries("http", string(device.RefusedSignature))
	total := 0
	for n := 1; n <= 4; n++ {
		batch := make([]api.SignedFrame, n)
		for i := range batch {
			batch[i] = u.frame(nil)
		}
		batch[n-1].Sig = base64.StdEncoding.EncodeToString(make([]byte, 32))
		readProblem(t, e.relayFrames(t, relay, u.id, batch...), 422, api.CodeBadFrame)
		total += n
		wantSeries(t, e.scrape(t), map[string]float64{sig: float64(total), framesSeries("accepted", "http"): 0})
	}
	decodeJSON(t, e.relayFrames(t, relay, u.id, u.frame(nil)), 202, nil)
	wantSeries(t, e.scrape(t), map[string]float64{sig: float64(total), framesSeries("accepted", "http"): 1})
}

// TestCallMetrics: a connected call counts as active, with its media on
// this node and its packets forwarded; a call waiting for the busy agent
// counts as queued; when both end, the gauges fall back to zero.
func TestCallMetrics(t *testing.T) {
	e := newCallEnv(t, nil, nil, "node-a", nil)
	calls := func(state string) string { return fmt.Sprintf("switchboard_calls{state=%q}", state) }
	wantSeries(t, e.scrape(t), map[string]float64{calls("queued"): 0, calls("ringing"): 0, calls("active"): 0,
		"switchboard_rtc_media_calls": 0, "switchboard_rtc_packets_forwarded_total": 0, "switchboard_rtc_packets_fast_total": 0})

	_, _, cc, ac, _ := connectCall(t, e, e, "joe", "ann")
	eve := e.client(t, "eve", auth.RoleCustomer)
	var placed api.PlacedCall
	if err := eve.Do(context.Background(), "POST", "/v1/calls", api.PlaceCallRequest{TicketID: openTicket(t, eve).ID, Media: api.MediaAudio}, &placed); err != nil {
		t.Fatal(err)
	}
	m := e.scrape(t)
	wantSeries(t, m, map[string]float64{calls("queued"): 1, calls("ringing"): 0, calls("active"): 1, "switchboard_rtc_media_calls": 1})
	if fwd := m["switchboard_rtc_packets_forwarded_total"]; fwd < 20 || fwd > float64(e.calls.Relay().Forwarded()) {
		t.Fatalf("packets forwarded %v on /metrics; the relay has counted %d since, and each party received 10 or more", fwd, e.calls.Relay().Forwarded())
	}
	// The media is on one UDP address (newCallEnv), so once each SDK
	// party's packets show the relay has its keys, the relay's own loop
	// sends them.
	poll.Until(t, 20*time.Second, 20*time.Millisecond, func() error {
		m := e.scrape(t)
		if f, all := m["switchboard_rtc_packets_fast_total"], m["switchboard_rtc_packets_forwarded_total"]; f < 20 || f > all {
			return fmt.Errorf("%v of %v packets forwarded on the fast path, want 20 or more", f, all)
		}
		return nil
	})

	if _, err := e.calls.End(context.Background(), rtc.User{ID: "eve", Role: auth.RoleCustomer}, placed.Call.ID); err != nil {
		t.Fatal(err)
	}
	hangUpSeen(t, ac, cc)
	poll.Until(t, 20*time.Second, 20*time.Millisecond, func() error {
		m := e.scrape(t)
		for _, s := range []string{calls("queued"), calls("ringing"), calls("active"), "switchboard_rtc_media_calls"} {
			if m[s] != 0 {
				return fmt.Errorf("%s = %v after both calls ended", s, m[s])
			}
		}
		return nil
	})
}
