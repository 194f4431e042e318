package embedded

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/switchboard/switchboard/state"
)

// A KV record is the expiry (Unix nanoseconds, big-endian, 0 for none)
// followed by the value. Keeping the expiry in the record lets a read
// decide "expired" without a second lookup; the kvexp bucket orders the
// same expiries so the sweeper finds what to delete without a full scan.

// sweepBatch bounds the deletions of one sweep transaction, so a mass
// expiry never holds the writer for long; the sweeper loops until a
// batch comes back short.
const sweepBatch = 10000

func expiryFor(now time.Time, ttl time.Duration) int64 {
	if ttl <= 0 {
		return 0
	}
	return now.Add(ttl).UnixNano()
}

func encodeRecord(exp int64, value []byte) []byte {
	rec := make([]byte, 8+len(value))
	binary.BigEndian.PutUint64(rec, uint64(exp))
	copy(rec[8:], value)
	return rec
}

func recordExpiry(rec []byte) int64 { return int64(binary.BigEndian.Uint64(rec)) }

// live reports whether rec exists and has not expired at now.
func live(rec []byte, now int64) bool {
	if len(rec) < 8 {
		return false
	}
	exp := recordExpiry(rec)
	return exp == 0 || now < exp
}

func expKey(exp int64, key []byte) []byte {
	k := make([]byte, 8+len(key))
	binary.BigEndian.PutUint64(k, uint64(exp))
	copy(k[8:], key)
	return k
}

// putKV writes rec under key, keeping the expiry index in step.
func putKV(tx *bolt.Tx, key, rec []byte) error {
	kv, ex := tx.Bucket(bucketKV), tx.Bucket(bucketKVExp)
	if err := dropExpiry(kv, ex, key); err != nil {
		return err
	}
	if exp := recordExpiry(rec); exp != 0 {
		if err := ex.Put(expKey(exp, key), nil); err != nil {
			return err
		}
	}
	return kv.Put(key, rec)
}

// deleteKV removes key and its expiry index entry.
func deleteKV(tx *bolt.Tx, key []byte) error {
	kv, ex := tx.Bucket(bucketKV), tx.Bucket(bucketKVExp)
	if err := dropExpiry(kv, ex, key); err != nil {
		return err
	}
	return kv.Delete(key)
}

func dropExpiry(kv, ex *bolt.Bucket, key []byte) error {
	if old := kv.Get(key); len(old) >= 8 {
		if exp := recordExpiry(old); exp != 0 {
			return ex.Delete(expKey(exp, key))
		}
	}
	return nil
}

