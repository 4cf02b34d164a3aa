// Package admission bounds the work of an expensive path (argon2id, SAML
// verification, token issuance, a whole node): at most Concurrency calls in
// flight, at most Queue more waiting, each for at most MaxWait; beyond that a
// call is refused at once with ErrBusy, and the caller answers 503 with
// Retry-After. A surge then costs a bounded amount of memory and CPU and
// everyone else is served.
//
// Calls come in three classes (Class), served in this order when a slot
// frees: Finishing (work whose refusal would lose what was already done, such
// as a code's redemption: never refused, it waits for a slot until its
// context ends), Continuing (a login in progress: the whole capacity and the
// line) and Starting (new work: admitted only while fewer than
// StartConcurrency calls are in flight and nobody waits, so that the slots
// above that watermark are kept for the logins already under way).
//
// A line is also sized by what it can serve in time: the gate keeps an
// average of how long a slot is held, and a call whose expected wait (the
// calls ahead of it × that average ÷ the slots) exceeds its MaxWait is refused
// at once rather than after waiting in vain.
package admission

import (
	"container/list"
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ponte-id/ponte/idp"
)

// ErrBusy: every slot is taken and the line is full, or the wait would have
// been too long. Nothing was done.
var ErrBusy = errors.New("admission: too busy, retry shortly")

// Class is how a call ranks when slots are scarce.
type Class int

// The classes, from the first served to the last.
const (
	// Finishing: a call that completes work already done, whose refusal
	// would lose it (the redemption of an authorization code). Never
	// refused: it waits for a slot, ahead of everyone, until its context
	// ends. What bounds these calls must be outside the gate (the node's
	// gate, the codes issued).
	Finishing Class = iota
	// Continuing: a step of a login already under way. It may use every
	// slot and waits in line (Queue, MaxWait).
	Continuing
	// Starting: a call that starts new work (a new login). It is admitted
	// only while fewer than StartConcurrency calls are in flight and nobody
	// waits; otherwise it waits in a line of its own (StartQueue,
	// StartMaxWait), or is refused at once when that line has no room.
	Starting
	classes
)

// String is the class's name, as in the metrics' class label.
func (c Class) String() string {
	switch c {
	case Finishing:
		return "finishing"
	case Continuing:
		return "continuing"
	case Starting:
		return "starting"
	}
	return fmt.Sprintf("Class(%d)", int(c))
}

// Options size a Gate.
type Options struct {
	// Concurrency is how many calls run at once (at least 1).
	Concurrency int
	// Queue is how many Continuing calls may wait for a slot (0: none wait).
	Queue int
	// MaxWait is the longest a Continuing call waits in line before ErrBusy.
	MaxWait time.Duration
	// StartConcurrency is the watermark for Starting calls: one is admitted
	// only while fewer calls than this are in flight (1..Concurrency; 0
	// means Concurrency, no slot kept back).
	StartConcurrency int
	// StartQueue is how many Starting calls may wait (0: none, refused at
	// once), and StartMaxWait the longest one waits.
	StartQueue   int
	StartMaxWait time.Duration
}

// Validate reports a gate that cannot work.
func (o Options) Validate() error {
	var errs []error
	if o.Concurrency < 1 {
		errs = append(errs, fmt.Errorf("concurrency must be at least 1, not %d", o.Concurrency))
	}
	if o.Queue < 0 {
		errs = append(errs, fmt.Errorf("queue must not be negative, not %d", o.Queue))
	}
	if o.Queue > 0 && o.MaxWait <= 0 {
		errs = append(errs, errors.New("max wait must be positive when calls may wait"))
	}
	if o.StartConcurrency < 0 || o.StartConcurrency > max(o.Concurrency, 1) {
		errs = append(errs, fmt.Errorf("start concurrency must be between 0 (the concurrency) and the concurrency (%d), not %d", o.Concurrency, o.StartConcurrency))
	}
	if o.StartQueue < 0 {
		errs = append(errs, fmt.Errorf("start queue must not be negative, not %d", o.StartQueue))
	}
	if o.StartQueue > 0 && o.StartMaxWait <= 0 {
		errs = append(errs, errors.New("start max wait must be positive when starting calls may wait"))
	}
	return errors.Join(errs...)
}

// waitBuckets are the upper bounds, in seconds, of the wait histogram.
var waitBuckets = [...]float64{.001, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5}

// holdWeight is the weight of the newest hold time in the gate's average
// (an exponentially weighted moving average over about the last 20 calls).
const holdWeight = 0.05

// waiter is a call in line; granted (guarded by the gate's mutex) turns
// true when a slot is handed to it, and ready is closed then.
type waiter struct {
	ready   chan struct{}
	granted bool
}

