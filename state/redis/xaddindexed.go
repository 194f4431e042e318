package redis

import (
	"context"
	"strconv"

	goredis "github.com/redis/go-redis/v9"

	"github.com/switchboard/switchboard/state"
)

// xaddIndexedScript appends entries to the stream (KEYS[1]) and adds each
// entry's members to its indexes with the entry's millisecond as score,
// in one script: Redis runs it atomically, so the log and its indexes
// never disagree. ARGV holds, per entry, its data (field "d", dataField),
// the number k of its index entries, and k members, "" meaning the
// entry's ID with its sequence padded to ten digits (state.IDMember);
// KEYS[2..] are the index keys in the same order. Milliseconds stay
// strings: Lua numbers are doubles, and ZADD parses the string exactly.
var xaddIndexedScript = goredis.NewScript(`
local ids, a, kpos = {}, 1, 2
while a <= #ARGV do
  local id = redis.call('XADD', KEYS[1], '*', 'd', ARGV[a])
  local ms, seq = string.match(id, '^(%d+)%-(%d+)$')
  local member = ms .. '-' .. string.rep('0', 10 - #seq) .. seq
  local k = tonumber(ARGV[a + 1])
  for j = 1, k do
    local m = ARGV[a + 1 + j]
    if m == '' then m = member end
    redis.call('ZADD', KEYS[kpos], ms, m)
    kpos = kpos + 1
  end
  ids[#ids + 1] = id
  a = a + 2 + k
end
return ids
`)

// XAddIndexed implements state.Streams with one atomic script.
func (s *Store) XAddIndexed(ctx context.Context, stream string, entries ...state.IndexedEntry) ([]string, error) {
	if err := s.check("xadd", stream); err != nil {
		return nil, err
	}
	keys := []string{s.streamKey(stream)}
	var args []any
	for _, e := range entries {
		args = append(args, e.Value, strconv.Itoa(len(e.Indexes)))
		for _, ie := range e.Indexes {
			if err := s.check("zadd", ie.Index); err != nil {
				return nil, err
			}
			keys = append(keys, s.indexKey(ie.Index))
			args = append(args, ie.Member)
		}
	}
	if len(entries) == 0 {
		return []string{}, nil
	}
	ids, err := xaddIndexedScript.Run(ctx, s.c, keys, args...).StringSlice()
	if err != nil {
		return nil, s.wrap(ctx, "xadd", err)
	}
	return ids, nil
}