// Get returns the value of key, or state.ErrNotFound.
func (s *Store) Get(ctx context.Context, key string) ([]byte, error) {
	if err := checkName("key", key); err != nil {
		return nil, err
	}
	var out []byte
	err := s.view(ctx, func(tx *bolt.Tx) error {
		rec := tx.Bucket(bucketKV).Get([]byte(key))
		if !live(rec, time.Now().UnixNano()) {
			return state.ErrNotFound
		}
		// bbolt's memory is valid only inside the transaction.
		out = bytes.Clone(rec[8:])
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("embedded: get: %w", err)
	}
	return out, nil
}

// Set stores value under key with ttl (0: no expiry).
func (s *Store) Set(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	if err := checkKV(key, ttl); err != nil {
		return err
	}
	k, rec := []byte(key), encodeRecord(expiryFor(time.Now(), ttl), value)
	if err := s.update(ctx, func(tx *bolt.Tx) error { return putKV(tx, k, rec) }, nil); err != nil {
		return fmt.Errorf("embedded: set: %w", err)
	}
	return nil
}

// SetNX stores value only if key is absent or expired.
func (s *Store) SetNX(ctx context.Context, key string, value []byte, ttl time.Duration) (bool, error) {
	return s.CompareAndSwap(ctx, key, nil, value, ttl)
}

// CompareAndSwap replaces key's value and TTL if its value equals old (nil
// old: if key is absent). The compare and the write share one transaction
// of the single committer, which is what makes it atomic.
func (s *Store) CompareAndSwap(ctx context.Context, key string, old, value []byte, ttl time.Duration) (bool, error) {
	if err := checkKV(key, ttl); err != nil {
		return false, err
	}
	k := []byte(key)
	// The expiry is fixed when the call is made, not when it commits, so
	// a TTL means the same thing however long the queue.
	rec := encodeRecord(expiryFor(time.Now(), ttl), value)
	var swapped bool
	err := s.update(ctx, func(tx *bolt.Tx) (err error) {
		swapped, err = swapInTx(tx, k, old, rec)
		return err
	}, nil)
	if err != nil {
		return false, fmt.Errorf("embedded: compare and swap: %w", err)
	}
	return swapped, nil
}

// swapInTx writes rec under k inside tx if k's value is old (nil old: if
// k is absent) and reports whether it did.
func swapInTx(tx *bolt.Tx, k, old, rec []byte) (bool, error) {
	cur := tx.Bucket(bucketKV).Get(k)
	present := live(cur, time.Now().UnixNano())
	if old == nil && present || old != nil && (!present || !bytes.Equal(cur[8:], old)) {
		return false, nil
	}
	return true, putKV(tx, k, rec)
}

// CompareAndDelete deletes key if its value equals old.
func (s *Store) CompareAndDelete(ctx context.Context, key string, old []byte) (bool, error) {
	if err := checkName("key", key); err != nil {
		return false, err
	}
	k := []byte(key)
	var deleted bool
	err := s.update(ctx, func(tx *bolt.Tx) error {
		cur := tx.Bucket(bucketKV).Get(k)
		deleted = live(cur, time.Now().UnixNano()) && bytes.Equal(cur[8:], old)
		if !deleted {
			return nil
		}
		return deleteKV(tx, k)
	}, nil)
	if err != nil {
		return false, fmt.Errorf("embedded: compare and delete: %w", err)
	}
	return deleted, nil
}

// Delete removes key, and the counter of the same name: Delete is how a
// rate limit is reset, whichever of the two the key names.
func (s *Store) Delete(ctx context.Context, key string) error {
	if err := checkName("key", key); err != nil {
		return err
	}
	k := []byte(key)
	err := s.update(ctx, func(tx *bolt.Tx) error { return deleteKV(tx, k) },
		func() { s.counters.delete(key) })
	if err != nil {
		return fmt.Errorf("embedded: delete: %w", err)
	}
	return nil
}

// sweepKV deletes up to sweepBatch keys expired at now and returns how
// many it deleted.
func (s *Store) sweepKV(now time.Time) (int, error) {
	var n int
	err := s.update(context.Background(), func(tx *bolt.Tx) error {
		kv, ex := tx.Bucket(bucketKV), tx.Bucket(bucketKVExp)
		limit := uint64(now.UnixNano())
		// Collect first: deleting under a bbolt cursor skips keys.
		var due [][]byte
		c := ex.Cursor()
		for k, _ := c.First(); k != nil && len(due) < sweepBatch; k, _ = c.Next() {
			if binary.BigEndian.Uint64(k) > limit {
				break
			}
			due = append(due, bytes.Clone(k))
		}
		for _, k := range due {
			if err := ex.Delete(k); err != nil {
				return err
			}
			key := k[8:]
			// The index entry may be stale only if a crash interrupted
			// nothing (writes are transactional), but check anyway: never
			// delete a key whose record carries a different expiry.
			if rec := kv.Get(key); len(rec) >= 8 && uint64(recordExpiry(rec)) == binary.BigEndian.Uint64(k) {
				if err := kv.Delete(key); err != nil {
					return err
				}
			}
		}
		n = len(due)
		return nil
	}, nil)
	return n, err
}

func checkKV(key string, ttl time.Duration) error {
	if err := checkName("key", key); err != nil {
		return err
	}
	return checkTTL(ttl)
}
