// Package admission bounds the work of an expensive path (argon2id, SAML
// verification, token issuance): at most Concurrency calls in flight, at most
// Queue more waiting, each for at most MaxWait; beyond that a call is refused
// at once with ErrBusy, and the caller answers 503 with Retry-After. A surge
// then costs a bounded amount of memory and CPU and everyone else is served.
package admission

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync/atomic"
	"time"

	"github.com/ponte-id/ponte/idp"
)

// ErrBusy: every slot is taken and the line is full, or the wait would have
// been too long. Nothing was done.
var ErrBusy = errors.New("admission: too busy, retry shortly")

// Options size a Gate.
type Options struct {
	// Concurrency is how many calls run at once (at least 1).
	Concurrency int
	// Queue is how many more may wait for a slot (0: none wait).
	Queue int
	// MaxWait is the longest a call waits in line before ErrBusy.
	MaxWait time.Duration
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
	return errors.Join(errs...)
}

// waitBuckets are the upper bounds, in seconds, of the wait histogram.
var waitBuckets = [...]float64{.001, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5}

// Gate admits calls to one expensive path. Its methods are safe for
// concurrent use.
type Gate struct {
	slots      chan struct{}
	release    func()
	waiting    atomic.Int64
	maxWaiting int64
	maxWait    time.Duration
	refused    atomic.Uint64
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
	g := &Gate{slots: make(chan struct{}, o.Concurrency), maxWaiting: int64(o.Queue), maxWait: o.MaxWait}
	g.release = func() { <-g.slots }
	return g, nil
}

// Acquire takes a slot: at once if one is free, otherwise after waiting in
// line. It returns ErrBusy when the line is full or the wait exceeds MaxWait,
// and ctx's error if ctx ends first. Call release exactly once when done.
func (g *Gate) Acquire(ctx context.Context) (release func(), err error) {
	select {
	case g.slots <- struct{}{}:
		g.observe(0)
		return g.release, nil
	default:
	}
	if g.waiting.Add(1) > g.maxWaiting {
		g.waiting.Add(-1)
		g.refused.Add(1)
		return nil, ErrBusy
	}
	defer g.waiting.Add(-1)
	start := time.Now()
	timer := time.NewTimer(g.maxWait)
	defer timer.Stop()
	select {
	case g.slots <- struct{}{}:
		g.observe(time.Since(start))
		return g.release, nil
	case <-timer.C:
		g.refused.Add(1)
		return nil, ErrBusy
	case <-ctx.Done():
		return nil, ctx.Err()
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
	InFlight, Capacity, Waiting, QueueCapacity int
	// Refused counts ErrBusy answers since the gate was made.
	Refused uint64
}

// Stats returns the gate's state now.
func (g *Gate) Stats() Stats {
	return Stats{InFlight: len(g.slots), Capacity: cap(g.slots), Waiting: int(g.waiting.Load()),
		QueueCapacity: int(g.maxWaiting), Refused: g.refused.Load()}
}

// RetryAfter is the Retry-After, in whole seconds (at least 1), to send with
// a refusal: the longest a call would have waited.
func (g *Gate) RetryAfter() int {
	return max(1, int(math.Ceil(g.maxWait.Seconds())))
}

// Samples reports the gate as metrics labelled gate=name: calls in flight
// and waiting, refusals, and the wait in line.
func (g *Gate) Samples(name string, emit func(idp.Sample)) {
	st := g.Stats()
	l := []idp.Label{{Name: "gate", Value: name}}
	emit(idp.Sample{Name: "ponte_admission_in_flight", Help: "Calls running on an admission-controlled path.", Kind: idp.Gauge, Labels: l, Value: float64(st.InFlight)})
	emit(idp.Sample{Name: "ponte_admission_capacity", Help: "Calls an admission-controlled path runs at once.", Kind: idp.Gauge, Labels: l, Value: float64(st.Capacity)})
	emit(idp.Sample{Name: "ponte_admission_waiting", Help: "Calls waiting in line for an admission-controlled path (the queue depth).", Kind: idp.Gauge, Labels: l, Value: float64(st.Waiting)})
	emit(idp.Sample{Name: "ponte_admission_queue_capacity", Help: "Calls that may wait in line for an admission-controlled path.", Kind: idp.Gauge, Labels: l, Value: float64(st.QueueCapacity)})
	emit(idp.Sample{Name: "ponte_admission_refused_total", Help: "Calls refused with 503 because an admission-controlled path was full.", Kind: idp.Counter, Labels: l, Value: float64(st.Refused)})
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
