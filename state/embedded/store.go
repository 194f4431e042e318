package embedded

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/switchboard/switchboard/state"
)

var _ state.Store = (*Store)(nil)

// FileName is the name of the bbolt file inside the data directory.
const FileName = "state.db"

// errClosed is what every method returns after Close.
var errClosed = fmt.Errorf("embedded: %w", state.ErrClosed)

// Top-level buckets.
var (
	bucketKV      = []byte("kv")      // key -> expiry(8) + value
	bucketKVExp   = []byte("kvexp")   // expiry(8) + key -> nothing, for the sweeper
	bucketStreams = []byte("streams") // stream name -> bucket, see stream.go
	bucketGeo     = []byte("geo")     // set name -> bucket member -> lat(8) lon(8)
)

// Option configures Open for the rarely changed knobs.
type Option func(*options)

type options struct {
	sweepInterval time.Duration
	lockTimeout   time.Duration
}

func defaultOptions() options {
	return options{
		sweepInterval: time.Second,
		lockTimeout:   time.Second,
	}
}

// WithSweepInterval sets how often expired keys and counters are deleted
// (zero: 1s). Reads never see an expired key whatever this is: the sweeper
// only reclaims space, so it can run rarely.
func WithSweepInterval(d time.Duration) Option {
	return func(o *options) {
		if d > 0 {
			o.sweepInterval = d
		}
	}
}

// WithLockTimeout sets how long Open waits for the file lock another
// process may hold on the data directory (zero: 1s). Waiting forever, the
// bbolt default, would turn "two servers on one directory" into a hang.
func WithLockTimeout(d time.Duration) Option {
	return func(o *options) {
		if d > 0 {
			o.lockTimeout = d
		}
	}
}

// Store is the embedded state.Store. It is safe for concurrent use.
type Store struct {
	db   *bolt.DB
	opts options

	// closeMu guards closed. Every method holds it for reading while it
	// touches the database or queues a write, so Close (which takes it for
	// writing) knows nobody is using the database when it closes it.
	// Blocking reads release it while they wait.
	closeMu sync.RWMutex
	closed  bool
	// done is closed by Close: it wakes blocked readers and stops the
	// sweeper.
	done      chan struct{}
	closeOnce sync.Once
	closeErr  error

	now      func() time.Time // the clock stream IDs come from; tests stop it
	writes   chan *write      // to the committer; closed by Close
	log      *wal             // the committer's
	progress progress         // the applier's
	pending  pending          // what each stream and index waits for
	tails    tails            // the streams' newest entries
	wg       sync.WaitGroup   // the committer and the sweeper

	counters counters
	geo      geoSets
	streams  notifier
	hub      hub
}

// Open opens (creating if needed) the store in dir.
func Open(dir string, opts ...Option) (*Store, error) {
	o := defaultOptions()
	for _, opt := range opts {
		opt(&o)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("embedded: create data directory: %w", err)
	}
	path := filepath.Join(dir, FileName)
	db, err := bolt.Open(path, 0o600, &bolt.Options{
		Timeout: o.lockTimeout,
		// Not writing the freelist on every commit saves a page write
		// per transaction; the price is a scan of the file at Open, which
		// is what etcd chooses too.
		NoFreelistSync: true,
		FreelistType:   bolt.FreelistMapType,
	})
	if err != nil {
		if errors.Is(err, bolt.ErrTimeout) {
			return nil, fmt.Errorf("embedded: open %s: another process holds it: %w", path, err)
		}
		return nil, fmt.Errorf("embedded: open %s: %w", path, err)
	}
	s := &Store{
		db:       db,
		opts:     o,
		now:      time.Now,
		done:     make(chan struct{}),
		writes:   make(chan *write, maxBatch),
		counters: counters{m: make(map[string]counter)},
		geo:      geoSets{sets: make(map[string]*geoIndex)},
		streams:  notifier{m: make(map[string]*waitSet)},
		hub:      hub{channels: make(map[string]map[*subscription]struct{}), all: make(map[*subscription]struct{})},
	}
	if err := db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketKV, bucketKVExp, bucketIxMembers, bucketIxScores, bucketIxCounts, bucketStreams, bucketGeo, bucketWAL} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		db.Close()
		return nil, fmt.Errorf("embedded: create buckets: %w", err)
	}
	if err := migrateIndexes(db); err != nil {
		db.Close()
		return nil, fmt.Errorf("embedded: move indexes to the shared trees: %w", err)
	}
	last, err := replayLog(db, dir)
	if err != nil {
		db.Close()
		return nil, err
	}
	s.log = &wal{dir: dir, segmentSize: walSegmentSize}
	s.progress.hurry = make(chan struct{}, 1)
	s.progress.applied.Store(last)
	if err := s.loadGeo(); err != nil {
		db.Close()
		return nil, fmt.Errorf("embedded: load geo sets: %w", err)
	}
	s.wg.Add(2)
	go s.commitLoop()
	go s.sweepLoop()
	return s, nil
}

