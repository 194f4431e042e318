package device

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/switchboard/switchboard/api"
	"github.com/switchboard/switchboard/auth"
)

// MQTTConfig configures the gateway's MQTT client.
type MQTTConfig struct {
	// URL is the broker: tcp://host:port (user:password@ in the URL are
	// the client's credentials). Required.
	URL string
	// ClientID is fixed across restarts, so the broker keeps this node's
	// session (its subscription and the QoS 1 messages not yet acked)
	// while it is away. Required; every node needs its own.
	ClientID string
	// StoreDir holds paho's file store of in-flight messages. Required.
	StoreDir string
	// Shared subscribes with $share/switchboard/..., so a broker hands
	// each frame to one of several gateway nodes. Set with an external
	// broker; the embedded one serves a single node.
	Shared bool
	// Queue bounds the frames received and not yet written. Zero: 4096,
	// which is 200 times Mosquitto's default inflight window of 20 per
	// client and a fraction of a second of ingest.
	Queue int
	// Logger receives the client's logs; nil discards them.
	Logger *slog.Logger
}

// mqttBatch is the most frames taken off the queue for one ingest round.
const mqttBatch = 512

// diagnosticsFilter is the topic filter of every appliance's frames.
const diagnosticsFilter = "appliances/+/diagnostics"

// MQTT is the gateway's MQTT client: it takes signed frames published
// QoS 1 to appliances/{serial}/diagnostics and records them, and
// publishes commands.
//
// Why no frame is lost: the session is persistent (fixed client ID,
// CleanSession=false, paho file store), so the broker keeps unacked QoS 1
// messages across a reconnect of either side. Auto-ack is off and paho
// runs each message's callback on its own goroutine (OrderMatters=false):
// the callback hands the message to a bounded queue and waits; a worker
// records what is queued in batches (one stream write per batch), and
// each callback sends its PUBACK only once its frame is durable in the
// stream, or was found bad or already recorded. Acking from inside the
// callback is also the only safe place with paho: an ack after the
// callback returned may hit a connection already torn down. A frame in
// flight when the broker or the gateway goes away is not acked, so it is
// redelivered, and the sequence window drops it if it was written. The
// waiting callbacks are bounded by the broker's inflight window per
// client (Mosquitto's max_inflight_messages), and the queue by Queue: a
// slow store pushes back on the broker through TCP instead of dropping.
type MQTT struct {
	svc *Service
	cfg MQTTConfig
	log *slog.Logger
	// qs are the workers' queues; an appliance's frames always go to the
	// same one (by serial), so they are recorded in the order they came
	// and never race each other past the sequence window.
	qs []chan *inbound
}

// inbound is a received message waiting for its callback to ack it.
type inbound struct {
	msg  paho.Message
	done chan bool // true: ack
}

// NewMQTT returns the MQTT client of the service; Run connects it.
func (s *Service) NewMQTT(cfg MQTTConfig) (*MQTT, error) {
	if cfg.URL == "" || cfg.ClientID == "" || cfg.StoreDir == "" {
		return nil, errors.New("device: MQTT needs a URL, a client ID and a store directory")
	}
	if cfg.Queue == 0 {
		cfg.Queue = 4096
	}
	l := cfg.Logger
	if l == nil {
		l = slog.New(slog.DiscardHandler)
	}
	m := &MQTT{svc: s, cfg: cfg, log: l.With("component", "mqtt")}
	for range mqttWorkers {
		m.qs = append(m.qs, make(chan *inbound, cfg.Queue/mqttWorkers))
	}
	return m, nil
}

