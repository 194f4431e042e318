package gateway

import (
	"context"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/switchboard/switchboard/device"
	"github.com/switchboard/switchboard/push"
	"github.com/switchboard/switchboard/rtc"
	"github.com/switchboard/switchboard/ticket"
	"github.com/switchboard/switchboard/ticket/webhook"
)

// The domains' series on /metrics. Domains keep plain atomic counters
// behind a Stats snapshot and never import prometheus; the collectors
// here read one snapshot per scrape, so an event costs its domain one
// atomic add and nothing more.

// storeReadTimeout bounds the store reads of one scrape (queue lengths):
// Prometheus's default scrape timeout is 10s, and a hung store must not
// hold every scrape that long.
const storeReadTimeout = time.Second

// snapshotCollector is a Collector over one snapshot function: Collect
// calls it once per scrape and it yields every series of its families.
type snapshotCollector struct {
	descs   []*prometheus.Desc
	collect func(ch chan<- prometheus.Metric)
}

func (c *snapshotCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range c.descs {
		ch <- d
	}
}

func (c *snapshotCollector) Collect(ch chan<- prometheus.Metric) { c.collect(ch) }

func desc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc(name, help, labels, nil)
}

func counter(ch chan<- prometheus.Metric, d *prometheus.Desc, v uint64, labels ...string) {
	ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
}

func gauge(ch chan<- prometheus.Metric, d *prometheus.Desc, v float64, labels ...string) {
	ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
}

// storeRead runs one scrape-time store read under storeReadTimeout. A
// failed read leaves its series out of this scrape (and is logged)
// rather than failing the whole scrape: the other series still count.
func storeRead(log *slog.Logger, what string, read func(context.Context) error) bool {
	ctx, cancel := context.WithTimeout(context.Background(), storeReadTimeout)
	defer cancel()
	if err := read(ctx); err != nil {
		log.Warn("metrics: store read failed; series left out", "series", what, "err", err)
		return false
	}
	return true
}

// registerDomainMetrics registers the series of every domain the gateway
// was given; one it was not given has none.
func (s *Server) registerDomainMetrics() {
	reg, d := s.registry, s.deps
	if d.Tickets != nil {
		reg.MustRegister(ticketCollector(d.Tickets))
	}
	if d.Hub != nil {
		reg.MustRegister(hubCollector(d.Hub))
	}
	if d.Webhooks != nil {
		reg.MustRegister(webhookCollector(d.Webhooks, s.log))
	}
	if d.Push != nil {
		reg.MustRegister(pushCollector(d.Push))
	}
	if d.Devices != nil {
		reg.MustRegister(deviceCollector(d.Devices))
	}
	if d.Calls != nil {
		reg.MustRegister(callCollector(d.Calls, s.log))
	}
}

func ticketCollector(t *ticket.Service) prometheus.Collector {
	appended := desc("switchboard_ticket_events_appended_total", "Events appended to the ticket stream by this node, by event type.", "type")
	return &snapshotCollector{descs: []*prometheus.Desc{appended}, collect: func(ch chan<- prometheus.Metric) {
		for typ, n := range t.Stats().Appended {
			counter(ch, appended, n, string(typ))
		}
	}}
}

func hubCollector(h *ticket.Hub) prometheus.Collector {
	subs := desc("switchboard_feed_subscribers", "Live feed subscriptions open on this node (GET /v1/stream).")
	slow := desc("switchboard_feed_slow_consumers_total", "Live feed subscriptions cut off for falling behind their buffer.")
	return &snapshotCollector{descs: []*prometheus.Desc{subs, slow}, collect: func(ch chan<- prometheus.Metric) {
		st := h.Stats()
		gauge(ch, subs, float64(st.Subscribers))
		counter(ch, slow, st.SlowConsumers)
	}}
}

