package ratelimit_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ponte-id/ponte/internal/ratelimit"
	"github.com/ponte-id/ponte/internal/ratelimit/redistest"
)

// clock is a settable time.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// TestLocalWindows: a window holds limit events, refuses the next with the
// time left, and starts again when it ends; keys are counted apart.
func TestLocalWindows(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name         string
		limit        int
		window       time.Duration
		events       int           // before the checked one
		advance      time.Duration // after them
		wantAllowed  bool
		wantCount    int
		wantRetryMax time.Duration
	}{
		{"first", 3, time.Hour, 0, 0, true, 1, 0},
		{"at the limit", 3, time.Hour, 2, 0, true, 3, 0},
		{"one beyond", 3, time.Hour, 3, 0, false, 4, time.Hour},
		{"beyond, later in the window", 3, time.Hour, 3, 40 * time.Minute, false, 4, 20 * time.Minute},
		{"window ended", 3, time.Hour, 3, time.Hour, true, 1, 0},
		{"limit zero", 0, time.Minute, 0, 0, false, 1, time.Minute},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := &clock{t: time.Date(2026, 4, 1, 9, 0, 0, 0, time.UTC)}
			l := ratelimit.NewLocal(c.Now, 0)
			for range tc.events {
				l.Allow(ctx, "k", tc.limit, tc.window)
			}
			l.Allow(ctx, "other", tc.limit, tc.window)
			c.Advance(tc.advance)
			d := l.Allow(ctx, "k", tc.limit, tc.window)
			if d.Allowed != tc.wantAllowed || d.Count != tc.wantCount || d.RetryAfter != tc.wantRetryMax {
				t.Fatalf("got %+v, want allowed %v count %d retry %s", d, tc.wantAllowed, tc.wantCount, tc.wantRetryMax)
			}
		})
	}
}

// TestLocalMaxKeys: beyond its keys a Local limiter refuses new keys (never
// lets them through) until windows end, and keeps counting the keys it has.
func TestLocalMaxKeys(t *testing.T) {
	ctx := context.Background()
	c := &clock{t: time.Date(2026, 4, 1, 9, 0, 0, 0, time.UTC)}
	l := ratelimit.NewLocal(c.Now, 64) // one key per shard
	refused := 0
	for i := range 1000 {
		if !l.Allow(ctx, fmt.Sprint("k", i), 5, time.Minute).Allowed {
			refused++
		}
	}
	if refused < 1000-64 {
		t.Fatalf("%d of 1000 new keys refused with room for 64", refused)
	}
	c.Advance(time.Minute)
	if d := l.Allow(ctx, "k999", 5, time.Minute); !d.Allowed || d.Count != 1 {
		t.Fatalf("after the windows ended: %+v", d)
	}
}

// TestLocalParallel: parallel events on one key let exactly the limit through.
func TestLocalParallel(t *testing.T) {
	l := ratelimit.NewLocal(nil, 0)
	if got := allowedInParallel(l, l, "k", 200, 50); got != 50 {
		t.Fatalf("%d of 200 parallel events allowed, limit 50", got)
	}
}

// allowedInParallel sends n events on key, alternately through a and b, all
// at once, and counts those allowed.
func allowedInParallel(a, b ratelimit.Limiter, key string, n, limit int) int {
	var allowed atomic.Int64
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		l := a
		if i%2 == 1 {
			l = b
		}
		wg.Go(func() {
			<-start
			if l.Allow(context.Background(), key, limit, time.Minute).Allowed {
				allowed.Add(1)
			}
		})
	}
	close(start)
	wg.Wait()
	return int(allowed.Load())
}

// syncBuffer is a log buffer safe for parallel writers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

