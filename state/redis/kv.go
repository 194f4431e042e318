package redis

import (
	"context"
	"strconv"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// casScript replaces KEYS[1] with ARGV[2] if its value is ARGV[1]; ARGV[3]
// is the new TTL in milliseconds, "0" for none. GET of a missing key is
// false in Lua, never equal to a string, so a missing key never matches.
var casScript = goredis.NewScript(`
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
if ARGV[3] == '0' then
  redis.call('SET', KEYS[1], ARGV[2])
else
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
end
return 1
`)

// cadScript deletes KEYS[1] if its value is ARGV[1].
var cadScript = goredis.NewScript(`
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
return redis.call('DEL', KEYS[1])
`)

// ttlMs converts a TTL to whole milliseconds, the unit of PX, rounding up
// so a key never expires before its TTL. Zero means no expiry.
func ttlMs(op string, ttl time.Duration) (int64, error) {
	if ttl < 0 {
		return 0, invalid(op, "negative ttl %v", ttl)
	}
	return int64((ttl + time.Millisecond - 1) / time.Millisecond), nil
}

// Get returns the value of key or state.ErrNotFound.
func (s *Store) Get(ctx context.Context, key string) ([]byte, error) {
	if err := s.check("get", key); err != nil {
		return nil, err
	}
	v, err := s.c.Get(ctx, s.kvKey(key)).Bytes()
	return v, s.wrap(ctx, "get", err)
}

// Set stores value under key, replacing its value and TTL.
func (s *Store) Set(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	if err := s.check("set", key); err != nil {
		return err
	}
	ms, err := ttlMs("set", ttl)
	if err != nil {
		return err
	}
	return s.wrap(ctx, "set", s.c.Set(ctx, s.kvKey(key), value, time.Duration(ms)*time.Millisecond).Err())
}

// SetNX stores value only if key is absent: SET NX.
func (s *Store) SetNX(ctx context.Context, key string, value []byte, ttl time.Duration) (bool, error) {
	if err := s.check("setnx", key); err != nil {
		return false, err
	}
	ms, err := ttlMs("setnx", ttl)
	if err != nil {
		return false, err
	}
	ok, err := s.c.SetNX(ctx, s.kvKey(key), value, time.Duration(ms)*time.Millisecond).Result()
	if err == goredis.Nil { // SET NX answers nil when the key exists
		return false, nil
	}
	return ok, s.wrap(ctx, "setnx", err)
}

// CompareAndSwap replaces the value of key if it equals old; a nil old
// means "only if absent" and is SET NX. Otherwise a Lua script, so the
// compare and the set are one atomic step.
func (s *Store) CompareAndSwap(ctx context.Context, key string, old, value []byte, ttl time.Duration) (bool, error) {
	if old == nil {
		return s.SetNX(ctx, key, value, ttl)
	}
	if err := s.check("cas", key); err != nil {
		return false, err
	}
	ms, err := ttlMs("cas", ttl)
	if err != nil {
		return false, err
	}
	n, err := casScript.Run(ctx, s.c, []string{s.kvKey(key)}, old, value, ms).Int()
	return n == 1, s.wrap(ctx, "cas", err)
}

// CompareAndDelete deletes key if its value equals old, in a Lua script.
// A nil old compares as empty, as bytes.Equal does.
func (s *Store) CompareAndDelete(ctx context.Context, key string, old []byte) (bool, error) {
	if err := s.check("cad", key); err != nil {
		return false, err
	}
	if old == nil {
		old = []byte{}
	}
	n, err := cadScript.Run(ctx, s.c, []string{s.kvKey(key)}, old).Int()
	return n == 1, s.wrap(ctx, "cad", err)
}

// Delete removes key, and the counter of the same name: deleting is how a
// rate limit is lifted by hand.
func (s *Store) Delete(ctx context.Context, key string) error {
	if err := s.check("delete", key); err != nil {
		return err
	}
	return s.wrap(ctx, "delete", s.c.Del(ctx, s.kvKey(key), s.counterKey(key)).Err())
}

// Incr adds delta to the counter at key; ttl applies only when the call
// creates it.
//
// Counters live under their own prefix (sb:n:), apart from Get/Set keys,
// as in the embedded store, which keeps them in memory beside its file:
// Get never sees a counter in either mode.
//
// This is MULTI { SET key 0 NX PX ttl; INCRBY key delta } rather than a Lua
// script: it is as atomic and as cheap (one round trip), and a Lua script
// would hand the result back through a Lua number, a double, which is exact
// only up to 2^53.
func (s *Store) Incr(ctx context.Context, key string, delta int64, ttl time.Duration) (int64, error) {
	if err := s.check("incr", key); err != nil {
		return 0, err
	}
	ms, err := ttlMs("incr", ttl)
	if err != nil {
		return 0, err
	}
	k := s.counterKey(key)
	var incr *goredis.IntCmd
	_, err = s.c.TxPipelined(ctx, func(p goredis.Pipeliner) error {
		if ms > 0 {
			p.SetArgs(ctx, k, 0, goredis.SetArgs{Mode: "NX", TTL: time.Duration(ms) * time.Millisecond})
		}
		incr = p.IncrBy(ctx, k, delta)
		return nil
	})
	if err == goredis.Nil { // the SET NX of an existing counter
		err = nil
	}
	if err == nil {
		err = incr.Err()
	}
	if err != nil {
		if goredis.HasErrorPrefix(err, "increment or decrement would overflow") ||
			goredis.HasErrorPrefix(err, "value is not an integer") {
			return 0, invalid("incr", "counter overflow: %s", strconv.FormatInt(delta, 10))
		}
		return 0, s.wrap(ctx, "incr", err)
	}
	return incr.Val(), nil
}
