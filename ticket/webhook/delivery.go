package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/switchboard/switchboard/internal/retryq"
	"github.com/switchboard/switchboard/state"
)

// userAgent identifies our deliveries in the receivers' logs.
const userAgent = "Switchboard-Webhooks/1"

// deliverLoop reads jobs while it has free workers and runs each in a
// worker goroutine; it returns when ctx ends and every worker is done.
func (d *Dispatcher) deliverLoop(ctx context.Context) {
	st := d.svc.st
	slots := make(chan struct{}, d.cfg.Workers) // one token per running worker
	var wg sync.WaitGroup
	defer wg.Wait()
	var lastClaim time.Time
	for {
		held := acquire(ctx, slots)
		if held == 0 {
			return
		}
		var es []state.Entry
		var err error
		if time.Since(lastClaim) > d.cfg.ClaimIdle/2 {
			lastClaim = time.Now()
			es, err = st.XAutoClaim(ctx, StreamJobs, groupJobs, d.consumer, d.cfg.ClaimIdle, held)
		}
		if err == nil && len(es) == 0 {
			es, err = st.XReadGroup(ctx, StreamJobs, groupJobs, d.consumer, held, readBlock)
		}
		for range held - len(es) {
			<-slots
		}
		if err != nil {
			if d.stopped(ctx, err) {
				return
			}
			d.log.Warn("webhook jobs read", "err", err)
			sleepCtx(ctx, time.Second)
			continue
		}
		for _, e := range es {
			wg.Go(func() {
				defer func() { <-slots }()
				d.handle(ctx, e)
			})
		}
	}
}

// acquire takes one worker slot, waiting for it, then every other free
// one without waiting, and returns how many it holds (0 when ctx ended).
// Only the reader takes slots, so none is lost to a race.
func acquire(ctx context.Context, slots chan struct{}) int {
	select {
	case slots <- struct{}{}:
	case <-ctx.Done():
		return 0
	}
	held := 1
	for held < cap(slots) {
		select {
		case slots <- struct{}{}:
			held++
		default:
			return held
		}
	}
	return held
}

// tryAcquire takes an in-flight slot of subscription sub if it has one
// free.
func (d *Dispatcher) tryAcquire(sub string) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.inflight[sub] >= d.cfg.PerSubscription {
		return false
	}
	d.inflight[sub]++
	return true
}

func (d *Dispatcher) release(sub string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.inflight[sub]--; d.inflight[sub] <= 0 {
		delete(d.inflight, sub)
	}
}

