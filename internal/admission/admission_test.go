package admission

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/ponte-id/ponte/idp"
)

func TestOptionsValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		o    Options
		ok   bool
	}{
		{"one slot, no line", Options{Concurrency: 1}, true},
		{"slots and a line", Options{Concurrency: 4, Queue: 8, MaxWait: time.Second}, true},
		{"no slot", Options{Concurrency: 0}, false},
		{"negative line", Options{Concurrency: 1, Queue: -1}, false},
		{"a line without a wait", Options{Concurrency: 1, Queue: 2}, false},
		{"slots kept for logins under way", Options{Concurrency: 4, StartConcurrency: 2}, true},
		{"a start watermark above the slots", Options{Concurrency: 4, StartConcurrency: 5}, false},
		{"a negative start watermark", Options{Concurrency: 4, StartConcurrency: -1}, false},
		{"a start line without a wait", Options{Concurrency: 4, StartQueue: 2}, false},
		{"a negative start line", Options{Concurrency: 4, StartQueue: -1}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(tc.o)
			if (err == nil) != tc.ok {
				t.Fatalf("New(%+v) = %v, want ok=%v", tc.o, err, tc.ok)
			}
		})
	}
}

// fill takes every slot and has queue callers wait in line, in parallel;
// it returns the slots' releases and the waiters' results.
func fill(t *testing.T, g *Gate, queue int) (releases []func(), waited chan error) {
	t.Helper()
	for range g.capacity {
		r, err := g.Acquire(context.Background())
		if err != nil {
			t.Fatalf("a free slot: %v", err)
		}
		releases = append(releases, r)
	}
	waited = make(chan error, queue)
	for range queue {
		go func() {
			r, err := g.Acquire(context.Background())
			if err == nil {
				r()
			}
			waited <- err
		}()
	}
	deadline := time.Now().Add(5 * time.Second)
	for g.Stats().Waiting != queue {
		if time.Now().After(deadline) {
			t.Fatalf("waiting = %d, want %d", g.Stats().Waiting, queue)
		}
		time.Sleep(time.Millisecond)
	}
	return releases, waited
}

