package redis

import (
	"context"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/switchboard/switchboard/state"
)

// dataField is the one field of every stream entry, holding its payload.
// Outside consumers of sb:x:<stream> read it by this name.
const dataField = "d"

// maxAutoClaimScans bounds the XAUTOCLAIM calls one XAutoClaim makes.
// Redis examines at most 10×COUNT pending entries per call (its
// XAUTOCLAIM attempts factor), so a full page can need several calls when
// most pending entries are not idle yet; 16 calls look at 160×count.
const maxAutoClaimScans = 16

// blockMs converts a block duration for BLOCK, in milliseconds. Zero or
// negative means "don't block", which go-redis spells -1; a positive
// duration rounds up to at least 1 ms, because BLOCK 0 waits forever.
func blockMs(block time.Duration) time.Duration {
	if block <= 0 {
		return -1
	}
	return (block + time.Millisecond - 1) / time.Millisecond * time.Millisecond
}

// streamID validates a stream ID argument and returns it in Redis form.
func streamID(op, id string) (string, error) {
	p, err := state.ParseID(id)
	if err != nil {
		return "", invalid(op, "stream ID %q", id)
	}
	return p.String(), nil
}

// XAdd appends values as entries with one field "d", all in one
// MULTI/EXEC so the batch is atomic and its IDs are consecutive. Redis
// acknowledges before its append-only file is fsynced (appendfsync
// everysec loses at most a second on a crash of the Redis host).
func (s *Store) XAdd(ctx context.Context, stream string, values ...[]byte) ([]string, error) {
	if err := s.check("xadd", stream); err != nil {
		return nil, err
	}
	if len(values) == 0 {
		return []string{}, nil
	}
	key := s.streamKey(stream)
	if len(values) == 1 {
		id, err := s.c.XAdd(ctx, &goredis.XAddArgs{Stream: key, Values: []any{dataField, values[0]}}).Result()
		if err != nil {
			return nil, s.wrap(ctx, "xadd", err)
		}
		return []string{id}, nil
	}
	cmds := make([]*goredis.StringCmd, len(values))
	_, err := s.c.TxPipelined(ctx, func(p goredis.Pipeliner) error {
		for i, v := range values {
			cmds[i] = p.XAdd(ctx, &goredis.XAddArgs{Stream: key, Values: []any{dataField, v}})
		}
		return nil
	})
	if err != nil {
		return nil, s.wrap(ctx, "xadd", err)
	}
	ids := make([]string, len(cmds))
	for i, c := range cmds {
		ids[i] = c.Val()
	}
	return ids, nil
}

// XRead is XREAD [BLOCK] from after. A timed-out BLOCK (nil reply) is an
// empty result, not an error.
func (s *Store) XRead(ctx context.Context, stream, after string, count int, block time.Duration) ([]state.Entry, error) {
	if err := s.check("xread", stream); err != nil {
		return nil, err
	}
	if count < 0 {
		return nil, invalid("xread", "negative count")
	}
	from, err := streamID("xread", after)
	if err != nil {
		return nil, err
	}
	var res []goredis.XStream
	err = s.blocking(ctx, block, func(c goredis.Cmdable) (err error) {
		res, err = c.XRead(ctx, &goredis.XReadArgs{
			Streams: []string{s.streamKey(stream), from},
			Count:   int64(count),
			Block:   blockMs(block),
		}).Result()
		return err
	})
	return s.readResult(ctx, "xread", res, err)
}

// XRevRange is XREVRANGE from before, exclusive, down to the start.
func (s *Store) XRevRange(ctx context.Context, stream, before string, count int) ([]state.Entry, error) {
	if err := s.check("xrevrange", stream); err != nil {
		return nil, err
	}
	if count < 0 {
		return nil, invalid("xrevrange", "negative count")
	}
	end := "+"
	if before != "" {
		id, err := state.ParseID(before)
		if err != nil {
			return nil, invalid("xrevrange", "stream ID %q", before)
		}
		if id == (state.ID{}) {
			// Nothing sorts before 0-0, and Redis refuses "(0-0".
			return []state.Entry{}, nil
		}
		end = "(" + id.String()
	}
	var (
		msgs []goredis.XMessage
		err  error
	)
	if count > 0 {
		msgs, err = s.c.XRevRangeN(ctx, s.streamKey(stream), end, "-", int64(count)).Result()
	} else {
		msgs, err = s.c.XRevRange(ctx, s.streamKey(stream), end, "-").Result()
	}
	if err != nil {
		return nil, s.wrap(ctx, "xrevrange", err)
	}
	return entries(msgs), nil
}

// XLen is XLEN.
func (s *Store) XLen(ctx context.Context, stream string) (int64, error) {
	if err := s.check("xlen", stream); err != nil {
		return 0, err
	}
	n, err := s.c.XLen(ctx, s.streamKey(stream)).Result()
	return n, s.wrap(ctx, "xlen", err)
}