// handle delivers one job and records the outcome: acknowledged when
// delivered, dropped or parked. On a store error it leaves the entry
// pending, for XAutoClaim to hand out again.
func (d *Dispatcher) handle(ctx context.Context, e state.Entry) {
	st := d.svc.st
	// A delivery that started finishes even when the node is shutting
	// down: its Timeout bounds the wait, and the outcome is recorded
	// instead of being repeated after ClaimIdle.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), d.cfg.Timeout+10*time.Second)
	defer cancel()
	ack := func() {
		if err := st.XAck(ctx, StreamJobs, groupJobs, e.ID); err != nil {
			d.log.Warn("webhook job ack", "entry", e.ID, "err", err)
		}
	}
	var j job
	if err := json.Unmarshal(e.Data, &j); err != nil {
		d.log.Error("webhook: undecodable job, dropped", "entry", e.ID, "err", err)
		ack()
		return
	}
	sub, err := d.svc.subscription(ctx, j.Sub)
	if errors.Is(err, ErrNotFound) || (err == nil && !sub.Active) {
		d.log.Info("webhook job dropped: webhook deleted or inactive", "webhook", j.Sub, "message", j.ID)
		ack()
		return
	}
	if err != nil {
		d.log.Warn("webhook job: load webhook", "webhook", j.Sub, "err", err)
		return
	}
	if !d.tryAcquire(sub.ID) {
		// This target has all its share of workers: come back later
		// rather than wait here and hold a worker others could use.
		if err := d.svc.park(ctx, j, min(d.cfg.BaseDelay, 5*time.Second)); err != nil {
			d.log.Warn("webhook job: defer", "message", j.ID, "err", err)
			return
		}
		ack()
		return
	}
	status, derr := d.post(ctx, sub, &j)
	d.release(sub.ID)
	if derr == nil {
		d.svc.stats.delivered.Add(1)
		d.log.Debug("webhook delivered", "webhook", sub.ID, "message", j.ID, "status", status)
		ack()
		return
	}
	d.svc.stats.failed.Add(1)
	j.Attempts++
	if j.Attempts >= d.cfg.MaxAttempts {
		if err := d.svc.bury(ctx, j, status, derr); err != nil {
			d.log.Warn("webhook job: dead-letter", "message", j.ID, "err", err)
			return
		}
		d.svc.stats.deadLettered.Add(1)
		d.log.Warn("webhook dead letter", "webhook", sub.ID, "message", j.ID, "attempts", j.Attempts, "status", status, "err", derr)
		ack()
		return
	}
	delay := backoff(j.Attempts, d.cfg.BaseDelay, d.cfg.MaxDelay)
	if err := d.svc.park(ctx, j, delay); err != nil {
		d.log.Warn("webhook job: schedule retry", "message", j.ID, "err", err)
		return
	}
	d.log.Info("webhook delivery failed, will retry", "webhook", sub.ID, "message", j.ID, "attempt", j.Attempts, "status", status, "err", derr, "in", delay)
	ack()
}

// post sends one signed attempt. It returns the HTTP status (0 when there
// was no answer) and nil only for a 2xx.
func (d *Dispatcher) post(ctx context.Context, sub *subscription, j *job) (int, error) {
	now := time.Now()
	sig, err := Sign(sub.Secret, j.ID, now, j.Body)
	if err != nil {
		return 0, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, sub.URL, bytes.NewReader(j.Body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", userAgent)
	req.Header.Set(HeaderID, j.ID)
	req.Header.Set(HeaderTimestamp, strconv.FormatInt(now.Unix(), 10))
	req.Header.Set(HeaderSignature, sig)
	res, err := d.client.Do(req)
	if err != nil {
		return 0, err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(res.Body, maxResponseDrain))
	_ = res.Body.Close()
	switch {
	case res.StatusCode >= 200 && res.StatusCode < 300:
		return res.StatusCode, nil
	case res.StatusCode >= 300 && res.StatusCode < 400:
		return res.StatusCode, fmt.Errorf("answered %d (redirects are not followed)", res.StatusCode)
	}
	return res.StatusCode, fmt.Errorf("answered %d", res.StatusCode)
}

// backoff is the delay after the n-th failed attempt: exponential from
// base, capped at maxDelay, with full jitter (uniform in [0, cap]), which
// spreads the retries of many jobs that failed together (AWS Architecture
// Blog, "Exponential Backoff And Jitter").
func backoff(n int, base, maxDelay time.Duration) time.Duration {
	c := float64(base) * math.Pow(2, float64(n-1))
	if c > float64(maxDelay) || math.IsInf(c, 0) {
		c = float64(maxDelay)
	}
	return time.Duration(rand.Int64N(int64(c) + 1))
}

// park stores a job to be moved back to StreamJobs after delay.
func (s *Service) park(ctx context.Context, j job, delay time.Duration) error {
	raw, err := json.Marshal(j)
	if err != nil {
		return err
	}
	return s.retries("").Park(ctx, j.ID, raw, delay)
}

// retries is the queue of parked jobs; node names the mover's lease.
func (s *Service) retries(node string) *retryq.Queue {
	return retryq.New(s.st, retryq.Config{Prefix: "wh:", Stream: StreamJobs, Node: node, Lease: s.cfg.ClaimIdle, Now: s.now})
}
