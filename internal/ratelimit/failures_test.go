package ratelimit_test

import (
	"context"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ponte-id/ponte/internal/ratelimit"
	"github.com/ponte-id/ponte/internal/ratelimit/redistest"
)

// TestUndo: Undo takes one event back from a live window, on a Local
// limiter, on Redis (an undo on one node counts on the other), and on a Redis
// node whose server is down (its own local count); it never takes a window
// below zero nor revives one that ended.
func TestUndo(t *testing.T) {
	now := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	clock := func() time.Time { return now }
	cases := []struct {
		name string
		// nodes returns the limiter that counts and the one that undoes.
		nodes func(t *testing.T) (count, undo ratelimit.Limiter)
	}{
		{"local", func(*testing.T) (ratelimit.Limiter, ratelimit.Limiter) {
			l := ratelimit.NewLocal(clock, 0)
			return l, l
		}},
		{"redis, two nodes", func(t *testing.T) (ratelimit.Limiter, ratelimit.Limiter) {
			// A generous timeout: on a loaded machine the 100 ms default
			// lets a node fall back to its own count, which this case is not about.
			srv := redistest.Start(t)
			node := func() ratelimit.Limiter {
				r, err := ratelimit.NewRedis(ratelimit.RedisOptions{URL: srv.URL(), Timeout: 5 * time.Second})
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { r.Close() })
				return r
			}
			return node(), node()
		}},
		{"redis down", func(t *testing.T) (ratelimit.Limiter, ratelimit.Limiter) {
			srv := redistest.Start(t)
			var log syncBuffer
			r := newRedis(t, srv.URL(), &log, 100*time.Millisecond)
			srv.Stop()
			return r, r
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			count, undo := tc.nodes(t)
			undo.Undo(ctx, "k") // no window: nothing to take back
			for range 3 {
				count.Allow(ctx, "k", 5, time.Hour)
			}
			undo.Undo(ctx, "k")
			undo.Undo(ctx, "k")
			if d := count.Allow(ctx, "k", 5, time.Hour); d.Count != 2 {
				t.Fatalf("3 events, 2 taken back, one more: counts %d, want 2", d.Count)
			}
			for range 4 {
				undo.Undo(ctx, "k")
			}
			if d := count.Allow(ctx, "k", 5, time.Hour); d.Count != 1 {
				t.Fatalf("more taken back than counted: the next event counts %d, want 1", d.Count)
			}
		})
	}
}

// TestFailures: a client's attempts that pass count nothing; its failures up
// to the limit are checked; beyond they are blocked, until the window ends;
// other clients are not.
func TestFailures(t *testing.T) {
	now := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	f := ratelimit.Failures{Limiter: ratelimit.NewLocal(func() time.Time { return now }, 0), Name: "test", Limit: 3, Window: time.Minute}.WithDefaults()
	ctx := context.Background()
	steps := []struct {
		name    string
		client  string
		fail    bool
		advance time.Duration
		blocked bool
	}{
		{name: "fresh", client: "192.0.2.1"},
		{name: "passes count nothing", client: "192.0.2.1"},
		{name: "1st failure", client: "192.0.2.1", fail: true},
		{name: "2nd failure", client: "192.0.2.1", fail: true},
		{name: "3rd failure: at the limit", client: "192.0.2.1", fail: true},
		{name: "beyond the limit", client: "192.0.2.1", blocked: true},
		{name: "another client", client: "192.0.2.2"},
		{name: "still within the window", client: "192.0.2.1", advance: 59 * time.Second, blocked: true},
		{name: "the window ended", client: "192.0.2.1", advance: time.Second},
	}
	for _, s := range steps {
		now = now.Add(s.advance)
		a, retry, blocked := f.Begin(ctx, s.client)
		if blocked != s.blocked || (blocked && (retry < time.Second || retry > time.Minute)) {
			t.Fatalf("%s: blocked %v (retry after %s), want %v", s.name, blocked, retry, s.blocked)
		}
		if !blocked && !s.fail {
			a.Passed(ctx)
		}
	}
	if got := ratelimit.RetryAfter(1500 * time.Millisecond); got != "2" {
		t.Fatalf("RetryAfter(1.5s) = %q, want 2", got)
	}
}

