package push

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/switchboard/switchboard/internal/retryq"
	"github.com/switchboard/switchboard/state"
)

const (
	groupOutbox = "push"
	// readBlock is how long a read waits before the loop looks at its
	// context and claim timer again.
	readBlock = 2 * time.Second
	// maxReason bounds the error text kept with a failure.
	maxReason = 256
)

// Outbox sends what is in StreamOutbox. Run one per node; nodes share the
// work through the consumer group.
type Outbox struct {
	svc      *Service
	consumer string
	log      *slog.Logger
	ready    chan struct{}
}

// Outbox returns the outbox worker for this node. consumer names the node
// in the consumer group; a restarted process should use a new name (its
// predecessor's entries are claimed after ClaimIdle).
func (s *Service) Outbox(consumer string) *Outbox {
	return &Outbox{svc: s, consumer: consumer, log: s.log.With("consumer", consumer), ready: make(chan struct{})}
}

// Ready is closed once Run has joined the consumer group.
func (o *Outbox) Ready() <-chan struct{} { return o.ready }

// Run sends, retries and dead-letters until ctx ends, then finishes the
// batches in flight and returns nil. It returns an error only if it
// cannot join the consumer group.
func (o *Outbox) Run(ctx context.Context) error {
	if err := o.svc.st.XGroupCreate(ctx, StreamOutbox, groupOutbox, "0"); err != nil {
		return err
	}
	close(o.ready)
	var g errgroup.Group
	for range o.svc.cfg.Workers {
		g.Go(func() error { o.loop(ctx); return nil })
	}
	g.Go(func() error {
		o.svc.retries(o.consumer).Run(ctx, o.svc.cfg.Poll, func(err error) { o.log.Warn("push retry mover", "err", err) })
		return nil
	})
	return g.Wait()
}

// loop reads batches and sends them, one batch at a time.
func (o *Outbox) loop(ctx context.Context) {
	st, cfg := o.svc.st, o.svc.cfg
	var lastClaim time.Time
	for ctx.Err() == nil {
		var es []state.Entry
		var err error
		if time.Since(lastClaim) > cfg.ClaimIdle/2 {
			lastClaim = time.Now()
			es, err = st.XAutoClaim(ctx, StreamOutbox, groupOutbox, o.consumer, cfg.ClaimIdle, cfg.Batch)
		}
		if err == nil && len(es) == 0 {
			es, err = st.XReadGroup(ctx, StreamOutbox, groupOutbox, o.consumer, cfg.Batch, readBlock)
		}
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, state.ErrClosed) {
				return
			}
			o.log.Warn("push outbox read", "err", err)
			sleepCtx(ctx, time.Second)
			continue
		}
		if len(es) > 0 {
			o.process(ctx, es)
		}
	}
}

// job is one notification of a batch on its way.
type job struct {
	entry string
	n     Notification
	user  *userRecord
	msgs  []int // indexes into the batch's messages
	ok    bool  // outcome recorded: acknowledge
}

// process sends one batch: every notification's messages go out
// together (FCM in SendEach calls of up to 500), then each notification's
// outcome is recorded and the batch acknowledged. A notification whose
// outcome could not be recorded (store error) stays pending, and
// XAutoClaim hands it out again.
func (o *Outbox) process(ctx context.Context, es []state.Entry) {
	s := o.svc
	// A batch that started finishes even when the node shuts down, so
	// its outcome is recorded instead of repeated after ClaimIdle. It
	// must settle well within ClaimIdle, or another node would claim
	// and send it a second time: half of it is the bound.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.ClaimIdle/2)
	defer cancel()
	now := s.now()
	jobs := make([]*job, 0, len(es))
	var msgs []*Message
	var acks []string
	for _, e := range es {
		j := &job{entry: e.ID}
		if err := json.Unmarshal(e.Data, &j.n); err != nil {
			o.log.Error("push: undecodable notification, dropped", "entry", e.ID, "err", err)
			acks = append(acks, e.ID)
			continue
		}
		u, _, err := s.loadUser(ctx, j.n.Recipient)
		if err != nil {
			o.log.Warn("push: load user", "user", j.n.Recipient, "err", err)
			continue // pending: retried after ClaimIdle
		}
		j.user = u
		spec := kinds[j.n.Kind]
		if until, quiet := quietUntil(u.Quiet, now); quiet && !spec.urgent {
			// Held, not dropped: it goes out when the quiet hours end.
			if err := s.park(ctx, j.n, until.Sub(now)); err != nil {
				o.log.Warn("push: hold for quiet hours", "notification", j.n.ID, "err", err)
				continue
			}
			s.stats.quietHeld.Add(1)
			acks = append(acks, e.ID)
			continue
		}
		for i := range u.Devices {
			d := &u.Devices[i]
			if j.n.Started && !slices.Contains(j.n.Pending, d.InstallationID) {
				continue
			}
			j.msgs = append(j.msgs, len(msgs))
			msgs = append(msgs, s.message(&j.n, d))
		}
		jobs = append(jobs, j)
	}
	results := s.sendAll(ctx, msgs)
	s.stats.countResults(results)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 16) // store writes in flight for one batch
	for _, j := range jobs {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			j.ok = o.settle(ctx, j, msgs, results)
		})
	}
	wg.Wait()
	for _, j := range jobs {
		if j.ok {
			acks = append(acks, j.entry)
		}
	}
	if len(acks) > 0 {
		if err := s.st.XAck(ctx, StreamOutbox, groupOutbox, acks...); err != nil {
			o.log.Warn("push outbox ack", "err", err)
		}
	}
}

