package storage

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// Swept counts the expired records one Sweep deleted, per kind.
type Swept struct {
	Tokens      int64
	Sessions    int64
	Challenges  int64
	Uses        int64
	LoginStates int64
	// SessionClients are the records of which relying parties took part in an expired session.
	SessionClients int64
	// Logins are login-history events past their retention.
	Logins int64
}

// Total is the number of records deleted.
func (s Swept) Total() int64 {
	return s.Tokens + s.Sessions + s.Challenges + s.Uses + s.LoginStates + s.SessionClients + s.Logins
}

// Sweeper is a part of Ponte with expiring records of its own (a login
// method's): the janitor calls it after its own sweep.
type Sweeper interface {
	Sweep(ctx context.Context, now time.Time) error
}

// Sweep deletes the tokens, sessions, challenges, single-use IDs and login
// states that expired before now. Records with a zero ExpiresAt are kept, and a refresh
// token goes only once its own ExpiresAt has passed. Every kind is attempted
// even if another fails; the errors are joined.
func Sweep(ctx context.Context, s Store, now time.Time) (Swept, error) {
	var (
		out  Swept
		errs []error
	)
	for _, step := range []struct {
		name string
		fn   func(context.Context, time.Time) (int64, error)
		n    *int64
	}{
		{"tokens", s.DeleteExpiredTokens, &out.Tokens},
		{"sessions", s.DeleteExpiredSessions, &out.Sessions},
		{"challenges", s.DeleteExpiredChallenges, &out.Challenges},
		{"single-use IDs", s.DeleteExpiredUses, &out.Uses},
		{"login states", s.DeleteExpiredLoginStates, &out.LoginStates},
		{"session clients", s.DeleteExpiredSessionClients, &out.SessionClients},
		{"login history", s.DeleteExpiredLogins, &out.Logins},
	} {
		n, err := step.fn(ctx, now)
		*step.n = n
		if err != nil {
			errs = append(errs, fmt.Errorf("sweep %s: %w", step.name, err))
		}
	}
	return out, errors.Join(errs...)
}

// RunJanitor sweeps expired records (see Sweep), then calls each of sweepers,
// right away and then every interval, until ctx is done. now is the clock (nil means time.Now) and log
// receives one line per sweep that deleted something or failed (nil
// discards). A non-positive interval means one minute.
func RunJanitor(ctx context.Context, s Store, every time.Duration, now func() time.Time, log *slog.Logger, sweepers ...Sweeper) {
	if every <= 0 {
		every = time.Minute
	}
	if now == nil {
		now = time.Now
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		at := now()
		swept, err := Sweep(ctx, s, at)
		for _, sw := range sweepers {
			if serr := sw.Sweep(ctx, at); serr != nil {
				err = errors.Join(err, serr)
			}
		}
		counts := []any{"tokens", swept.Tokens, "sessions", swept.Sessions, "challenges", swept.Challenges,
			"single_use_ids", swept.Uses, "login_states", swept.LoginStates, "session_clients", swept.SessionClients, "logins", swept.Logins}
		switch {
		case err != nil && ctx.Err() != nil:
			return
		case err != nil:
			log.Log(ctx, Severity(err), "janitor sweep failed", append([]any{"err", err}, counts...)...)
		case swept.Total() > 0:
			log.InfoContext(ctx, "janitor swept expired records", counts...)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