// XGroupCreate is XGROUP CREATE ... MKSTREAM; BUSYGROUP (it exists) is
// success.
func (s *Store) XGroupCreate(ctx context.Context, stream, group, startID string) error {
	if err := s.check("xgroup create", stream); err != nil {
		return err
	}
	if group == "" {
		return invalid("xgroup create", "empty group")
	}
	start := "$"
	if startID != "$" {
		var err error
		if start, err = streamID("xgroup create", startID); err != nil {
			return err
		}
	}
	err := s.c.XGroupCreateMkStream(ctx, s.streamKey(stream), group, start).Err()
	if err != nil && goredis.HasErrorPrefix(err, "BUSYGROUP") {
		return nil
	}
	return s.wrap(ctx, "xgroup create", err)
}

// XReadGroup is XREADGROUP ... STREAMS key ">": only never-delivered
// entries. A missing group (NOGROUP) is state.ErrNotFound.
func (s *Store) XReadGroup(ctx context.Context, stream, group, consumer string, count int, block time.Duration) ([]state.Entry, error) {
	if err := s.check("xreadgroup", stream); err != nil {
		return nil, err
	}
	if group == "" || consumer == "" {
		return nil, invalid("xreadgroup", "empty group or consumer")
	}
	if count < 0 {
		return nil, invalid("xreadgroup", "negative count")
	}
	var res []goredis.XStream
	err := s.blocking(ctx, block, func(c goredis.Cmdable) (err error) {
		res, err = c.XReadGroup(ctx, &goredis.XReadGroupArgs{
			Group:    group,
			Consumer: consumer,
			Streams:  []string{s.streamKey(stream), ">"},
			Count:    int64(count),
			Block:    blockMs(block),
		}).Result()
		return err
	})
	return s.readResult(ctx, "xreadgroup", res, err)
}

// XAck is XACK; IDs are validated first, so a malformed one is
// state.ErrInvalidArgument rather than a Redis error reply.
func (s *Store) XAck(ctx context.Context, stream, group string, ids ...string) error {
	if err := s.check("xack", stream); err != nil {
		return err
	}
	if group == "" {
		return invalid("xack", "empty group")
	}
	if len(ids) == 0 {
		return nil
	}
	norm := make([]string, len(ids))
	for i, id := range ids {
		var err error
		if norm[i], err = streamID("xack", id); err != nil {
			return err
		}
	}
	return s.wrap(ctx, "xack", s.c.XAck(ctx, s.streamKey(stream), group, norm...).Err())
}

// XAutoClaim is XAUTOCLAIM from the start of the pending list, repeated
// with its cursor (at most maxAutoClaimScans times) until count entries
// are claimed or the list is exhausted. Entries deleted from the stream
// while pending are dropped by Redis and not returned.
func (s *Store) XAutoClaim(ctx context.Context, stream, group, consumer string, minIdle time.Duration, count int) ([]state.Entry, error) {
	if err := s.check("xautoclaim", stream); err != nil {
		return nil, err
	}
	switch {
	case group == "" || consumer == "":
		return nil, invalid("xautoclaim", "empty group or consumer")
	case count < 0:
		return nil, invalid("xautoclaim", "negative count")
	case minIdle < 0:
		return nil, invalid("xautoclaim", "negative minIdle")
	}
	out := []state.Entry{}
	start := "0-0"
	for scan := 0; scan < maxAutoClaimScans && len(out) < count; scan++ {
		msgs, next, err := s.c.XAutoClaim(ctx, &goredis.XAutoClaimArgs{
			Stream:   s.streamKey(stream),
			Group:    group,
			Consumer: consumer,
			MinIdle:  minIdle,
			Start:    start,
			Count:    int64(count - len(out)),
		}).Result()
		if err != nil {
			return nil, s.groupErr(ctx, "xautoclaim", err)
		}
		out = append(out, entries(msgs)...)
		if next == "0-0" {
			break
		}
		start = next
	}
	return out, nil
}

// groupErr maps NOGROUP (no such group, or no such stream) to
// state.ErrNotFound.
func (s *Store) groupErr(ctx context.Context, op string, err error) error {
	if goredis.HasErrorPrefix(err, "NOGROUP") {
		return s.wrap(ctx, op, goredis.Nil)
	}
	return s.wrap(ctx, op, err)
}

func firstStream(res []goredis.XStream) []state.Entry {
	if len(res) == 0 {
		return []state.Entry{}
	}
	return entries(res[0].Messages)
}

// entries converts Redis stream messages. An entry written by someone
// else without a "d" field has nil Data; a nil placeholder (a pending
// entry deleted from the stream, on Redis before 7) is skipped.
func entries(msgs []goredis.XMessage) []state.Entry {
	out := make([]state.Entry, 0, len(msgs))
	for _, m := range msgs {
		if m.ID == "" {
			continue
		}
		e := state.Entry{ID: m.ID}
		if v, ok := m.Values[dataField].(string); ok {
			e.Data = []byte(v)
		}
		out = append(out, e)
	}
	return out
}