// BenchmarkFailuresBegin: what the count around every authenticated call of
// the admin and operator APIs costs (Begin, then Passed), on the node's own
// count and through a private Redis on loopback.
func BenchmarkFailuresBegin(b *testing.B) {
	cases := []struct {
		name    string
		limiter func(b *testing.B) ratelimit.Limiter
	}{
		{"local", func(*testing.B) ratelimit.Limiter { return ratelimit.NewLocal(nil, 0) }},
		{"redis", func(b *testing.B) ratelimit.Limiter {
			srv := redistest.Start(b)
			r, err := ratelimit.NewRedis(ratelimit.RedisOptions{URL: srv.URL(), Timeout: time.Second})
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { r.Close() })
			return r
		}},
	}
	for _, tc := range cases {
		b.Run(tc.name, func(b *testing.B) {
			f := ratelimit.Failures{Limiter: tc.limiter(b), Name: "bench"}.WithDefaults()
			ctx := context.Background()
			f.Begin(ctx, "192.0.2.1") // one failure
			b.ReportAllocs()
			for b.Loop() {
				a, _, blocked := f.Begin(ctx, "192.0.2.1")
				if blocked {
					b.Fatal("blocked after one failure")
				}
				a.Passed(ctx)
			}
		})
	}
}

// TestFailuresBurstOfRightTokens: more calls at once than the limit, every
// one with the right credential, leave nothing counted: those refused
// unchecked give their place back as well as those that passed, so the
// address is not blocked once they are done.
func TestFailuresBurstOfRightTokens(t *testing.T) {
	f := ratelimit.Failures{Limiter: ratelimit.NewLocal(nil, 0), Name: "test", Limit: 3, Window: time.Minute}.WithDefaults()
	ctx := context.Background()
	for round := range 5 {
		var inFlight []ratelimit.Attempt
		refused := 0
		for range 5 { // all begin before any is checked
			a, _, blocked := f.Begin(ctx, "192.0.2.1")
			if blocked {
				refused++
				continue
			}
			inFlight = append(inFlight, a)
		}
		if len(inFlight) != 3 || refused != 2 {
			t.Fatalf("round %d: %d let in, %d refused; want 3 and 2", round+1, len(inFlight), refused)
		}
		for _, a := range inFlight {
			a.Passed(ctx)
		}
	}
}

// TestLocalKeepsOwnKeys: a key the limiter keeps is a copy of its own, not
// the larger string it was cut from (a request's whole Cookie header): 2,000
// keys cut from 64 KiB strings hold kilobytes, not 128 MiB.
func TestLocalKeepsOwnKeys(t *testing.T) {
	l := ratelimit.NewLocal(nil, 0)
	ctx := context.Background()
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for i := range 2000 {
		header := strings.Repeat("x", 64<<10) + strconv.Itoa(i)
		key := header[len(header)-24:]
		l.Allow(ctx, key, 10, time.Hour)
		l.Allow(ctx, key, 10, time.Hour) // a count updated in place keeps the first copy
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	if grown := int64(after.HeapAlloc) - int64(before.HeapAlloc); grown > 16<<20 {
		t.Fatalf("2,000 short keys hold %d MiB", grown>>20)
	}
	runtime.KeepAlive(l)
}

// TestUndoAfterWindow: an event taken back after its window ended takes
// nothing from the next window.
func TestUndoAfterWindow(t *testing.T) {
	now := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	l := ratelimit.NewLocal(func() time.Time { return now }, 0)
	ctx := context.Background()
	l.Allow(ctx, "k", 5, time.Minute)
	now = now.Add(time.Minute)
	l.Undo(ctx, "k")
	if d := l.Allow(ctx, "k", 5, time.Minute); d.Count != 1 {
		t.Fatalf("the next window's first event counts %d, want 1", d.Count)
	}
}
