package ratelimit

import (
	"context"
	"strconv"
	"time"
)

// Failures bounds the failed authentications of one client (an address, as
// clientaddr counts it) in a window, in the order of a regulation: Blocked is
// asked before a credential is checked, and refuses the client without
// checking it once its failures reach Limit; Fail counts a failure. A client
// that authenticates counts nothing, and a blocked client's attempts (the
// right credential included) are refused until its window ends.
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

// Blocked reports whether client has used up its failures, and how long until
// its window ends. An empty client (an address that does not parse) counts as
// one client.
func (f Failures) Blocked(ctx context.Context, client string) (retryAfter time.Duration, blocked bool) {
	n, left := f.Limiter.Peek(ctx, f.key(client))
	if n < f.Limit {
		return 0, false
	}
	return max(left, time.Second), true
}

// Fail counts one failed authentication of client.
func (f Failures) Fail(ctx context.Context, client string) {
	f.Limiter.Allow(ctx, f.key(client), f.Limit, f.Window)
}

func (f Failures) key(client string) string {
	return "authfail:" + f.Name + ":" + client
}

// RetryAfter is d as a Retry-After header value: whole seconds, rounded up
// (RFC 9110 §10.2.3).
func RetryAfter(d time.Duration) string {
	return strconv.Itoa(int((d + time.Second - 1) / time.Second))
}
