package ratelimit

import (
	"context"
	"strconv"
	"time"
)

// Failures bounds the failed authentications of one client (an address, as
// clientaddr counts it) in a window, in the order of a regulation: Begin
// counts an attempt before its credential is checked, and refuses it without
// checking once the client's attempts exceed Limit; an attempt that did not
// fail is given back (Attempt.Passed). Counting first bounds a burst of
// parallel guesses too: each holds its place in the count while it is
// checked, so at most Limit are ever checked in a window. A blocked client's
// attempts (the right credential included) are refused until its window
// ends.
type Failures struct {
	// Limiter holds the counts (shared through Redis when it is configured).
	Limiter Limiter
	// Name sets the keys apart ("admin", "operators").
	Name string
	// Limit is the failures a client may have in Window.
	Limit  int
	Window time.Duration
}

// The failures a client may have when Failures names no Limit or Window.
const (
	DefaultFailures      = 10
	DefaultFailureWindow = 15 * time.Minute
)

// WithDefaults returns f with its zero fields set: a Local limiter of its own,
// DefaultFailures in DefaultFailureWindow.
func (f Failures) WithDefaults() Failures {
	if f.Limiter == nil {
		f.Limiter = NewLocal(nil, 0)
	}
	if f.Limit <= 0 {
		f.Limit = DefaultFailures
	}
	if f.Window <= 0 {
		f.Window = DefaultFailureWindow
	}
	return f
}

// Begin counts an attempt of client before its credential is checked. When
// the client has used up its failures it returns blocked and how long until
// its window ends: refuse the attempt unchecked. Otherwise call the Attempt's
// Passed unless the check fails. An empty client (an address that does not
// parse) counts as one client.
func (f Failures) Begin(ctx context.Context, client string) (a Attempt, retryAfter time.Duration, blocked bool) {
	key := f.key(client)
	d := f.Limiter.Allow(ctx, key, f.Limit, f.Window)
	if !d.Allowed {
		// Refused unchecked: this attempt is no failure, and must not
		// outlive the attempts in flight that made the count full.
		f.Limiter.Undo(context.WithoutCancel(ctx), key)
		return Attempt{}, max(d.RetryAfter, time.Second), true
	}
	return Attempt{limiter: f.Limiter, key: key}, 0, false
}

// Attempt is one authentication counted by Failures.Begin.
type Attempt struct {
	limiter Limiter
	key     string
}

// Passed gives the attempt back: its credential was right, or none was
// offered. Only failures stay counted. It gives back even when ctx has ended
// (the client went away after its check): ctx's values are kept, not its end.
func (a Attempt) Passed(ctx context.Context) {
	if a.limiter != nil {
		a.limiter.Undo(context.WithoutCancel(ctx), a.key)
	}
}

func (f Failures) key(client string) string {
	return "authfail:" + f.Name + ":" + client
}

// RetryAfter is d as a Retry-After header value: whole seconds, rounded up
// (RFC 9110 §10.2.3).
func RetryAfter(d time.Duration) string {
	return strconv.Itoa(int((d + time.Second - 1) / time.Second))
}
