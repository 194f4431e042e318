package embedded

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
)

// maxBatch caps how many writes share one transaction, so one commit's
// dirty pages stay small and no writer waits behind thousands of others.
const maxBatch = 512

// bigAppend is the size from which an indexed append skips the log and
// is committed into the tree directly: it fills a commit of its own
// (AppendBatch of appliance diagnostics, a thousand at a time), and
// writing its entries twice, to the log and then the tree, cost a
// sixth of the frames per second a phone relays.
const bigAppend = 256

// write is one queued write. fn may run more than once (see commit), so
// it must compute its results from the transaction it is given and
// assign, not accumulate, them. after runs once the write is durable, in
// commit order: it updates memory (geo index, waiters) so memory never
// runs ahead of, or out of order with, what is durable.
//
// A write with appends set instead of fn is an indexed append (XAdd,
// XAddIndexed): the committer logs it, or, big, hands it to the applier
// to commit with the writes beside it (appendRun); either way the
// appends applied together are merged (writeRun), which is where a busy
// ticket stream spends its time.
type write struct {
	fn      func(tx *bolt.Tx) error
	appends *indexedAppend
	after   func()
	done    chan error
}

// update queues fn (and after) for the committer and waits until it is
// durable.
func (s *Store) update(ctx context.Context, fn func(tx *bolt.Tx) error, after func()) error {
	return s.queue(ctx, &write{fn: fn, after: after, done: make(chan error, 1)})
}

// queue hands w to the committer and waits until it is durable. Once
// queued, the write is waited for even if ctx ends: it will commit
// anyway, and reporting a cancellation for a write that happened would
// make a caller retry a claim it already holds.
func (s *Store) queue(ctx context.Context, w *write) error {
	if err := s.enter(ctx); err != nil {
		return err
	}
	select {
	case s.writes <- w:
	case <-ctx.Done():
		s.leave()
		return ctx.Err()
	}
	s.leave()
	return <-w.done
}

// commitLoop is the committer: it takes the first queued write, every
// other write already queued behind it, and commits them as one batch.
// Writes arriving during the batch's fsync queue up for the next one, so
// batches grow with load without any timer (bbolt's own Batch waits up
// to 10ms for company, which would cap a lone writer at about 100
// commits a second).
//
// A batch's indexed appends are logged (wal.go): the committer gives the
// entries their IDs, writes the record, answers the writers and hands
// the appends to the applier to write into the tree. The batch's other
// writes go to the applier next, to commit in one transaction. The
// applier takes them in the order the committer hands them over, so the
// tree sees every write in commit order.
func (s *Store) commitLoop() {
	defer s.wg.Done()
	items := make(chan applyItem, 16)
	applied := make(chan struct{})
	go func() {
		defer close(applied)
		s.applyLoop(items)
	}()
	c := committer{s: s, items: items, pos: s.progress.applied.Load(), heads: map[string]*streamMetaRec{}}
	for w := range s.writes {
		batch := append(make([]*write, 0, 64), w)
	fill:
		for len(batch) < maxBatch {
			select {
			case w, ok := <-s.writes:
				if !ok {
					break fill
				}
				batch = append(batch, w)
			default:
				break fill
			}
		}
		c.take(batch)
	}
	close(items)
	<-applied
	s.log.close(s.progress.applied.Load() == c.pos && s.progress.failed() == nil)
}

// committer is the committer's own state.
type committer struct {
	s     *Store
	items chan<- applyItem // to the applier
	pos   uint64           // the position of the last batch handed to it
	// heads are the heads of the streams logged to since the applier was
	// last seen idle, as the logged batches left them; stale says a
	// batch committed since may have moved one, so they must be read
	// again once it is applied.
	heads map[string]*streamMetaRec
	stale bool
}

