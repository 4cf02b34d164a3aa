package ratelimit

import (
	"context"
	"hash/maphash"
	"strings"
	"sync"
	"time"
)

// DefaultMaxKeys bounds the keys a Local limiter holds.
const DefaultMaxKeys = 1 << 20

const shards = 64

// Local counts in this process: the limiter of a single node, and the one a
// Redis limiter falls back to.
type Local struct {
	now     func() time.Time
	maxKeys int // per shard
	seed    maphash.Seed
	shards  [shards]shard
}

type shard struct {
	mu sync.Mutex
	// windows holds each key's window by pointer: a count is updated in
	// place, so the map keeps the key it was given at insertion, a copy of
	// its own (never a slice of a larger string: a request's Cookie header).
	windows map[string]*window
	swept   time.Time
}

type window struct {
	count int
	end   time.Time
}

// NewLocal returns a limiter counting in this process, reading the time from
// now (time.Now if nil). It holds at most maxKeys keys (DefaultMaxKeys if 0):
// beyond, after dropping the windows that have ended, a new key is refused
// (a flood of distinct keys must not open the door to them, nor grow the
// memory without bound).
func NewLocal(now func() time.Time, maxKeys int) *Local {
	if now == nil {
		now = time.Now
	}
	if maxKeys <= 0 {
		maxKeys = DefaultMaxKeys
	}
	l := &Local{now: now, maxKeys: max(1, maxKeys/shards), seed: maphash.MakeSeed()}
	for i := range l.shards {
		l.shards[i].windows = make(map[string]*window)
	}
	return l
}

// Allow counts one event on key; see Limiter.
func (l *Local) Allow(_ context.Context, key string, limit int, length time.Duration) Decision {
	now := l.now()
	s := &l.shards[maphash.String(l.seed, key)%shards]
	s.mu.Lock()
	defer s.mu.Unlock()
	w, ok := s.windows[key]
	if !ok {
		if len(s.windows) >= l.maxKeys {
			s.sweep(now)
			if len(s.windows) >= l.maxKeys {
				return Decision{Count: limit + 1, RetryAfter: length}
			}
		}
		w = &window{end: now.Add(length)}
		s.windows[strings.Clone(key)] = w
	} else if !now.Before(w.end) {
		*w = window{end: now.Add(length)}
	}
	w.count++
	if now.Sub(s.swept) > time.Minute {
		s.sweep(now)
	}
	return decide(w.count, limit, w.end.Sub(now))
}

// Undo takes back one event of key's live window; see Limiter.
func (l *Local) Undo(_ context.Context, key string) {
	now := l.now()
	s := &l.shards[maphash.String(l.seed, key)%shards]
	s.mu.Lock()
	defer s.mu.Unlock()
	if w, ok := s.windows[key]; ok && now.Before(w.end) && w.count > 0 {
		w.count--
	}
}

// sweep drops the windows that have ended.
func (s *shard) sweep(now time.Time) {
	for k, w := range s.windows {
		if !now.Before(w.end) {
			delete(s.windows, k)
		}
	}
	s.swept = now
}
