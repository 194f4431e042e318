package webhook

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/switchboard/switchboard/api"
	"github.com/switchboard/switchboard/state"
	"github.com/switchboard/switchboard/ticket"
)

const (
	// fanoutBatch is how many events one fan-out read takes: each costs a
	// match against the subscriptions and the batch one XAdd.
	fanoutBatch = 64
	// readBlock is how long a read waits for new entries before the loop
	// looks at its context and its claim timer again.
	readBlock = 2 * time.Second
	// maxResponseDrain is how much of a target's answer is read (and
	// discarded) so the connection can be reused; a receiver answers with
	// a status, not a document.
	maxResponseDrain = 64 << 10
	// maxErrorLen bounds the error text kept with a dead letter.
	maxErrorLen = 512
)

// job is one delivery: an event for a subscription. It travels on
// StreamJobs and is parked, between attempts, in KV under a retry key.
type job struct {
	// ID is the webhook-id header: the same for every attempt (and a
	// replay), so receivers can drop duplicates.
	ID        string        `json:"id"`
	Sub       string        `json:"sub"`
	EventID   string        `json:"event_id"`
	EventType api.EventType `json:"event_type"`
	// Body is the exact bytes POSTed (an api.WebhookPayload).
	Body json.RawMessage `json:"body"`
	// Attempts is how many deliveries were already tried.
	Attempts int `json:"attempts"`
}

// Dispatcher fans events out to subscriptions and delivers them. Run one
// per node; nodes share the work through consumer groups.
type Dispatcher struct {
	svc      *Service
	cfg      Config
	log      *slog.Logger
	consumer string
	client   *http.Client
	tr       *http.Transport
	ready    chan struct{}

	mu       sync.Mutex
	inflight map[string]int // subscription ID -> deliveries running on this node
}

// NewDispatcher returns a dispatcher for svc. consumer names this node in
// the consumer groups; a restarted process should use a new name (its old
// entries are claimed after ClaimIdle).
func NewDispatcher(svc *Service, consumer string) *Dispatcher {
	cfg := svc.cfg
	tr := &http.Transport{
		// Never a proxy from the environment: the guard checks the address
		// actually dialled, which would be the proxy's.
		Proxy:                  nil,
		DialContext:            newDialer(cfg.Timeout, cfg.AllowPrivate).DialContext,
		ForceAttemptHTTP2:      true,
		MaxIdleConns:           100,
		MaxIdleConnsPerHost:    cfg.PerSubscription,
		IdleConnTimeout:        90 * time.Second,
		TLSHandshakeTimeout:    cfg.Timeout,
		ResponseHeaderTimeout:  cfg.Timeout,
		MaxResponseHeaderBytes: 64 << 10,
	}
	return &Dispatcher{
		svc:      svc,
		cfg:      cfg,
		log:      svc.log.With("consumer", consumer),
		consumer: consumer,
		tr:       tr,
		client: &http.Client{
			Transport: tr,
			Timeout:   cfg.Timeout,
			// A redirect is an answer, not an instruction: following it
			// would let a target send us to an internal address, and a
			// 3xx counts as a failed delivery.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
		ready:    make(chan struct{}),
		inflight: map[string]int{},
	}
}

// Ready is closed once Run has joined its consumer groups: events appended
// after it are delivered.
func (d *Dispatcher) Ready() <-chan struct{} { return d.ready }

// Run fans out, delivers and retries until ctx ends, then waits for the
// deliveries in flight (each bounded by Timeout) and returns nil. It
// returns an error only if it cannot join its consumer groups.
func (d *Dispatcher) Run(ctx context.Context) error {
	st := d.svc.st
	if err := st.XGroupCreate(ctx, ticket.StreamEvents, groupEvents, "$"); err != nil {
		return err
	}
	if err := st.XGroupCreate(ctx, StreamJobs, groupJobs, "0"); err != nil {
		return err
	}
	close(d.ready)
	defer d.tr.CloseIdleConnections()
	var g errgroup.Group
	g.Go(func() error { d.fanout(ctx); return nil })
	g.Go(func() error { d.deliverLoop(ctx); return nil })
	g.Go(func() error {
		d.svc.retries(d.consumer).Run(ctx, d.cfg.Poll, func(err error) { d.log.Warn("webhook retry mover", "err", err) })
		return nil
	})
	return g.Wait()
}

// fanout turns events into jobs.
func (d *Dispatcher) fanout(ctx context.Context) {
	st := d.svc.st
	var lastClaim time.Time
	for ctx.Err() == nil {
		var es []state.Entry
		var err error
		if time.Since(lastClaim) > d.cfg.ClaimIdle/2 {
			lastClaim = time.Now()
			es, err = st.XAutoClaim(ctx, ticket.StreamEvents, groupEvents, d.consumer, d.cfg.ClaimIdle, fanoutBatch)
		}
		if err == nil && len(es) == 0 {
			es, err = st.XReadGroup(ctx, ticket.StreamEvents, groupEvents, d.consumer, fanoutBatch, readBlock)
		}
		if err != nil {
			if d.stopped(ctx, err) {
				return
			}
			d.log.Warn("webhook fan-out read", "err", err)
			sleepCtx(ctx, time.Second)
			continue
		}
		if len(es) == 0 {
			continue
		}
		if err := d.enqueue(ctx, es); err != nil {
			if d.stopped(ctx, err) {
				return
			}
			// Left pending: XAutoClaim retries the batch after ClaimIdle.
			d.log.Warn("webhook fan-out", "err", err, "events", len(es))
			sleepCtx(ctx, time.Second)
		}
	}
}

// enqueue appends the jobs of a batch of events in one XAdd, then
// acknowledges the events.
func (d *Dispatcher) enqueue(ctx context.Context, es []state.Entry) error {
	st := d.svc.st
	subs, err := d.svc.subscriptions(ctx)
	if err != nil {
		return err
	}
	var jobs [][]byte
	ids := make([]string, 0, len(es))
	for _, e := range es {
		ids = append(ids, e.ID)
		ev, err := ticket.DecodeEvent(e)
		if err != nil {
			d.log.Error("webhook fan-out: undecodable event, skipped", "id", e.ID, "err", err)
			continue
		}
		var body []byte
		for _, sub := range subs {
			if !sub.matches(ev.Type) {
				continue
			}
			if body == nil {
				if body, err = json.Marshal(api.WebhookPayload{Type: ev.Type, Timestamp: ev.Time, Data: *ev}); err != nil {
					return err
				}
			}
			raw, err := json.Marshal(job{ID: "msg_" + ev.ID + "_" + sub.ID, Sub: sub.ID, EventID: ev.ID, EventType: ev.Type, Body: body})
			if err != nil {
				return err
			}
			jobs = append(jobs, raw)
		}
	}
	if len(jobs) > 0 {
		if _, err := st.XAdd(ctx, StreamJobs, jobs...); err != nil {
			return err
		}
	}
	return st.XAck(ctx, ticket.StreamEvents, groupEvents, ids...)
}

// stopped reports whether err means the dispatcher is shutting down.
func (d *Dispatcher) stopped(ctx context.Context, err error) bool {
	return ctx.Err() != nil || errors.Is(err, state.ErrClosed)
}

func sleepCtx(ctx context.Context, dur time.Duration) {
	t := time.NewTimer(dur)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