// take hands batch to the applier, or answers its writers itself when
// the store has failed. Its appends are logged, and answered, first: its
// writers are all waiting, none yet answered, so any order among them is
// one they could have run in, and logging the appends of every batch
// keeps them off the slower path however busy other writes keep the
// store.
func (c *committer) take(batch []*write) {
	s := c.s
	if err := s.progress.failed(); err != nil {
		for _, w := range batch {
			w.done <- err
		}
		return
	}
	appends, others := make([]*write, 0, len(batch)), []*write(nil)
	for _, w := range batch {
		if w.appends != nil && len(w.appends.entries) < bigAppend {
			appends = append(appends, w)
		} else {
			others = append(others, w)
		}
	}
	if len(appends) > 0 {
		if c.log(appends, c.pos+1) == nil {
			c.pos++
			s.log.release(s.progress.applied.Load())
			// Published before the writers hear, so a read they start
			// next waits for the tree to hold their entries.
			s.pending.note(c.pos, appends, s.progress.applied.Load())
			for _, w := range appends {
				if w.after != nil {
					w.after()
				}
				w.done <- nil
			}
			c.items <- applyItem{batch: appends, pos: c.pos, logged: true}
			appends = nil
		}
	}
	if len(appends)+len(others) == 0 {
		return
	}
	// Committed in the tree directly: big appends, and appends the log
	// failed to take (the commit reports what is wrong, if anything is).
	// They take their IDs from the tree's heads; nothing else moves a
	// head.
	others = append(appends, others...)
	for _, w := range others {
		if w.appends != nil {
			c.stale = true
		}
	}
	c.pos++
	c.items <- applyItem{batch: others, pos: c.pos}
}

// log gives batch's entries their IDs and writes its record, at pos.
func (c *committer) log(batch []*write, pos uint64) error {
	s := c.s
	if c.stale {
		if err := s.progress.wait(context.Background(), c.pos); err != nil {
			return err
		}
		clear(c.heads)
		c.stale = false
	}
	if err := assignIDs(batch, s.now(), c.head); err != nil {
		return err
	}
	if err := s.log.append(pos, batch); err != nil {
		return err
	}
	s.tails.addRun(batch)
	return nil
}

// head returns stream's head. One not in heads has had nothing appended
// since the applier was last idle, so the tree's is current.
func (c *committer) head(stream string) (*streamMetaRec, error) {
	if h := c.heads[stream]; h != nil {
		return h, nil
	}
	var h *streamMetaRec
	err := c.s.db.View(func(tx *bolt.Tx) error {
		h = streamHead(tx, stream)
		return nil
	})
	if err != nil {
		return nil, err
	}
	c.heads[stream] = h
	return h, nil
}

// applyItem is a batch for the applier: logged, and already answered, or
// to commit.
type applyItem struct {
	batch  []*write
	pos    uint64
	logged bool
}

// An apply commits at most maxApply logged writes holding at most
// maxApplyEntries entries (one write may hold a thousand), so its dirty
// pages stay bounded. When it finds applyLoad or more writes waiting,
// the store is busy, and it waits up to applyWait for more before it
// commits, unless a reader is waiting for it: a bbolt commit costs a
// page per index it touches however few entries each gets, so fewer,
// bigger commits leave more of the machine to the writers
// (BenchmarkAppend in ticket/: a tenth more events a second). A reader
// following a stream never waits for it: it reads the stream's tail
// (tail.go).
const (
	maxApply        = 8 * maxBatch
	maxApplyEntries = 64 << 10
	applyLoad       = maxBatch / 4
	applyWait       = 5 * time.Millisecond
)