// Run connects, subscribes and records frames until ctx ends. Connection
// losses are retried forever; only ctx stops it.
func (m *MQTT) Run(ctx context.Context) error {
	u, err := url.Parse(m.cfg.URL)
	if err != nil {
		return fmt.Errorf("mqtt url: %w", err)
	}
	filter := diagnosticsFilter
	if m.cfg.Shared {
		filter = "$share/switchboard/" + diagnosticsFilter
	}
	handler := func(_ paho.Client, msg paho.Message) {
		in := &inbound{msg: msg, done: make(chan bool, 1)}
		select {
		case m.queueOf(msg.Topic()) <- in:
		case <-ctx.Done(): // not acked: the broker keeps it for the next session
			return
		}
		select {
		case ack := <-in.done:
			if ack {
				msg.Ack()
			}
		case <-ctx.Done():
		}
	}
	opts := paho.NewClientOptions().
		AddBroker((&url.URL{Scheme: u.Scheme, Host: u.Host}).String()).
		SetClientID(m.cfg.ClientID).
		SetCustomOpenConnectionFn(dialBroker).
		SetCleanSession(false).
		SetStore(newSessionStore(m.cfg.StoreDir)).
		SetAutoAckDisabled(true).
		SetOrderMatters(false).
		SetAutoReconnect(true).
		SetConnectRetry(true).
		SetConnectRetryInterval(250 * time.Millisecond).
		SetMaxReconnectInterval(2 * time.Second).
		SetKeepAlive(30 * time.Second).
		// With a persistent session the broker may deliver before the
		// subscription is renewed: the default handler takes those.
		SetDefaultPublishHandler(handler).
		SetOnConnectHandler(func(c paho.Client) {
			t := c.Subscribe(filter, 1, handler)
			go func() {
				if t.WaitTimeout(10*time.Second) && t.Error() != nil {
					m.log.Error("subscribe failed", "err", t.Error())
				}
			}()
			m.log.Info("connected", "broker", u.Host)
		}).
		SetConnectionLostHandler(func(_ paho.Client, err error) { m.log.Warn("connection lost", "err", err) })
	if u.User != nil {
		opts.SetUsername(u.User.Username())
		if p, ok := u.User.Password(); ok {
			opts.SetPassword(p)
		}
	}
	c := paho.NewClient(opts)
	c.Connect() // retries in the background (ConnectRetry)
	pub := publisher(func(ctx context.Context, topic string, payload []byte) error {
		t := c.Publish(topic, 1, false, payload)
		select {
		case <-t.Done():
			return t.Error()
		case <-ctx.Done():
			return ctx.Err()
		}
	})
	m.svc.pub.Store(&pub)
	defer m.svc.pub.Store(nil)
	defer c.Disconnect(250)
	// Several workers, so one round's store writes overlap the next
	// round's gathering and the store commits them together; the
	// per-appliance lock keeps one appliance's frames apart.
	var wg sync.WaitGroup
	for _, q := range m.qs {
		wg.Add(1)
		go func() { defer wg.Done(); m.work(ctx, q) }()
	}
	wg.Wait()
	return nil
}

// mqttWorkers is how many rounds run at once: enough to keep a commit
// always in flight on two cores, measured in BenchmarkMQTTFromMosquitto.
const mqttWorkers = 4

// work records frames from the queue in rounds of up to mqttBatch.
func (m *MQTT) work(ctx context.Context, q <-chan *inbound) {
	batch := make([]*inbound, 0, mqttBatch)
	for {
		select {
		case <-ctx.Done():
			return
		case in := <-q:
			batch = append(batch[:0], in)
		}
	fill:
		for len(batch) < mqttBatch {
			select {
			case in := <-q:
				batch = append(batch, in)
			default:
				break fill
			}
		}
		m.round(ctx, batch)
	}
}

// queueOf is the queue of the worker that records topic's appliance.
func (m *MQTT) queueOf(topic string) chan *inbound {
	h := fnv.New32a()
	h.Write([]byte(topic))
	return m.qs[h.Sum32()%uint32(len(m.qs))]
}

// round records one batch, grouped by appliance, retrying store failures
// until they pass or ctx ends, and tells each message's callback whether
// to ack it.
func (m *MQTT) round(ctx context.Context, batch []*inbound) {
	groups := map[string][]*inbound{}
	var order []string
	for _, in := range batch {
		serial, ok := serialOfTopic(in.msg.Topic())
		if !ok {
			in.done <- true // not ours to record; never redeliver it
			continue
		}
		if _, seen := groups[serial]; !seen {
			order = append(order, serial)
		}
		groups[serial] = append(groups[serial], in)
	}
	// Appliances are independent: record them at once, so the store
	// commits their writes together (one fsync for many appliances).
	sem := make(chan struct{}, roundWorkers)
	var wg sync.WaitGroup
	for _, serial := range order {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			m.record(ctx, serial, groups[serial])
		}()
	}
	wg.Wait()
}

