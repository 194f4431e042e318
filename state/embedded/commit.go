package embedded

import (
	"context"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// maxBatch caps how many writes share one transaction, so one commit's
// dirty pages stay small and no writer waits behind thousands of others.
const maxBatch = 512

// write is one queued write. fn may run more than once (see commit), so
// it must compute its results from the transaction it is given and
// assign, not accumulate, them. after runs in the committer once the
// transaction holding fn is durable, in commit order: it updates memory
// (geo index, waiters) so memory never runs ahead of, or out of order
// with, the file.
//
// A write with appends set instead of fn is an indexed append
// (XAddIndexed): the committer merges a run of them into one step
// (appendRun), which is where a busy ticket stream spends its time.
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
// other write already queued behind it, and commits them in one
// transaction. Writes arriving during the commit's fsync queue up for the
// next one, so batches grow with load without any timer (bbolt's own
// Batch waits up to 10ms for company, which would cap a lone writer at
// about 100 commits a second).
//
// A committed batch's writers are told by a second goroutine, the
// notifier, in commit order, while the committer begins the next
// transaction: waking hundreds of writers was an eighth of the
// committer's time under load.
func (s *Store) commitLoop() {
	defer s.wg.Done()
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
		notices <- s.commit(batch)
	}
}

// notice is the outcome of a batch, for its writers.
type notice struct {
	batch []*write
	err   error
}

// deliver runs the batch's after functions, if it committed, and hands
// every writer the result. after runs only here, in commit order, so
// memory never runs ahead of, or out of order with, the file.
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
		if err := run(func(tx *bolt.Tx) error { return appendRun(tx, appends) }, tx); err != nil {
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