// applyLoop is the applier: it commits each batch handed to it, and
// writes every logged batch waiting into the tree in one transaction.
//
// Writers are told, and the after functions run, by a second goroutine,
// the notifier, in commit order, while the applier begins the next
// transaction: waking hundreds of writers was an eighth of the
// committer's time under load.
func (s *Store) applyLoop(items <-chan applyItem) {
	notices := make(chan notice, 2)
	notified := make(chan struct{})
	go func() {
		defer close(notified)
		for n := range notices {
			n.deliver()
		}
	}()
	defer func() {
		close(notices)
		<-notified
	}()
	var held *applyItem // taken while gathering logged batches, for next
	for {
		it, ok := applyItem{}, true
		if held != nil {
			it, held = *held, nil
		} else if it, ok = <-items; !ok {
			return
		}
		if !it.logged {
			n := notice{batch: it.batch, err: s.progress.failed()}
			if n.err == nil {
				n = s.commit(it.batch)
			}
			if n.err == nil {
				s.tails.addRun(n.batch)
			}
			s.progress.advance(it.pos)
			notices <- n
			continue
		}
		logged, pos, entries := it.batch, it.pos, entriesOf(it.batch)
		var deadline <-chan time.Time
	gather:
		for len(logged) < maxApply && entries < maxApplyEntries {
			var nx applyItem
			var ok bool
			select {
			case nx, ok = <-items:
			default:
				// Nothing waiting. Under load, wait a little for more.
				if deadline == nil {
					if len(logged) < applyLoad {
						break gather
					}
					deadline = time.After(applyWait)
				}
				select {
				case nx, ok = <-items:
				case <-deadline:
					break gather
				case <-s.progress.hurry:
					break gather
				}
			}
			if !ok {
				break
			}
			if !nx.logged {
				held = &nx
				break
			}
			logged, pos, entries = append(logged, nx.batch...), nx.pos, entries+entriesOf(nx.batch)
		}
		err := s.progress.failed()
		if err == nil {
			err = s.db.Update(func(tx *bolt.Tx) error {
				return run(func(tx *bolt.Tx) error { return applyLogged(tx, logged, pos) }, tx)
			})
		}
		if err != nil {
			// The writers were told their entries are durable, and they
			// are, in the log; the tree cannot take them, so the store
			// stops and the next Open replays them.
			s.progress.fail(fmt.Errorf("embedded: apply the log: %w (reopen the store to replay it)", err))
		} else {
			s.progress.advance(pos)
		}
	}
}

// entriesOf counts the entries of a logged batch's appends.
func entriesOf(batch []*write) int {
	n := 0
	for _, w := range batch {
		n += len(w.appends.entries)
	}
	return n
}

// notice is the outcome of a committed batch, for its writers.
type notice struct {
	batch []*write
	err   error
}

// deliver runs the batch's after functions, if it committed, and hands
// every writer the result. after runs only here (or, for a logged batch,
// in the committer once it is durable), in commit order, so memory never
// runs ahead of, or out of order with, what is durable.
func (n notice) deliver() {
	for _, w := range n.batch {
		if n.err == nil && w.after != nil {
			w.after()
		}
		w.done <- n.err
	}
}

// commit commits batch in one transaction. If a write fails, the
// transaction is rolled back, that write gets its error, and the others
// run again in a fresh transaction (bbolt has no savepoints). Writes
// return errors only for the unexpected (a full disk, a corrupt bucket):
// refusals a caller should see, like a missing group, are results. It
// returns the outcome for the writes left in the batch.
func (s *Store) commit(batch []*write) notice {
	for len(batch) > 0 {
		failed, err := s.tryCommit(batch)
		if failed < 0 {
			return notice{batch: batch, err: err}
		}
		// A refused write changed nothing, so it may hear before the
		// writers of batches still with the notifier.
		batch[failed].done <- err
		batch = append(batch[:failed], batch[failed+1:]...)
	}
	return notice{}
}

