package auth

import (
	"bytes"
	"context"
	"strconv"
	"sync"
	"time"

	"github.com/switchboard/switchboard/state"
)

// memKV is a minimal in-memory state.KV for unit tests only; the real
// backends live in state/embedded and state/redis.
type memKV struct {
	mu sync.Mutex
	m  map[string]memEntry
}

type memEntry struct {
	v   []byte
	exp time.Time // zero: never
}

var _ state.KV = (*memKV)(nil)

func newMemKV() *memKV { return &memKV{m: map[string]memEntry{}} }

// get returns the live entry under key; the caller holds mu.
func (s *memKV) get(key string) (memEntry, bool) {
	e, ok := s.m[key]
	if ok && !e.exp.IsZero() && !time.Now().Before(e.exp) {
		delete(s.m, key)
		return memEntry{}, false
	}
	return e, ok
}

func (s *memKV) put(key string, v []byte, ttl time.Duration) {
	e := memEntry{v: bytes.Clone(v)}
	if ttl > 0 {
		e.exp = time.Now().Add(ttl)
	}
	s.m[key] = e
}

func (s *memKV) Get(_ context.Context, key string) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.get(key)
	if !ok {
		return nil, state.ErrNotFound
	}
	return bytes.Clone(e.v), nil
}

func (s *memKV) Set(_ context.Context, key string, v []byte, ttl time.Duration) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.put(key, v, ttl)
	return nil
}

func (s *memKV) SetNX(_ context.Context, key string, v []byte, ttl time.Duration) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.get(key); ok {
		return false, nil
	}
	s.put(key, v, ttl)
	return true, nil
}

func (s *memKV) CompareAndSwap(_ context.Context, key string, old, v []byte, ttl time.Duration) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.get(key)
	if old == nil && ok || old != nil && (!ok || !bytes.Equal(e.v, old)) {
		return false, nil
	}
	s.put(key, v, ttl)
	return true, nil
}

func (s *memKV) CompareAndDelete(_ context.Context, key string, old []byte) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.get(key)
	if !ok || !bytes.Equal(e.v, old) {
		return false, nil
	}
	delete(s.m, key)
	return true, nil
}

func (s *memKV) Delete(_ context.Context, key string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.m, key)
	return nil
}

func (s *memKV) Incr(_ context.Context, key string, delta int64, ttl time.Duration) (int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.get(key)
	var n int64
	if ok {
		var err error
		if n, err = strconv.ParseInt(string(e.v), 10, 64); err != nil {
			return 0, state.ErrInvalidArgument
		}
	}
	n += delta
	if ok {
		e.v = []byte(strconv.FormatInt(n, 10))
		s.m[key] = e
	} else {
		s.put(key, []byte(strconv.FormatInt(n, 10)), ttl)
	}
	return n, nil
}
