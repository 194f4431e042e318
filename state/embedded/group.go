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

// A consumer group is a bucket under its stream's "g" bucket, persisted so
// that a restart neither redelivers acknowledged work nor forgets work in
// flight: "last" is the last-delivered ID (16 bytes), and "p" holds the
// pending entries, ID -> delivery time (Unix ns, 8) + delivery count (8) +
// consumer name. Delivery times are wall-clock so idle time keeps running
// across a restart, as it does in Redis.
var (
	groupLast    = []byte("last")
	groupPending = []byte("p")
)

func pendingRec(deliveredAt time.Time, deliveries uint64, consumer []byte) []byte {
	v := make([]byte, 16+len(consumer))
	binary.BigEndian.PutUint64(v, uint64(deliveredAt.UnixNano()))
	binary.BigEndian.PutUint64(v[8:], deliveries)
	copy(v[16:], consumer)
	return v
}

func pendingSince(v []byte) time.Time { return time.Unix(0, int64(binary.BigEndian.Uint64(v))) }
func pendingCount(v []byte) uint64    { return binary.BigEndian.Uint64(v[8:]) }

// groupBucket returns the group's bucket, or nil if the stream or the
// group does not exist.
func groupBucket(tx *bolt.Tx, stream, group []byte) (sb, gb *bolt.Bucket) {
	if sb, _ = streamBucket(tx, stream, false); sb == nil {
		return nil, nil
	}
	return sb, sb.Bucket(streamGroups).Bucket(group)
}

// errNoGroup is what reads of a missing group return: the group is an
// absent thing, like a key.
func errNoGroup(stream, group string) error {
	return fmt.Errorf("%w: group %q on stream %q", state.ErrNotFound, group, stream)
}

// XGroupCreate creates group on stream (and the stream if needed),
// delivering entries after startID ("$": only new ones). An existing
// group is left as it is.
func (s *Store) XGroupCreate(ctx context.Context, stream, group, startID string) error {
	if err := checkStreamGroup(stream, group); err != nil {
		return err
	}
	var start state.ID
	if startID != "$" {
		var err error
		if start, err = state.ParseID(startID); err != nil {
			return err
		}
	}
	name, g := []byte(stream), []byte(group)
	err := s.update(ctx, func(tx *bolt.Tx) error {
		sb, err := streamBucket(tx, name, true)
		if err != nil {
			return err
		}
		groups := sb.Bucket(streamGroups)
		if groups.Bucket(g) != nil {
			return nil
		}
		gb, err := groups.CreateBucket(g)
		if err != nil {
			return err
		}
		if _, err := gb.CreateBucket(groupPending); err != nil {
			return err
		}
		last := start
		if startID == "$" {
			last = readMeta(sb).last
		}
		return gb.Put(groupLast, idKey(last))
	}, nil)
	if err != nil {
		return fmt.Errorf("embedded: xgroup create: %w", err)
	}
	return nil
}

// XReadGroup delivers up to count (0: all) never-delivered entries to
// consumer and marks them pending, waiting up to block if there are none.
func (s *Store) XReadGroup(ctx context.Context, stream, group, consumer string, count int, block time.Duration) ([]state.Entry, error) {
	if err := checkGroup(stream, group, consumer); err != nil {
		return nil, err
	}
	if err := checkCount("count", count); err != nil {
		return nil, err
	}
	name, g, c := []byte(stream), []byte(group), []byte(consumer)
	out, err := s.blocking(ctx, stream, block, func() ([]state.Entry, error) {
		// Look in a read transaction first: an idle consumer polling an
		// empty stream must not cost a commit (and an fsync) per call.
		var any bool
		err := s.viewOf(ctx, pendKey{name: stream}, func(tx *bolt.Tx) error {
			sb, gb := groupBucket(tx, name, g)
			if gb == nil {
				return errNoGroup(stream, group)
			}
			k, _ := sb.Bucket(streamEntries).Cursor().Seek(idKey(next(keyID(gb.Get(groupLast)))))
			any = k != nil
			return nil
		})
		if err != nil || !any {
			return nil, err
		}
		return s.deliver(ctx, name, g, c, count, stream, group)
	})
	if err != nil {
		return nil, fmt.Errorf("embedded: xreadgroup: %w", err)
	}
	return out, nil
}