// TestGateFull: with every slot taken and the line full, the next caller is
// refused at once; when slots free up, those in line go through.
func TestGateFull(t *testing.T) {
	for _, tc := range []struct{ slots, queue int }{{1, 0}, {1, 1}, {3, 5}} {
		g, err := New(Options{Concurrency: tc.slots, Queue: tc.queue, MaxWait: 10 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		releases, waited := fill(t, g, tc.queue)
		start := time.Now()
		if _, err := g.Acquire(context.Background()); !errors.Is(err, ErrBusy) {
			t.Fatalf("%+v: a caller beyond the line: %v, want ErrBusy", tc, err)
		}
		if d := time.Since(start); d > time.Second {
			t.Errorf("%+v: the refusal took %v, want at once", tc, d)
		}
		if st := g.Stats(); st.InFlight != tc.slots || st.Capacity != tc.slots || st.Waiting != tc.queue || st.QueueCapacity != tc.queue || st.Refused != 1 {
			t.Errorf("%+v: stats %+v", tc, st)
		}
		for _, r := range releases {
			r()
		}
		for range tc.queue {
			if err := <-waited; err != nil {
				t.Errorf("%+v: a caller in line: %v", tc, err)
			}
		}
		if st := g.Stats(); st.InFlight != 0 || st.Waiting != 0 {
			t.Errorf("%+v: after: %+v", tc, st)
		}
	}
}

// TestGateWaitBound: a caller in line gives up after MaxWait with ErrBusy,
// or when its context ends with the context's error.
func TestGateWaitBound(t *testing.T) {
	g, err := New(Options{Concurrency: 1, Queue: 4, MaxWait: 30 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	release, _ := g.Acquire(context.Background())
	defer release()
	if _, err := g.Acquire(context.Background()); !errors.Is(err, ErrBusy) {
		t.Fatalf("past the longest wait: %v, want ErrBusy", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := g.Acquire(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("a cancelled caller: %v, want context.Canceled", err)
	}
	if st := g.Stats(); st.Refused != 1 || st.Waiting != 0 {
		t.Fatalf("stats %+v: one refusal, nobody left in line", st)
	}
}

// TestGateParallel: many callers at once never exceed the slots.
func TestGateParallel(t *testing.T) {
	g, err := New(Options{Concurrency: 3, Queue: 100, MaxWait: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu        sync.Mutex
		cur, peak int
		wg        sync.WaitGroup
	)
	for range 50 {
		wg.Go(func() {
			r, err := g.Acquire(context.Background())
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			cur++
			peak = max(peak, cur)
			mu.Unlock()
			time.Sleep(time.Millisecond)
			mu.Lock()
			cur--
			mu.Unlock()
			r()
		})
	}
	wg.Wait()
	if peak > 3 {
		t.Fatalf("%d in flight at once, want at most 3", peak)
	}
}

func TestRetryAfter(t *testing.T) {
	for _, tc := range []struct {
		wait time.Duration
		want int
	}{{0, 1}, {200 * time.Millisecond, 1}, {2 * time.Second, 2}, {2500 * time.Millisecond, 3}} {
		g, err := New(Options{Concurrency: 1, Queue: 1, MaxWait: max(tc.wait, time.Nanosecond)})
		if err != nil {
			t.Fatal(err)
		}
		if got := g.RetryAfter(); got != tc.want {
			t.Errorf("RetryAfter with MaxWait %v = %d, want %d", tc.wait, got, tc.want)
		}
	}
}

// TestSamples: the gate's metrics tell its state, and the wait histogram
// counts every admitted call in its bucket.
func TestSamples(t *testing.T) {
	g, err := New(Options{Concurrency: 1, Queue: 1, MaxWait: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	release, _ := g.Acquire(context.Background()) // no wait
	got := make(chan func(), 1)
	go func() {
		r, _ := g.Acquire(context.Background())
		got <- r
	}()
	for g.Stats().Waiting != 1 {
		time.Sleep(time.Millisecond)
	}
	time.Sleep(20 * time.Millisecond)
	_, _ = g.Acquire(context.Background()) // refused: the line is full
	release()
	(<-got)()
	samples := map[string]idp.Sample{}
	g.Samples("test", func(s idp.Sample) {
		if len(s.Labels) < 1 || s.Labels[0] != (idp.Label{Name: "gate", Value: "test"}) {
			t.Errorf("%s labels %v", s.Name, s.Labels)
		}
		name := s.Name
		if len(s.Labels) == 2 && s.Labels[1].Name == "class" {
			if s.Labels[1].Value == "starting" {
				name += "/starting"
			} else if s.Labels[1].Value != "continuing" {
				t.Errorf("%s class %q", s.Name, s.Labels[1].Value)
			}
		}
		samples[name] = s
	})
	for name, want := range map[string]float64{
		"ponte_admission_in_flight": 0, "ponte_admission_capacity": 1, "ponte_admission_waiting": 0,
		"ponte_admission_queue_capacity": 1, "ponte_admission_refused_total": 1, "ponte_admission_start_capacity": 1,
		"ponte_admission_refused_total/starting": 0,
	} {
		if s, ok := samples[name]; !ok || s.Value != want {
			t.Errorf("%s = %+v, want %v", name, s, want)
		}
	}
	h := samples["ponte_admission_wait_seconds"]
	if h.Kind != idp.Histogram || h.Count != 2 || h.Sum < 0.015 || h.Buckets[0].Count != 1 || h.Buckets[len(h.Buckets)-1].Count != 2 {
		t.Errorf("wait histogram %+v: two admitted, one at once, one after about 20ms", h)
	}
}