// Gate admits calls to one expensive path. Its methods are safe for
// concurrent use.
type Gate struct {
	capacity, startLimit int
	maxWaiting           [classes]int
	maxWait              [classes]time.Duration

	mu       sync.Mutex
	inFlight int
	lines    [classes]list.List // of *waiter, first come first
	holdNS   float64            // the average time a slot is held

	refused [classes]atomic.Uint64
	// The wait histogram: counts per bucket (not cumulative, the last one
	// is +Inf), their number and the sum of waits in nanoseconds.
	buckets [len(waitBuckets) + 1]atomic.Uint64
	sumNS   atomic.Int64
}

// New returns a gate; o must be valid (Validate).
func New(o Options) (*Gate, error) {
	if err := o.Validate(); err != nil {
		return nil, fmt.Errorf("admission: %w", err)
	}
	g := &Gate{capacity: o.Concurrency, startLimit: o.StartConcurrency}
	if g.startLimit == 0 {
		g.startLimit = o.Concurrency
	}
	g.maxWaiting = [classes]int{Finishing: math.MaxInt, Continuing: o.Queue, Starting: o.StartQueue}
	g.maxWait = [classes]time.Duration{Continuing: o.MaxWait, Starting: o.StartMaxWait}
	return g, nil
}

// limit is how many calls may be in flight for a call of class c to start.
func (g *Gate) limit(c Class) int {
	if c == Starting {
		return g.startLimit
	}
	return g.capacity
}

// Acquire takes a slot for a Continuing call (AcquireClass).
func (g *Gate) Acquire(ctx context.Context) (release func(), err error) {
	return g.AcquireClass(ctx, Continuing)
}

// AcquireClass takes a slot for a call of class c: at once if the class may
// run now, otherwise after waiting in line. It returns ErrBusy when the line
// is full or the wait would exceed, or exceeded, the class's longest wait
// (never for Finishing), and ctx's error if ctx ends first. Call release
// exactly once when done.
func (g *Gate) AcquireClass(ctx context.Context, c Class) (release func(), err error) {
	if c < 0 || c >= classes {
		return nil, fmt.Errorf("admission: unknown class %d", int(c))
	}
	g.mu.Lock()
	if g.inFlight < g.limit(c) && g.nobodyAhead(c) {
		g.inFlight++
		g.mu.Unlock()
		g.observe(0)
		return g.releaser(), nil
	}
	if g.lines[c].Len() >= g.maxWaiting[c] || g.tooLong(c) {
		g.mu.Unlock()
		g.refused[c].Add(1)
		return nil, ErrBusy
	}
	w := &waiter{ready: make(chan struct{})}
	e := g.lines[c].PushBack(w)
	g.mu.Unlock()

	start := time.Now()
	var timeout <-chan time.Time
	if c != Finishing {
		timer := time.NewTimer(g.maxWait[c])
		defer timer.Stop()
		timeout = timer.C
	}
	select {
	case <-w.ready:
		g.observe(time.Since(start))
		return g.releaser(), nil
	case <-timeout:
		err = ErrBusy
	case <-ctx.Done():
		err = ctx.Err()
	}
	g.mu.Lock()
	granted := w.granted
	if !granted {
		g.lines[c].Remove(e)
	}
	g.mu.Unlock()
	if granted { // the slot came as the wait ended: take it
		g.observe(time.Since(start))
		return g.releaser(), nil
	}
	if err == ErrBusy {
		g.refused[c].Add(1)
	}
	return nil, err
}

// nobodyAhead reports whether no call that goes before or with one of class
// c is waiting (g.mu held).
func (g *Gate) nobodyAhead(c Class) bool {
	for k := Finishing; k <= c; k++ {
		if g.lines[k].Len() > 0 {
			return false
		}
	}
	return true
}

// tooLong reports whether a call of class c joining its line now would
// likely wait longer than the class's longest wait: the calls ahead of it,
// each holding a slot for the average time, served Concurrency at a time
// (g.mu held). Finishing calls always wait.
func (g *Gate) tooLong(c Class) bool {
	if c == Finishing || g.holdNS == 0 {
		return false
	}
	ahead := 1
	for k := Finishing; k <= c; k++ {
		ahead += g.lines[k].Len()
	}
	return float64(ahead)*g.holdNS/float64(g.capacity) > float64(g.maxWait[c])
}

// releaser returns the release of a slot taken now.
func (g *Gate) releaser() func() {
	start := time.Now()
	var once sync.Once
	return func() { once.Do(func() { g.release(time.Since(start)) }) }
}

