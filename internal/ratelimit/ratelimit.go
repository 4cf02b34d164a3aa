// Package ratelimit counts events per key in fixed windows, for the limits a
// stranger can run into (forms posted about any citizen, per client address).
//
// A window starts at a key's first event and lasts the given duration; the
// count starts again when it ends (the same windows as the database's
// CountInWindow). At a window's edge a client can therefore get up to twice
// the limit in a short time; the limits are set with that in mind.
//
// Local keeps the counts in the process. Redis shares them between every node
// through one Redis server (an atomic Lua script: INCR, and PEXPIRE on the
// first event), and degrades to a Local limiter, which counts every event all
// along, when Redis fails or answers late: the limits then bite per node, never
// less, and Allow never returns an error. Redis is asked again at most once a
// second while it is down, and takes over as soon as it answers.
package ratelimit

import (
	"context"
	"time"
)

// Limiter counts events per key in fixed windows.
type Limiter interface {
	// Allow counts one event on key and says whether it is within limit
	// events in the key's current window of the given length.
	Allow(ctx context.Context, key string, limit int, window time.Duration) Decision
	// Undo takes back one event counted on key in its current window (none
	// when the window has ended): an attempt reserved before a check that
	// then passed.
	Undo(ctx context.Context, key string)
}

// Decision is what Allow says of one event.
type Decision struct {
	// Allowed is true while the window holds at most the limit.
	Allowed bool
	// Count is the events in the window, this one included.
	Count int
	// RetryAfter is how long until the window ends (when refused).
	RetryAfter time.Duration
}

func decide(count int, limit int, left time.Duration) Decision {
	d := Decision{Allowed: count <= limit, Count: count}
	if !d.Allowed {
		d.RetryAfter = max(left, time.Millisecond)
	}
	return d
}