// newRedis is a node's limiter on url whose calls wait timeout for Redis.
func newRedis(t *testing.T, url string, log *syncBuffer, timeout time.Duration) *ratelimit.Redis {
	t.Helper()
	r, err := ratelimit.NewRedis(ratelimit.RedisOptions{URL: url, Timeout: timeout,
		Logger: slog.New(slog.NewTextHandler(log, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

// TestRedisSharedByNodes: two limiters ("nodes") on one Redis share one count,
// in sequence and in parallel. Redis gets 5 s to answer: on a loaded machine
// it may take longer than 100 ms, and then each node rightly counts alone.
func TestRedisSharedByNodes(t *testing.T) {
	srv := redistest.Start(t)
	var log syncBuffer
	a, b := newRedis(t, srv.URL(), &log, 5*time.Second), newRedis(t, srv.URL(), &log, 5*time.Second)
	ctx := context.Background()
	for i := range 6 {
		n := a
		if i%2 == 1 {
			n = b
		}
		d := n.Allow(ctx, "seq", 5, time.Hour)
		if d.Count != i+1 || d.Allowed != (i < 5) {
			t.Fatalf("event %d: %+v", i+1, d)
		}
		if !d.Allowed && (d.RetryAfter <= 59*time.Minute || d.RetryAfter > time.Hour) {
			t.Fatalf("retry after %s, want the hour's rest", d.RetryAfter)
		}
	}
	if got := allowedInParallel(a, b, "par", 300, 40); got != 40 {
		t.Fatalf("%d of 300 parallel events on two nodes allowed, limit 40", got)
	}
	if strings.Contains(log.String(), "unavailable") {
		t.Fatalf("logged an outage while Redis was up:\n%s", log.String())
	}
}

// TestRedisWindowEnds: Redis's window ends after its length.
func TestRedisWindowEnds(t *testing.T) {
	srv := redistest.Start(t)
	var log syncBuffer
	r := newRedis(t, srv.URL(), &log, 100*time.Millisecond)
	ctx := context.Background()
	r.Allow(ctx, "w", 1, 200*time.Millisecond)
	if d := r.Allow(ctx, "w", 1, 200*time.Millisecond); d.Allowed {
		t.Fatalf("second event in the window: %+v", d)
	}
	time.Sleep(250 * time.Millisecond)
	if d := r.Allow(ctx, "w", 1, 200*time.Millisecond); !d.Allowed || d.Count != 1 {
		t.Fatalf("after the window: %+v", d)
	}
}

// TestRedisDown: Redis killed → every node still limits with its own count
// (which counted all along), nothing is let through beyond the limit, no
// error, one log line for the outage however many events; Redis back → the
// shared count decides again, and that is logged once too.
func TestRedisDown(t *testing.T) {
	srv := redistest.Start(t)
	var log syncBuffer
	a, b := newRedis(t, srv.URL(), &log, 100*time.Millisecond), newRedis(t, srv.URL(), &log, 100*time.Millisecond)
	ctx := context.Background()
	for range 3 {
		a.Allow(ctx, "k", 5, time.Hour)
	}
	srv.Stop()
	// a has counted 3 locally: 2 more, then refused.
	var got []bool
	for range 4 {
		got = append(got, a.Allow(ctx, "k", 5, time.Hour).Allowed)
	}
	if fmt.Sprint(got) != "[true true false false]" {
		t.Fatalf("node a with Redis down: %v", got)
	}
	// b never saw the key: its own limit, in parallel.
	if n := allowedInParallel(b, b, "k", 100, 5); n != 5 {
		t.Fatalf("node b with Redis down let %d of 100 through, limit 5", n)
	}
	if a.Shared() || b.Shared() {
		t.Fatal("a limiter says it is shared while Redis is down")
	}
	if n := strings.Count(log.String(), "Redis unavailable"); n != 2 {
		t.Fatalf("%d outage lines for two nodes, want one each:\n%s", n, log.String())
	}

	srv.Restart() // empty: the shared count starts again
	time.Sleep(1100 * time.Millisecond)
	for i := range 5 {
		if d := a.Allow(ctx, "back", 2, time.Hour); i == 4 && (d.Count != 5 || d.Allowed) {
			t.Fatalf("event 5 with Redis back: %+v", d)
		}
	}
	if d := b.Allow(ctx, "back", 2, time.Hour); d.Count != 6 || !b.Shared() {
		t.Fatalf("node b with Redis back: %+v (shared %v)", d, b.Shared())
	}
	if n := strings.Count(log.String(), "Redis answers again"); n != 2 {
		t.Fatalf("%d recovery lines for two nodes:\n%s", n, log.String())
	}
}

// TestRedisSlow: a Redis that takes connections and answers nothing costs an
// event at most the timeout, then the node decides alone; no event waits
// while it stays down.
func TestRedisSlow(t *testing.T) {
	srv := redistest.Start(t)
	var log syncBuffer
	r := newRedis(t, srv.URL(), &log, 100*time.Millisecond)
	ctx := context.Background()
	r.Allow(ctx, "k", 3, time.Hour) // connected
	srv.Pause()
	defer srv.Resume()
	start := time.Now()
	r.Allow(ctx, "k", 3, time.Hour)
	if took := time.Since(start); took > 2*time.Second {
		t.Fatalf("the first event with Redis frozen took %s", took)
	}
	var allowed int
	for range 50 {
		if r.Allow(ctx, "k", 3, time.Hour).Allowed {
			allowed++
		}
	}
	if allowed != 1 {
		t.Fatalf("%d of 50 more events allowed with Redis frozen (2 counted, limit 3)", allowed)
	}
	if r.Shared() {
		t.Fatal("shared while Redis is frozen")
	}
}

// TestRedisBadURL: a URL that is not Redis's is refused at start.
func TestRedisBadURL(t *testing.T) {
	for _, u := range []string{"", "http://127.0.0.1:6379", "redis://127.0.0.1:6379/notadb"} {
		if _, err := ratelimit.NewRedis(ratelimit.RedisOptions{URL: u}); err == nil {
			t.Errorf("%q accepted", u)
		}
	}
}