// deliver moves up to count entries past the group's last-delivered ID to
// consumer's pending list. In the single committer, two consumers can
// never be handed the same entry.
func (s *Store) deliver(ctx context.Context, name, g, c []byte, count int, stream, group string) ([]state.Entry, error) {
	var out []state.Entry
	var missing bool
	err := s.update(ctx, func(tx *bolt.Tx) error {
		out, missing = nil, false
		sb, gb := groupBucket(tx, name, g)
		if gb == nil {
			missing = true
			return nil
		}
		pb := gb.Bucket(groupPending)
		rec := pendingRec(time.Now(), 1, c)
		var last []byte
		cur := sb.Bucket(streamEntries).Cursor()
		for k, v := cur.Seek(idKey(next(keyID(gb.Get(groupLast))))); k != nil; k, v = cur.Next() {
			out = append(out, state.Entry{ID: keyID(k).String(), Data: bytes.Clone(v)})
			last = bytes.Clone(k)
			if err := pb.Put(last, rec); err != nil {
				return err
			}
			if count > 0 && len(out) == count {
				break
			}
		}
		if last == nil {
			return nil
		}
		return gb.Put(groupLast, last)
	}, nil)
	if err == nil && missing {
		err = errNoGroup(stream, group)
	}
	return out, err
}

// XAck acknowledges ids; unknown ones, and a missing group, are ignored
// as Redis ignores them.
func (s *Store) XAck(ctx context.Context, stream, group string, ids ...string) error {
	if err := checkStreamGroup(stream, group); err != nil {
		return err
	}
	keys := make([][]byte, len(ids))
	for i, id := range ids {
		parsed, err := state.ParseID(id)
		if err != nil {
			return err
		}
		keys[i] = idKey(parsed)
	}
	if len(keys) == 0 {
		return s.Ping(ctx)
	}
	name, g := []byte(stream), []byte(group)
	err := s.update(ctx, func(tx *bolt.Tx) error {
		_, gb := groupBucket(tx, name, g)
		if gb == nil {
			return nil
		}
		pb := gb.Bucket(groupPending)
		for _, k := range keys {
			if err := pb.Delete(k); err != nil {
				return err
			}
		}
		return nil
	}, nil)
	if err != nil {
		return fmt.Errorf("embedded: xack: %w", err)
	}
	return nil
}

// XAutoClaim gives consumer up to count (0: all) entries pending for at
// least minIdle, whoever holds them, restarting their idle time. Like
// Redis it scans the pending list in ID order, so the oldest stuck work
// is rescued first.
func (s *Store) XAutoClaim(ctx context.Context, stream, group, consumer string, minIdle time.Duration, count int) ([]state.Entry, error) {
	if err := checkGroup(stream, group, consumer); err != nil {
		return nil, err
	}
	if err := checkCount("count", count); err != nil {
		return nil, err
	}
	if minIdle < 0 {
		return nil, fmt.Errorf("%w: negative minIdle %v", state.ErrInvalidArgument, minIdle)
	}
	name, g, c := []byte(stream), []byte(group), []byte(consumer)
	var out []state.Entry
	var missing bool
	err := s.update(ctx, func(tx *bolt.Tx) error {
		out, missing = nil, false
		sb, gb := groupBucket(tx, name, g)
		if gb == nil {
			missing = true
			return nil
		}
		pb, eb := gb.Bucket(groupPending), sb.Bucket(streamEntries)
		now := time.Now()
		// Collect first: writing under a bbolt cursor invalidates it.
		type claim struct{ k, v []byte }
		var claims []claim
		cur := pb.Cursor()
		for k, v := cur.First(); k != nil; k, v = cur.Next() {
			if now.Sub(pendingSince(v)) < minIdle {
				continue
			}
			claims = append(claims, claim{bytes.Clone(k), bytes.Clone(v)})
			if count > 0 && len(claims) == count {
				break
			}
		}
		for _, cl := range claims {
			data := eb.Get(cl.k)
			if data == nil {
				// Entries are never deleted today; if trimming comes,
				// a claim of a trimmed entry just drops it, as Redis does.
				if err := pb.Delete(cl.k); err != nil {
					return err
				}
				continue
			}
			if err := pb.Put(cl.k, pendingRec(now, pendingCount(cl.v)+1, c)); err != nil {
				return err
			}
			out = append(out, state.Entry{ID: keyID(cl.k).String(), Data: bytes.Clone(data)})
		}
		return nil
	}, nil)
	if err == nil && missing {
		err = errNoGroup(stream, group)
	}
	if err != nil {
		return nil, fmt.Errorf("embedded: xautoclaim: %w", err)
	}
	return out, nil
}

func checkStreamGroup(stream, group string) error {
	if err := checkName("stream", stream); err != nil {
		return err
	}
	return checkName("group", group)
}

func checkGroup(stream, group, consumer string) error {
	if err := checkStreamGroup(stream, group); err != nil {
		return err
	}
	return checkName("consumer", consumer)
}