// roundWorkers bounds the appliances recorded at once in one round: the
// embedded committer takes up to 512 writes per commit, and each
// appliance issues two or three at a time.
const roundWorkers = 128

// record records one appliance's messages of a round and answers their
// callbacks.
func (m *MQTT) record(ctx context.Context, serial string, ins []*inbound) {
	ok := true
	for wait := 50 * time.Millisecond; ; wait = min(wait*2, 2*time.Second) {
		err := m.svc.ingestMQTT(ctx, serial, ins)
		if err == nil {
			break
		}
		m.log.Warn("recording frames failed; retrying", "serial", serial, "err", err)
		if sleepCtx(ctx, wait) != nil {
			ok = false // not acked: redelivered to the next session
			break
		}
	}
	for _, in := range ins {
		in.done <- ok
	}
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

func serialOfTopic(topic string) (string, bool) {
	rest, ok := strings.CutPrefix(topic, "appliances/")
	if !ok {
		return "", false
	}
	serial, ok := strings.CutSuffix(rest, "/diagnostics")
	return serial, ok && ValidSerial(serial)
}

// ingestMQTT records the frames of one appliance received over MQTT.
// Frames that can never be recorded (bad signature, unknown appliance,
// no owner, already received) are dropped with a log line: redelivering
// them would not change that. Only store failures return an error.
func (s *Service) ingestMQTT(ctx context.Context, serial string, ins []*inbound) error {
	a, err := s.bySerial(ctx, serial)
	if errors.Is(err, ErrNotFound) {
		s.log.Warn("frames for an unknown serial dropped", "frames", len(ins))
		s.frames.mqtt.refuse(refusedUnknown, len(ins))
		return nil
	}
	if err != nil {
		return err
	}
	o, _, err := s.ownerOf(ctx, a.ID)
	if err != nil {
		return err
	}
	if o == nil {
		s.log.Info("frames of an unpaired appliance dropped", "appliance", a.ID, "frames", len(ins))
		s.frames.mqtt.refuse(refusedUnpaired, len(ins))
		return nil
	}
	ranges := s.rules.Ranges[a.Model]
	now := s.now()
	fs := make([]api.Frame, 0, len(ins))
	var refused [numRefusals]int // counted once the round is done: a failed one comes again
	mac := newMACer(a.secret)
	for i, in := range ins {
		msg := in.msg
		var sf api.SignedFrame
		if len(msg.Payload()) > 2*MaxFrameBytes || json.Unmarshal(msg.Payload(), &sf) != nil {
			s.log.Warn("malformed MQTT frame dropped", "appliance", a.ID)
			refused[refusedMalformed]++
			continue
		}
		f, err := parseFrame(i, mac, a.Serial, sf, ranges, now)
		if err != nil {
			s.log.Warn("bad MQTT frame dropped", "appliance", a.ID, "err", err)
			refused[refusalOf(a, sf)]++
			continue
		}
		fs = append(fs, f)
	}
	if len(fs) == 0 {
		s.frames.mqtt.refuseAll(&refused)
		return nil
	}
	slices.SortStableFunc(fs, func(x, y api.Frame) int { return cmpSeq(x.Seq, y.Seq) })
	n := len(fs)
	fs = slices.CompactFunc(fs, func(x, y api.Frame) bool { return x.Seq == y.Seq })
	res, err := s.record(ctx, a, o, fs, n-len(fs), api.Actor{ID: a.ID, Role: string(auth.RoleDevice)})
	if s.frames.mqtt.recorded(res, err) {
		s.frames.mqtt.refuseAll(&refused)
	}
	if errors.Is(err, ErrReplayed) {
		return nil
	}
	return err
}

func cmpSeq(x, y uint64) int {
	switch {
	case x < y:
		return -1
	case x > y:
		return 1
	}
	return 0
}
