package provider

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/ponte-id/ponte/storage"
)

// SessionEnder ends citizens' SSO sessions and, in the same transaction,
// queues a logout token (OpenID Connect Back-Channel Logout 1.0) for every
// relying party that took part in each session and registered a back-channel
// logout URI. A crash after the commit loses no logout: the outbox is
// durable, and a sender (idp/backchannel) delivers it. The provider uses it
// for RP-initiated logout and for the sessions a login method ends; the
// citizen's own pages and the staff's admin API call it too.
type SessionEnder struct {
	Store storage.Store
	// Now is the clock (nil: time.Now).
	Now func() time.Time
	// Queued, if set, is called after a commit that queued logouts (to wake the sender).
	Queued func()
	Logger *slog.Logger
}

// ErrNoSession means the citizen has no session with that sid.
var ErrNoSession = errors.New("provider: no such session")

// EndSubjectSessions ends every session of the citizen with that internal
// subject, and returns how many there were.
func (e SessionEnder) EndSubjectSessions(ctx context.Context, subject string) (int, error) {
	if subject == "" {
		return 0, errors.New("provider: end sessions: empty subject")
	}
	return e.inTx(ctx, func(ctx context.Context) ([]storage.Session, error) {
		return e.Store.ListSubjectSessions(ctx, subject)
	})
}

// EndSubjectSession ends the session named sid (its public identifier, the
// sid claim) if it is one of subject's; ErrNoSession otherwise, whether the
// sid is unknown or another citizen's.
func (e SessionEnder) EndSubjectSession(ctx context.Context, subject, sid string) error {
	if subject == "" || sid == "" {
		return ErrNoSession
	}
	n, err := e.inTx(ctx, func(ctx context.Context) ([]storage.Session, error) {
		all, err := e.Store.ListSubjectSessions(ctx, subject)
		for _, s := range all {
			if SID(s.ID) == sid {
				return []storage.Session{s}, err
			}
		}
		return nil, err
	})
	if err == nil && n == 0 {
		return ErrNoSession
	}
	return err
}

// EndMethodSessions ends the sessions a login method named key (identity
// provider-initiated logout), and returns how many there were.
func (e SessionEnder) EndMethodSessions(ctx context.Context, key string) (int, error) {
	return e.inTx(ctx, func(ctx context.Context) ([]storage.Session, error) {
		return e.Store.ListMethodSessions(ctx, key)
	})
}

// endSession ends one session by its storage ID, if it exists.
func (e SessionEnder) endSession(ctx context.Context, id string) error {
	_, err := e.inTx(ctx, func(ctx context.Context) ([]storage.Session, error) {
		s, err := e.Store.GetSession(ctx, id)
		if errors.Is(err, storage.ErrNotFound) {
			return nil, nil
		}
		return []storage.Session{s}, err
	})
	return err
}

// inTx finds sessions and ends them in one transaction of its own.
func (e SessionEnder) inTx(ctx context.Context, find func(context.Context) ([]storage.Session, error)) (int, error) {
	tx, err := e.Store.BeginTx(ctx)
	if err != nil {
		return 0, fmt.Errorf("provider: end sessions: %w", err)
	}
	sessions, err := find(tx)
	ended, queued := 0, 0
	if err == nil {
		ended, queued, err = e.EndIn(tx, sessions)
	}
	if err != nil {
		_ = e.Store.Rollback(tx)
		return 0, fmt.Errorf("provider: end sessions: %w", err)
	}
	if err := e.Store.Commit(tx); err != nil {
		return 0, fmt.Errorf("provider: end sessions: %w", err)
	}
	if queued > 0 && e.Queued != nil {
		e.Queued()
	}
	return ended, nil
}

// EndIn ends sessions with the storage calls of ctx (the caller's
// transaction, if it carries one) and returns how many it ended and how many
// logouts it queued. Each session is deleted first: of two callers ending
// one session at once, only the one whose delete found it queues its
// logouts (on PostgreSQL the second waits on the row until the first
// commits; on SQLite transactions take turns).
func (e SessionEnder) EndIn(ctx context.Context, sessions []storage.Session) (ended, queued int, err error) {
	now := time.Now
	if e.Now != nil {
		now = e.Now
	}
	for _, s := range sessions {
		before := queued
		err := e.Store.DeleteSession(ctx, s.ID)
		if errors.Is(err, storage.ErrNotFound) {
			continue // ended meanwhile, with its logouts
		}
		if err != nil {
			return ended, queued, err
		}
		ended++
		rps, err := e.Store.SessionClients(ctx, s.ID)
		if err != nil {
			return ended, queued, err
		}
		for _, rp := range rps {
			c, err := e.Store.GetClient(ctx, rp.ClientID)
			if errors.Is(err, storage.ErrNotFound) || err == nil && c.BackchannelLogoutURI == "" {
				continue
			}
			if err != nil {
				return ended, queued, err
			}
			at := now().UTC()
			m := storage.LogoutMessage{ID: randomToken(), ClientID: rp.ClientID, Subject: rp.Subject, SID: rp.SID,
				NextAttemptAt: at, CreatedAt: at}
			if err := e.Store.EnqueueLogout(ctx, m); err != nil {
				return ended, queued, err
			}
			queued++
		}
		if err := e.Store.DeleteSessionClients(ctx, s.ID); err != nil {
			return ended, queued, err
		}
		if e.Logger != nil && queued > before {
			e.Logger.InfoContext(ctx, "session ended: back-channel logouts queued", "subject", s.Subject, "logouts", queued-before)
		}
	}
	return ended, queued, nil
}

var _ storage.Sweeper = SessionEnder{}

// Sweep queues the logouts owed to relying parties that were granted an
// authorization in a session while it was being ended (the end did not see
// the grant, which committed just after): their records outlive the session.
// The janitor calls it.
func (e SessionEnder) Sweep(ctx context.Context, now time.Time) error {
	n, err := e.Store.QueueOrphanLogouts(ctx, now, 1000, randomToken)
	if err != nil {
		return fmt.Errorf("provider: orphan logouts: %w", err)
	}
	if n > 0 {
		if e.Logger != nil {
			e.Logger.InfoContext(ctx, "back-channel logouts queued for grants that raced the end of their session", "logouts", n)
		}
		if e.Queued != nil {
			e.Queued()
		}
	}
	return nil
}