func webhookCollector(w *webhook.Service, log *slog.Logger) prometheus.Collector {
	ok := desc("switchboard_webhook_deliveries_succeeded_total", "Webhook deliveries a target answered with a 2xx.")
	failed := desc("switchboard_webhook_attempts_failed_total", "Webhook delivery attempts that failed (no answer or not a 2xx), retried or not.")
	dead := desc("switchboard_webhook_dead_lettered_total", "Webhook deliveries that failed their last attempt and became dead letters.")
	parked := desc("switchboard_webhook_retry_queue_length", "Webhook deliveries waiting to be retried, on all nodes together (read from the store).")
	return &snapshotCollector{descs: []*prometheus.Desc{ok, failed, dead, parked}, collect: func(ch chan<- prometheus.Metric) {
		st := w.Stats()
		counter(ch, ok, st.Delivered)
		counter(ch, failed, st.Failed)
		counter(ch, dead, st.DeadLettered)
		var n int64
		if storeRead(log, "switchboard_webhook_retry_queue_length", func(ctx context.Context) (err error) {
			n, err = w.RetryDepth(ctx)
			return err
		}) {
			gauge(ch, parked, float64(n))
		}
	}}
}

func pushCollector(p *push.Service) prometheus.Collector {
	sent := desc("switchboard_push_sent_total", "Push messages (one per device) a push service accepted.")
	failed := desc("switchboard_push_failed_total", "Push messages that failed: transient (retried unless on the last attempt), unregistered (device removed), refused (for good).", "reason")
	dead := desc("switchboard_push_dead_lettered_total", "Push messages given up after their last attempt.")
	skipped := desc("switchboard_push_skipped_total", "Notifications not sent because the recipient had the live feed open.")
	held := desc("switchboard_push_quiet_held_total", "Notifications held for the recipient's quiet hours (sent when they end).")
	return &snapshotCollector{descs: []*prometheus.Desc{sent, failed, dead, skipped, held}, collect: func(ch chan<- prometheus.Metric) {
		st := p.Stats()
		counter(ch, sent, st.Sent)
		counter(ch, failed, st.Transient, "transient")
		counter(ch, failed, st.Unregistered, "unregistered")
		counter(ch, failed, st.Refused, "refused")
		counter(ch, dead, st.DeadLettered)
		counter(ch, skipped, st.Skipped)
		counter(ch, held, st.QuietHeld)
	}}
}

func deviceCollector(d *device.Service) prometheus.Collector {
	accepted := desc("switchboard_appliance_frames_accepted_total", "Signed appliance frames recorded, by transport.", "transport")
	dups := desc("switchboard_appliance_frames_duplicate_total", "Appliance frames dropped as already received, by transport.", "transport")
	refused := desc("switchboard_appliance_frames_refused_total", "Appliance frames refused, by transport and reason.", "transport", "reason")
	return &snapshotCollector{descs: []*prometheus.Desc{accepted, dups, refused}, collect: func(ch chan<- prometheus.Metric) {
		for tr, st := range d.Stats().Frames {
			counter(ch, accepted, st.Accepted, string(tr))
			counter(ch, dups, st.Duplicates, string(tr))
			for r, n := range st.Refused {
				counter(ch, refused, n, string(tr), string(r))
			}
		}
	}}
}

func callCollector(c *rtc.Service, log *slog.Logger) prometheus.Collector {
	calls := desc("switchboard_calls", "Calls by state (queued, ringing, active), on all nodes together (read from the store).", "state")
	rooms := desc("switchboard_rtc_media_calls", "Calls whose media this node relays.")
	fwd := desc("switchboard_rtc_packets_forwarded_total", "RTP packets the media relay forwarded to a party.")
	fast := desc("switchboard_rtc_packets_fast_total", "Of those, the packets the relay's own packet loop encrypted and sent (media on one UDP address); the rest went through pion.")
	return &snapshotCollector{descs: []*prometheus.Desc{calls, rooms, fwd, fast}, collect: func(ch chan<- prometheus.Metric) {
		r := c.Relay()
		gauge(ch, rooms, float64(r.Rooms()))
		counter(ch, fwd, r.Forwarded())
		counter(ch, fast, r.FastForwarded())
		var st rtc.CallStats
		if storeRead(log, "switchboard_calls", func(ctx context.Context) (err error) {
			st, err = c.CallStats(ctx)
			return err
		}) {
			gauge(ch, calls, float64(st.Queued), "queued")
			gauge(ch, calls, float64(st.Ringing), "ringing")
			gauge(ch, calls, float64(st.Active), "active")
		}
	}}
}
