package redis

import (
	"context"
	"math"
	"strconv"

	goredis "github.com/redis/go-redis/v9"

	"github.com/switchboard/switchboard/state"
)

// score formats a score as Redis reads it: "+inf"/"-inf" for the open
// ends, the shortest exact decimal otherwise.
func score(f float64) string {
	switch {
	case math.IsInf(f, 1):
		return "+inf"
	case math.IsInf(f, -1):
		return "-inf"
	}
	return strconv.FormatFloat(f, 'g', -1, 64)
}

// ZAdd sets the score of member. NaN is refused (Redis would reply with
// an error; the embedded store could not order it).
func (s *Store) ZAdd(ctx context.Context, index, member string, sc float64) error {
	if err := s.checkMember("zadd", index, member); err != nil {
		return err
	}
	if math.IsNaN(sc) {
		return invalid("zadd", "NaN score")
	}
	return s.wrap(ctx, "zadd", s.c.Do(ctx, "zadd", s.indexKey(index), score(sc), member).Err())
}

// ZRem removes member.
func (s *Store) ZRem(ctx context.Context, index, member string) (bool, error) {
	if err := s.checkMember("zrem", index, member); err != nil {
		return false, err
	}
	n, err := s.c.ZRem(ctx, s.indexKey(index), member).Result()
	return n > 0, s.wrap(ctx, "zrem", err)
}

// ZScore returns the score of member or state.ErrNotFound.
func (s *Store) ZScore(ctx context.Context, index, member string) (float64, error) {
	if err := s.checkMember("zscore", index, member); err != nil {
		return 0, err
	}
	f, err := s.c.ZScore(ctx, s.indexKey(index), member).Result()
	return f, s.wrap(ctx, "zscore", err)
}

// ZRange is ZRANGE BYSCORE [REV] [LIMIT]. Redis orders equal scores by
// member, byte-wise, as the contract asks; with REV the whole order is
// reversed, ties included.
func (s *Store) ZRange(ctx context.Context, index string, opt state.RangeOptions) ([]state.ScoredMember, error) {
	if err := s.check("zrange", index); err != nil {
		return nil, err
	}
	switch {
	case math.IsNaN(opt.Min) || math.IsNaN(opt.Max):
		return nil, invalid("zrange", "NaN bound")
	case opt.Offset < 0 || opt.Limit < 0:
		return nil, invalid("zrange", "negative offset or limit")
	}
	args := goredis.ZRangeArgs{
		Key:     s.indexKey(index),
		Start:   score(opt.Min),
		Stop:    score(opt.Max),
		ByScore: true,
		Rev:     opt.Reverse,
	}
	if opt.Reverse {
		args.Start, args.Stop = args.Stop, args.Start
	}
	if opt.Offset > 0 || opt.Limit > 0 {
		// LIMIT needs both numbers; a negative count means "all".
		args.Offset, args.Count = int64(opt.Offset), int64(opt.Limit)
		if opt.Limit == 0 {
			args.Count = -1
		}
	}
	zs, err := s.c.ZRangeArgsWithScores(ctx, args).Result()
	if err != nil {
		return nil, s.wrap(ctx, "zrange", err)
	}
	return scored(zs), nil
}

// ZPopMin is ZPOPMIN: atomic in Redis, so each member goes to one caller.
func (s *Store) ZPopMin(ctx context.Context, index string, n int) ([]state.ScoredMember, error) {
	if err := s.check("zpopmin", index); err != nil {
		return nil, err
	}
	if n < 0 {
		return nil, invalid("zpopmin", "negative count")
	}
	if n == 0 {
		return []state.ScoredMember{}, nil
	}
	zs, err := s.c.ZPopMin(ctx, s.indexKey(index), int64(n)).Result()
	if err != nil {
		return nil, s.wrap(ctx, "zpopmin", err)
	}
	return scored(zs), nil
}

// ZCard returns the number of members.
func (s *Store) ZCard(ctx context.Context, index string) (int64, error) {
	if err := s.check("zcard", index); err != nil {
		return 0, err
	}
	n, err := s.c.ZCard(ctx, s.indexKey(index)).Result()
	return n, s.wrap(ctx, "zcard", err)
}

func scored(zs []goredis.Z) []state.ScoredMember {
	out := make([]state.ScoredMember, len(zs))
	for i, z := range zs {
		m, _ := z.Member.(string)
		out[i] = state.ScoredMember{Member: m, Score: z.Score}
	}
	return out
}