// tryCommit runs batch in one transaction. It returns the index of the
// write that failed, or -1 with the result of the commit.
func (s *Store) tryCommit(batch []*write) (int, error) {
	tx, err := s.db.Begin(true)
	if err != nil {
		return -1, fmt.Errorf("embedded: begin: %w", err)
	}
	for i := 0; i < len(batch); {
		if batch[i].appends == nil {
			if err := run(batch[i].fn, tx); err != nil {
				_ = tx.Rollback()
				return i, err
			}
			i++
			continue
		}
		j := i + 1
		for j < len(batch) && batch[j].appends != nil {
			j++
		}
		appends := batch[i:j]
		if err := run(func(tx *bolt.Tx) error { return appendRun(tx, appends, s.now()) }, tx); err != nil {
			// Only the unexpected (a full disk, a corrupt bucket) fails
			// here; blaming the run's first write lets the rest retry.
			_ = tx.Rollback()
			return i, err
		}
		i = j
	}
	if err := tx.Commit(); err != nil {
		return -1, fmt.Errorf("embedded: commit: %w", err)
	}
	return -1, nil
}

// run calls fn, turning a panic into an error so one bad write cannot
// kill the committer and with it every other writer.
func run(fn func(*bolt.Tx) error, tx *bolt.Tx) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("embedded: write panicked: %v", p)
		}
	}()
	return fn(tx)
}

// progress is how far the applier has come, for readers and the
// committer to wait on.
type progress struct {
	applied atomic.Uint64 // the position of the last batch applied

	hurry chan struct{} // a waiter asks the applier not to wait for more

	err atomic.Pointer[error] // why applying failed; the store then refuses writes

	mu sync.Mutex
	ch chan struct{} // closed by the next advance or fail
}

// advance records that the batch at pos is applied.
func (p *progress) advance(pos uint64) {
	p.applied.Store(pos)
	p.mu.Lock()
	p.wake()
	p.mu.Unlock()
}

// fail records that the applier cannot go on, waking every waiter.
func (p *progress) fail(err error) {
	p.err.CompareAndSwap(nil, &err)
	p.mu.Lock()
	p.wake()
	p.mu.Unlock()
}

func (p *progress) wake() {
	if p.ch != nil {
		close(p.ch)
		p.ch = nil
	}
}

func (p *progress) failed() error {
	if e := p.err.Load(); e != nil {
		return *e
	}
	return nil
}

// wait waits until the batch at pos is applied.
func (p *progress) wait(ctx context.Context, pos uint64) error {
	for p.applied.Load() < pos {
		p.mu.Lock()
		if err := p.failed(); err != nil {
			p.mu.Unlock()
			return err
		}
		if p.applied.Load() >= pos {
			p.mu.Unlock()
			return nil
		}
		if p.ch == nil {
			p.ch = make(chan struct{})
		}
		ch := p.ch
		p.mu.Unlock()
		select {
		case p.hurry <- struct{}{}:
		default:
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// pending holds, for each stream and index a logged batch wrote, the
// position of the last such batch: a read of one waits until that is
// applied, not for every batch logged (an appliance's command queue must
// not wait for the ticket stream's timelines).
type pending struct {
	mu      sync.Mutex
	m       map[pendKey]uint64
	pruneAt int
}

// pendKey names a stream, or an index.
type pendKey struct {
	index bool
	name  string
}

// note records that the logged batch at pos writes batch's streams and
// indexes, forgetting those whose last batch is applied when the map
// has grown.
func (p *pending) note(pos uint64, batch []*write, applied uint64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.m == nil {
		p.m = map[pendKey]uint64{}
	}
	for _, w := range batch {
		a := w.appends
		p.m[pendKey{name: a.stream}] = pos
		for _, e := range a.entries {
			for _, ie := range e.Indexes {
				p.m[pendKey{index: true, name: ie.Index}] = pos
			}
		}
	}
	if len(p.m) > p.pruneAt {
		for k, at := range p.m {
			if at <= applied {
				delete(p.m, k)
			}
		}
		p.pruneAt = 2*len(p.m) + 1024
	}
}

// of returns the position a read of k waits for.
func (p *pending) of(k pendKey) uint64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.m[k]
}