// release frees a slot held for d and hands it, and any other free one, to
// the first in line of the first class that may run.
func (g *Gate) release(d time.Duration) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.inFlight--
	if g.holdNS == 0 {
		g.holdNS = float64(d)
	} else {
		g.holdNS += holdWeight * (float64(d) - g.holdNS)
	}
	for c := Finishing; c < classes; c++ {
		for g.lines[c].Len() > 0 && g.inFlight < g.limit(c) {
			w := g.lines[c].Remove(g.lines[c].Front()).(*waiter)
			w.granted = true
			g.inFlight++
			close(w.ready)
		}
		if g.lines[c].Len() > 0 {
			return // the classes after c go after it
		}
	}
}

func (g *Gate) observe(d time.Duration) {
	s := d.Seconds()
	i := 0
	for i < len(waitBuckets) && s > waitBuckets[i] {
		i++
	}
	g.buckets[i].Add(1)
	g.sumNS.Add(int64(d))
}

// Stats are a gate's state at one moment.
type Stats struct {
	InFlight, Capacity, StartCapacity, Waiting, QueueCapacity int
	// Refused counts ErrBusy answers since the gate was made, and
	// RefusedBy the same by class.
	Refused   uint64
	RefusedBy [classes]uint64
	// Hold is the average time a slot is held.
	Hold time.Duration
}

// Stats returns the gate's state now.
func (g *Gate) Stats() Stats {
	g.mu.Lock()
	st := Stats{InFlight: g.inFlight, Capacity: g.capacity, StartCapacity: g.startLimit,
		QueueCapacity: g.maxWaiting[Continuing], Hold: time.Duration(g.holdNS)}
	for c := range classes {
		st.Waiting += g.lines[c].Len()
	}
	g.mu.Unlock()
	for c := range classes {
		st.RefusedBy[c] = g.refused[c].Load()
		st.Refused += st.RefusedBy[c]
	}
	return st
}

// RetryAfter is the Retry-After, in whole seconds (at least 1), to send with
// a refusal: the longest a Continuing call would have waited.
func (g *Gate) RetryAfter() int {
	return max(1, int(math.Ceil(g.maxWait[Continuing].Seconds())))
}

// Samples reports the gate as metrics labelled gate=name: calls in flight
// and waiting, refusals by class, and the wait in line.
func (g *Gate) Samples(name string, emit func(idp.Sample)) {
	st := g.Stats()
	l := []idp.Label{{Name: "gate", Value: name}}
	emit(idp.Sample{Name: "ponte_admission_in_flight", Help: "Calls running on an admission-controlled path.", Kind: idp.Gauge, Labels: l, Value: float64(st.InFlight)})
	emit(idp.Sample{Name: "ponte_admission_capacity", Help: "Calls an admission-controlled path runs at once.", Kind: idp.Gauge, Labels: l, Value: float64(st.Capacity)})
	emit(idp.Sample{Name: "ponte_admission_start_capacity", Help: "Calls in flight below which an admission-controlled path admits new work (the rest is kept for work under way).", Kind: idp.Gauge, Labels: l, Value: float64(st.StartCapacity)})
	emit(idp.Sample{Name: "ponte_admission_waiting", Help: "Calls waiting in line for an admission-controlled path (the queue depth).", Kind: idp.Gauge, Labels: l, Value: float64(st.Waiting)})
	emit(idp.Sample{Name: "ponte_admission_queue_capacity", Help: "Calls that may wait in line for an admission-controlled path.", Kind: idp.Gauge, Labels: l, Value: float64(st.QueueCapacity)})
	for c := range classes {
		if c == Finishing {
			continue // never refused
		}
		emit(idp.Sample{Name: "ponte_admission_refused_total", Help: "Calls refused with 503 because an admission-controlled path was full, by class (starting: new work; continuing: work under way).", Kind: idp.Counter,
			Labels: []idp.Label{l[0], {Name: "class", Value: c.String()}}, Value: float64(st.RefusedBy[c])})
	}
	h := idp.Sample{Name: "ponte_admission_wait_seconds", Help: "Time calls admitted to an admission-controlled path waited in line.", Kind: idp.Histogram, Labels: l,
		Buckets: make([]idp.Bucket, len(waitBuckets))}
	var cum uint64
	for i, ub := range waitBuckets {
		cum += g.buckets[i].Load()
		h.Buckets[i] = idp.Bucket{UpperBound: ub, Count: cum}
	}
	h.Count = cum + g.buckets[len(waitBuckets)].Load()
	h.Sum = time.Duration(g.sumNS.Load()).Seconds()
	emit(h)
}