// Ping reports whether the store is open.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.enter(ctx); err != nil {
		return err
	}
	defer s.leave()
	return nil
}

// Close stops the committer (after it commits every queued write) and the
// sweeper, ends all subscriptions, wakes blocked readers with ErrClosed
// and closes the file. It is idempotent; concurrent calls all wait for the
// first to finish.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.closeMu.Lock()
		s.closed = true
		// No method holds closeMu now, so nobody can be sending on writes.
		close(s.writes)
		close(s.done)
		s.closeMu.Unlock()

		s.wg.Wait()
		s.hub.closeAll()
		if err := s.db.Close(); err != nil {
			s.closeErr = fmt.Errorf("embedded: close: %w", err)
		}
	})
	return s.closeErr
}

// enter admits a method: it fails after Close or on a done context, and
// otherwise holds closeMu for reading until leave.
func (s *Store) enter(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.closeMu.RLock()
	if s.closed {
		s.closeMu.RUnlock()
		return errClosed
	}
	return nil
}

func (s *Store) leave() { s.closeMu.RUnlock() }

// viewOf runs fn, a read of the stream or index k, in a read transaction
// that holds every write to it answered before it began: it waits, if it
// must, for the applier to write the logged appends to k into the tree.
func (s *Store) viewOf(ctx context.Context, k pendKey, fn func(tx *bolt.Tx) error) error {
	if err := s.progress.wait(ctx, s.pending.of(k)); err != nil {
		return err
	}
	return s.view(ctx, fn)
}

// view runs fn in a read transaction. It does not wait for the applier:
// for reads of keys, which logged appends never write, and of what the
// caller knows is applied.
func (s *Store) view(ctx context.Context, fn func(tx *bolt.Tx) error) error {
	if err := s.enter(ctx); err != nil {
		return err
	}
	defer s.leave()
	return s.db.View(fn)
}

// sweepLoop deletes expired keys and counters every sweepInterval until
// Close. Reads check expiry themselves; this only reclaims space.
func (s *Store) sweepLoop() {
	defer s.wg.Done()
	t := time.NewTicker(s.opts.sweepInterval)
	defer t.Stop()
	for {
		select {
		case <-s.done:
			return
		case <-t.C:
			s.counters.sweep(time.Now())
			// Keep sweeping while full batches come back, so a burst of
			// expiries is cleared in one tick rather than over many.
			for {
				n, err := s.sweepKV(time.Now())
				if err != nil || n < sweepBatch {
					break
				}
			}
		}
	}
}

// checkName refuses names bbolt cannot store as keys: empty ones, and
// ones longer than its key limit less room for our prefixes.
func checkName(what, name string) error {
	if name == "" {
		return fmt.Errorf("%w: empty %s", state.ErrInvalidArgument, what)
	}
	if len(name) > maxNameLen {
		return fmt.Errorf("%w: %s longer than %d bytes", state.ErrInvalidArgument, what, maxNameLen)
	}
	return nil
}

// maxNameLen is bbolt's key limit less the 8-byte prefixes some buckets
// put in front of a key or member.
const maxNameLen = bolt.MaxKeySize - 16

// checkCount refuses negative counts.
func checkCount(what string, n int) error {
	if n < 0 {
		return fmt.Errorf("%w: negative %s %d", state.ErrInvalidArgument, what, n)
	}
	return nil
}

// checkTTL refuses negative TTLs (zero means no expiry).
func checkTTL(ttl time.Duration) error {
	if ttl < 0 {
		return fmt.Errorf("%w: negative ttl %v", state.ErrInvalidArgument, ttl)
	}
	return nil
}
