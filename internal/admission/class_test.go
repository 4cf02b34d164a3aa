package admission

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

// waitInLine waits until n calls are in g's lines.
func waitInLine(t *testing.T, g *Gate, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for g.Stats().Waiting != n {
		if time.Now().After(deadline) {
			t.Fatalf("waiting = %d, want %d", g.Stats().Waiting, n)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestClassOrder: with the one slot taken, calls of every class join their
// lines in the worst order (starting first, finishing last); as the slot
// frees, they are served finishing first, then continuing, then starting,
// first come first within a class.
func TestClassOrder(t *testing.T) {
	for _, tc := range []struct {
		name   string
		arrive []Class
		want   []Class
	}{
		{"every class, the last first", []Class{Starting, Starting, Continuing, Continuing, Finishing}, []Class{Finishing, Continuing, Continuing, Starting, Starting}},
		{"continuing before starting", []Class{Starting, Continuing}, []Class{Continuing, Starting}},
		{"finishing before continuing", []Class{Continuing, Finishing, Continuing}, []Class{Finishing, Continuing, Continuing}},
		{"one class: first come first", []Class{Starting, Starting, Starting}, []Class{Starting, Starting, Starting}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g, err := New(Options{Concurrency: 1, Queue: 10, MaxWait: time.Minute, StartQueue: 10, StartMaxWait: time.Minute})
			if err != nil {
				t.Fatal(err)
			}
			hold, err := g.Acquire(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			var (
				mu     sync.Mutex
				served []int // indexes into tc.arrive
				wg     sync.WaitGroup
			)
			for i, c := range tc.arrive {
				wg.Go(func() {
					r, err := g.AcquireClass(context.Background(), c)
					if err != nil {
						t.Errorf("call %d (%v): %v", i, c, err)
						return
					}
					mu.Lock()
					served = append(served, i)
					mu.Unlock()
					r()
				})
				waitInLine(t, g, i+1) // the next arrives after this one is in line
			}
			hold()
			wg.Wait()
			var got []Class
			for _, i := range served {
				got = append(got, tc.arrive[i])
			}
			if len(got) != len(tc.want) {
				t.Fatalf("served %v, want %v", got, tc.want)
			}
			for i := range got {
				if got[i] != tc.want[i] {
					t.Fatalf("served %v, want %v", got, tc.want)
				}
			}
			// First come first within a class: the indexes of one class rise.
			last := map[Class]int{}
			for _, i := range served {
				if j, ok := last[tc.arrive[i]]; ok && j > i {
					t.Errorf("%v: call %d served before call %d", tc.arrive[i], j, i)
				}
				last[tc.arrive[i]] = i
			}
		})
	}
}

// TestStartWatermark: starting calls are admitted only below the watermark
// and refused at once above it (no start line), while continuing calls
// still get the slots kept for them; finishing calls are never refused.
func TestStartWatermark(t *testing.T) {
	g, err := New(Options{Concurrency: 3, Queue: 0, StartConcurrency: 1})
	if err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		class Class
		want  error
	}{
		{Starting, nil},       // 0 in flight: below the watermark
		{Starting, ErrBusy},   // 1 in flight: at it
		{Continuing, nil},     // 2 in flight
		{Starting, ErrBusy},   // still refused
		{Continuing, nil},     // 3: every slot
		{Continuing, ErrBusy}, // no line
	}
	var releases []func()
	for i, s := range steps {
		start := time.Now()
		r, err := g.AcquireClass(context.Background(), s.class)
		if !errors.Is(err, s.want) {
			t.Fatalf("step %d (%v): %v, want %v", i, s.class, err, s.want)
		}
		if err != nil && time.Since(start) > time.Second {
			t.Errorf("step %d: the refusal took %v, want at once", i, time.Since(start))
		}
		if r != nil {
			releases = append(releases, r)
		}
	}
	if st := g.Stats(); st.RefusedBy[Starting] != 2 || st.RefusedBy[Continuing] != 1 || st.Refused != 3 || st.InFlight != 3 || st.StartCapacity != 1 {
		t.Errorf("stats %+v", st)
	}
	// A finishing call waits for a slot rather than being refused.
	done := make(chan error, 1)
	go func() {
		r, err := g.AcquireClass(context.Background(), Finishing)
		if err == nil {
			r()
		}
		done <- err
	}()
	waitInLine(t, g, 1)
	for _, r := range releases {
		r()
		r() // a second release is a no-op
	}
	if err := <-done; err != nil {
		t.Fatalf("the finishing call: %v", err)
	}
	if st := g.Stats(); st.InFlight != 0 || st.Waiting != 0 {
		t.Errorf("after: %+v", st)
	}
	if r, err := g.AcquireClass(context.Background(), Starting); err != nil {
		t.Errorf("a starting call on an idle gate: %v", err)
	} else {
		r()
	}
}

// TestFinishingEndsWithContext: a finishing call in line gives up only when
// its context ends, with the context's error, and is not counted refused.
func TestFinishingEndsWithContext(t *testing.T) {
	g, err := New(Options{Concurrency: 1, Queue: 1, MaxWait: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	hold, _ := g.Acquire(context.Background())
	defer hold()
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := g.AcquireClass(ctx, Finishing); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("a finishing call past its context: %v, want context.DeadlineExceeded", err)
	}
	if st := g.Stats(); st.Refused != 0 || st.Waiting != 0 {
		t.Errorf("stats %+v", st)
	}
	if _, err := g.AcquireClass(context.Background(), Class(7)); err == nil {
		t.Error("an unknown class was admitted")
	}
}

// TestExpectedWait: a call whose wait, at the average hold, would exceed the
// longest wait is refused at once, before the line is full.
func TestExpectedWait(t *testing.T) {
	for _, tc := range []struct {
		name      string
		slots     int
		hold      time.Duration
		maxWait   time.Duration
		admitted  int // calls that join the line before one is refused
		startLine bool
	}{
		{"one slot: 3 holds of 40ms fit in 130ms", 1, 40 * time.Millisecond, 130 * time.Millisecond, 3, false},
		{"two slots serve twice as many", 2, 40 * time.Millisecond, 130 * time.Millisecond, 6, false},
		{"no average yet: the line's bound", 1, 0, 130 * time.Millisecond, 10, false},
		{"the start line too", 1, 40 * time.Millisecond, 130 * time.Millisecond, 3, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := Options{Concurrency: tc.slots, Queue: 10, MaxWait: tc.maxWait}
			class := Continuing
			if tc.startLine {
				o = Options{Concurrency: tc.slots, StartQueue: 10, StartMaxWait: tc.maxWait}
				class = Starting
			}
			g, err := New(o)
			if err != nil {
				t.Fatal(err)
			}
			g.holdNS = float64(tc.hold)
			releases, _ := fill(t, g, 0)
			ctx, cancel := context.WithCancel(context.Background())
			var wg sync.WaitGroup
			for i := range tc.admitted {
				wg.Go(func() {
					if _, err := g.AcquireClass(ctx, class); !errors.Is(err, context.Canceled) {
						t.Errorf("call %d in line: %v, want to wait until cancelled", i, err)
					}
				})
				waitInLine(t, g, i+1)
			}
			start := time.Now()
			if _, err := g.AcquireClass(context.Background(), class); !errors.Is(err, ErrBusy) {
				t.Errorf("the call beyond what the line serves in time: %v, want ErrBusy", err)
			}
			if d := time.Since(start); d > tc.maxWait {
				t.Errorf("the refusal took %v, want at once", d)
			}
			cancel()
			wg.Wait()
			for _, r := range releases {
				r()
			}
		})
	}
}

// TestHoldAverage: the average hold follows the time slots are held.
func TestHoldAverage(t *testing.T) {
	g, err := New(Options{Concurrency: 1})
	if err != nil {
		t.Fatal(err)
	}
	r, _ := g.Acquire(context.Background())
	time.Sleep(20 * time.Millisecond)
	r()
	if h := g.Stats().Hold; h < 20*time.Millisecond {
		t.Fatalf("hold %v after a 20ms hold", h)
	}
	for range 100 {
		r, _ := g.Acquire(context.Background())
		r()
	}
	if h := g.Stats().Hold; h >= 20*time.Millisecond {
		t.Fatalf("hold %v after 100 short holds, want it to have come down", h)
	}
}

// TestClassesParallel: many calls of every class at once never exceed the
// slots, and never more starting calls than the watermark.
func TestClassesParallel(t *testing.T) {
	const slots, watermark = 4, 2
	g, err := New(Options{Concurrency: slots, Queue: 1000, MaxWait: time.Minute, StartConcurrency: watermark, StartQueue: 1000, StartMaxWait: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu                     sync.Mutex
		cur, peak              int
		starting, peakStarting int
		wg                     sync.WaitGroup
	)
	for i := range 120 {
		c := Class(i % int(classes))
		wg.Go(func() {
			r, err := g.AcquireClass(context.Background(), c)
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			cur++
			peak = max(peak, cur)
			if c == Starting {
				starting++
				peakStarting = max(peakStarting, starting)
			}
			mu.Unlock()
			time.Sleep(time.Millisecond)
			mu.Lock()
			cur--
			if c == Starting {
				starting--
			}
			mu.Unlock()
			r()
		})
	}
	wg.Wait()
	if peak > slots || peakStarting > watermark {
		t.Fatalf("%d in flight at once (%d starting), want at most %d (%d)", peak, peakStarting, slots, watermark)
	}
	if st := g.Stats(); st.InFlight != 0 || st.Waiting != 0 || st.Refused != 0 {
		t.Errorf("after: %+v", st)
	}
}