// sendAll sends msgs through their platforms' senders, side by side.
func (s *Service) sendAll(ctx context.Context, msgs []*Message) []Result {
	results := make([]Result, len(msgs))
	byPlatform := map[Sender][]int{}
	for i, m := range msgs {
		snd := s.senders[m.Device.Platform]
		if snd == nil {
			results[i] = Result{Outcome: Failed, Reason: ErrNoSender.Error()}
			continue
		}
		byPlatform[snd] = append(byPlatform[snd], i)
	}
	var wg sync.WaitGroup
	for snd, idx := range byPlatform {
		wg.Go(func() {
			part := make([]*Message, len(idx))
			for k, i := range idx {
				part[k] = msgs[i]
			}
			for k, r := range snd.Send(ctx, part) {
				results[idx[k]] = r
			}
		})
	}
	wg.Wait()
	return results
}

// settle records one notification's outcome: prunes dead tokens, parks
// the devices to retry or dead-letters them, and reports a finished
// notification on its ticket. It returns false on a store error (the
// entry stays pending and is retried).
func (o *Outbox) settle(ctx context.Context, j *job, msgs []*Message, results []Result) bool {
	s, n := o.svc, &j.n
	n.Attempts++
	var retry []string
	var wait time.Duration
	for _, i := range j.msgs {
		r, d := results[i], msgs[i].Device
		switch r.Outcome {
		case Delivered:
			n.Sent++
		case Gone:
			if err := s.recordPruned(ctx, n, d, r.Reason); err != nil {
				o.log.Warn("push: prune", "notification", n.ID, "err", err)
				return false
			}
			n.Pruned++
		case Failed:
			n.Failed++
			n.LastError = r.Reason
		case Retry:
			retry = append(retry, d.InstallationID)
			wait = max(wait, r.RetryAfter)
			n.LastError = r.Reason
		}
	}
	n.Started, n.Pending = true, retry
	if len(retry) > 0 && n.Attempts < s.cfg.MaxAttempts {
		delay := max(backoff(n.Attempts, s.cfg.BaseDelay, s.cfg.MaxDelay), wait)
		if err := s.park(ctx, *n, delay); err != nil {
			o.log.Warn("push: schedule retry", "notification", n.ID, "err", err)
			return false
		}
		o.log.Info("push: will retry", "notification", n.ID, "devices", len(retry), "attempt", n.Attempts, "reason", n.LastError, "in", delay)
		return true
	}
	if len(retry) > 0 {
		n.Failed += len(retry)
		if err := s.bury(ctx, n, len(retry)); err != nil {
			o.log.Warn("push: dead-letter", "notification", n.ID, "err", err)
			return false
		}
		s.stats.deadLettered.Add(uint64(len(retry)))
	}
	if err := s.report(ctx, n); err != nil {
		// The outcome is recorded; only the timeline misses it.
		o.log.Warn("push: report on ticket", "notification", n.ID, "err", err)
	}
	return true
}

// message renders n for d.
func (s *Service) message(n *Notification, d *device) *Message {
	spec := kinds[n.Kind]
	title, body := render(n.Kind, d.Locale, n.Params)
	data := map[string]string{"kind": string(n.Kind), "notification_id": n.ID}
	if n.TicketID != "" {
		data["ticket_id"] = n.TicketID
		data["link"] = s.cfg.DeepLink + n.TicketID
	}
	if spec.category != "" {
		data["action"] = spec.category
	}
	for _, k := range []string{"call_id", "media"} {
		if v := n.Params[k]; v != "" {
			data[k] = v
		}
	}
	if spec.dataOnly {
		data["title"], data["body"] = title, body
	}
	m := &Message{Device: d, Title: title, Body: body, Data: data, High: spec.high, DataOnly: spec.dataOnly,
		TTL: spec.ttl, Category: spec.category}
	if spec.collapse != "" {
		m.CollapseKey = spec.collapse + n.TicketID
	}
	return m
}

// backoff is the delay after the n-th failed attempt: exponential from
// base, capped at maxDelay, with full jitter (uniform in [0, cap]), which
// spreads the retries of a burst that failed together (AWS Architecture
// Blog, "Exponential Backoff And Jitter").
func backoff(n int, base, maxDelay time.Duration) time.Duration {
	c := float64(base) * math.Pow(2, float64(n-1))
	if c > float64(maxDelay) || math.IsInf(c, 0) {
		c = float64(maxDelay)
	}
	return time.Duration(rand.Int64N(int64(c) + 1))
}

// park stores n to be put back on the outbox after delay.
func (s *Service) park(ctx context.Context, n Notification, delay time.Duration) error {
	raw, err := json.Marshal(n)
	if err != nil {
		return err
	}
	return s.retries("").Park(ctx, n.ID, raw, delay)
}

// retries is the queue of parked notifications; node names the mover's
// lease.
func (s *Service) retries(node string) *retryq.Queue {
	return retryq.New(s.st, retryq.Config{Prefix: "push:", Stream: StreamOutbox, Node: node, Lease: s.cfg.ClaimIdle, Now: s.now})
}

func sleepCtx(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
