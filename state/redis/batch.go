package redis

import (
	"context"
	"math"
	"strconv"

	goredis "github.com/redis/go-redis/v9"

	"github.com/switchboard/switchboard/state"
)

// applyScript runs a state.Batch in one script, so Redis runs it
// atomically and in one round trip. ARGV[1..4] are the swap: a mode (""
// for none, "absent" or "equal"), the old and new value and the TTL in
// milliseconds ("0": none), with its key as KEYS[1] when there is one.
// Then each op is a tag and its arguments, with its key as the next of
// KEYS:
//
//	s value ttl-ms           SET [PX]
//	z score member           ZADD
//	r min max limit          remove by score, lowest first ("0": all)
//	g n lon lat member ...   GEOADD of n points
//
// Redis does not roll a script back when a command fails halfway, so
// Apply checks every argument before sending it; the key prefixes keep a
// command from meeting a key of another type.
var applyScript = goredis.NewScript(`
local function set(key, value, ttl)
  if ttl == '0' then
    redis.call('SET', key, value)
  else
    redis.call('SET', key, value, 'PX', ttl)
  end
end
-- unpack is bounded by Lua's stack: call cmd on list[from..to] in chunks.
local function chunked(cmd, key, list, from, to, step)
  for i = from, to, step do
    redis.call(cmd, key, unpack(list, i, math.min(i + step - 1, to)))
  end
end
local k = 1
if ARGV[1] ~= '' then
  local cur = redis.call('GET', KEYS[1])
  if ARGV[1] == 'absent' and cur or ARGV[1] == 'equal' and cur ~= ARGV[2] then
    return 0
  end
  set(KEYS[1], ARGV[3], ARGV[4])
  k = 2
end
local a = 5
while a <= #ARGV do
  local tag = ARGV[a]
  if tag == 's' then
    set(KEYS[k], ARGV[a + 1], ARGV[a + 2])
    a = a + 3
  elseif tag == 'z' then
    redis.call('ZADD', KEYS[k], ARGV[a + 1], ARGV[a + 2])
    a = a + 3
  elseif tag == 'r' then
    if ARGV[a + 3] == '0' then
      redis.call('ZREMRANGEBYSCORE', KEYS[k], ARGV[a + 1], ARGV[a + 2])
    else
      local m = redis.call('ZRANGE', KEYS[k], ARGV[a + 1], ARGV[a + 2], 'BYSCORE', 'LIMIT', 0, ARGV[a + 3])
      chunked('ZREM', KEYS[k], m, 1, #m, 1000)
    end
    a = a + 4
  elseif tag == 'g' then
    local n = tonumber(ARGV[a + 1])
    chunked('GEOADD', KEYS[k], ARGV, a + 2, a + 1 + 3 * n, 3000)
    a = a + 2 + 3 * n
  else
    return redis.error_reply('unknown op ' .. tostring(tag))
  end
  k = k + 1
end
return 1
`)

// GetMany is MGET, one atomic command.
func (s *Store) GetMany(ctx context.Context, keys ...string) ([][]byte, error) {
	full := make([]string, len(keys))
	for i, k := range keys {
		if err := s.check("getmany", k); err != nil {
			return nil, err
		}
		full[i] = s.kvKey(k)
	}
	if len(keys) == 0 {
		return [][]byte{}, s.Ping(ctx)
	}
	vals, err := s.c.MGet(ctx, full...).Result()
	if err != nil {
		return nil, s.wrap(ctx, "getmany", err)
	}
	out := make([][]byte, len(vals))
	for i, v := range vals {
		if str, ok := v.(string); ok {
			out[i] = []byte(str)
		}
	}
	return out, nil
}

// Apply runs the swap and ops in one call of applyScript.
func (s *Store) Apply(ctx context.Context, swap *state.Swap, ops ...state.Op) (bool, error) {
	keys := make([]string, 0, 1+len(ops))
	args := make([]any, 4, 4+3*len(ops))
	args[0], args[1], args[2], args[3] = "", "", "", "0"
	if swap != nil {
		if err := s.check("apply", swap.Key); err != nil {
			return false, err
		}
		ms, err := ttlMs("apply", swap.TTL)
		if err != nil {
			return false, err
		}
		args[0], args[2], args[3] = "absent", swap.New, ms
		if swap.Old != nil {
			args[0], args[1] = "equal", swap.Old
		}
		keys = append(keys, s.kvKey(swap.Key))
	}
	for _, o := range ops {
		key, opArgs, err := s.opArgs(o)
		if err != nil {
			return false, err
		}
		if key != "" {
			keys = append(keys, key)
			args = append(args, opArgs...)
		}
	}
	if len(keys) == 0 {
		return true, s.Ping(ctx)
	}
	n, err := applyScript.Run(ctx, s.c, keys, args...).Int()
	return n == 1, s.wrap(ctx, "apply", err)
}

// opArgs checks o and returns its key and its part of applyScript's
// ARGV; an empty key means o writes nothing.
func (s *Store) opArgs(o state.Op) (string, []any, error) {
	switch o := o.(type) {
	case state.SetOp:
		if err := s.check("apply set", o.Key); err != nil {
			return "", nil, err
		}
		ms, err := ttlMs("apply set", o.TTL)
		if err != nil {
			return "", nil, err
		}
		return s.kvKey(o.Key), []any{"s", o.Value, ms}, nil
	case state.ZAddOp:
		if err := s.checkMember("apply zadd", o.Index, o.Member); err != nil {
			return "", nil, err
		}
		if math.IsNaN(o.Score) {
			return "", nil, invalid("apply zadd", "NaN score")
		}
		return s.indexKey(o.Index), []any{"z", score(o.Score), o.Member}, nil
	case state.ZRemRangeOp:
		if err := s.check("apply zremrange", o.Index); err != nil {
			return "", nil, err
		}
		switch {
		case math.IsNaN(o.Min) || math.IsNaN(o.Max):
			return "", nil, invalid("apply zremrange", "NaN bound")
		case o.Limit < 0:
			return "", nil, invalid("apply zremrange", "negative limit")
		}
		return s.indexKey(o.Index), []any{"r", score(o.Min), score(o.Max), strconv.Itoa(o.Limit)}, nil
	case state.GeoAddOp:
		if err := s.check("apply geoadd", o.Set); err != nil {
			return "", nil, err
		}
		args := make([]any, 0, 2+3*len(o.Points))
		args = append(args, "g", strconv.Itoa(len(o.Points)))
		for _, p := range o.Points {
			if !state.ValidCoordinates(p.Lat, p.Lon) {
				return "", nil, state.ErrInvalidCoordinates
			}
			if p.Member == "" {
				return "", nil, invalid("apply geoadd", "empty member")
			}
			lat, lon := inside(p.Lat, p.Lon)
			args = append(args, lon, lat, p.Member)
		}
		if len(o.Points) == 0 {
			return "", nil, nil // GEOADD needs a point; nothing to write
		}
		return s.geoKey(o.Set), args, nil
	case nil:
		return "", nil, invalid("apply", "nil op")
	}
	return "", nil, invalid("apply", "unknown op %T", o)
}
