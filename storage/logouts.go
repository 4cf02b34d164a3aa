package storage

import (
	"context"
	"time"
)

// SessionClient records that a relying party received a grant in an SSO
// session, with the sub and sid it was given: what a back-channel logout
// (OpenID Connect Back-Channel Logout 1.0) must name when the session ends.
type SessionClient struct {
	SessionID string
	ClientID  string
	// Subject is the sub the client was given (a pairwise alias for a client with a sector).
	Subject string
	// SID is the sid the client was given.
	SID       string
	CreatedAt time.Time
	// ExpiresAt is the session's: the record is swept after it.
	ExpiresAt time.Time
}

// LogoutMessage is a logout token owed to a relying party. The token itself
// is signed at each delivery (fresh iat and exp, the same jti); the client's
// registered URI is read at delivery too, so only that URI is ever called.
type LogoutMessage struct {
	// ID is the logout token's jti.
	ID       string
	ClientID string
	Subject  string
	SID      string
	// Attempts counts the failed deliveries.
	Attempts      int
	NextAttemptAt time.Time
	LeaseUntil    time.Time
	LastError     string
	// ParkedAt is when delivery was given up (zero while it goes on).
	ParkedAt  time.Time
	CreatedAt time.Time
}

// Logouts stores who took part in each SSO session and the outbox of
// back-channel logouts.
type Logouts interface {
	// AddSessionClient records c; if the session has a record for the client
	// already, it takes c's Subject, SID and ExpiresAt (what the client was
	// given last).
	AddSessionClient(ctx context.Context, c SessionClient) error
	// SessionClients returns the relying parties of a session, by client ID.
	SessionClients(ctx context.Context, sessionID string) ([]SessionClient, error)
	// MoveSessionClients gives the records of session from to session to
	// (a new login of the same citizen in the same browser); a client
	// recorded in both keeps to's record. Every record of to gets expiresAt.
	MoveSessionClients(ctx context.Context, from, to string, expiresAt time.Time) error
	// DeleteSessionClients deletes the records of a session.
	DeleteSessionClients(ctx context.Context, sessionID string) error
	// QueueOrphanLogouts finds up to limit unexpired records of sessions that
	// no longer exist — a session ended while a grant in it was being
	// committed leaves one — and, for each, deletes it and queues a logout
	// (ID from newID) if its client has a back-channel logout URI; it
	// returns how many logouts it queued. Concurrent callers never queue one
	// record twice.
	QueueOrphanLogouts(ctx context.Context, now time.Time, limit int, newID func() string) (int, error)
	// DeleteExpiredSessionClients deletes records whose ExpiresAt is before the given time.
	DeleteExpiredSessionClients(ctx context.Context, before time.Time) (int64, error)

	// EnqueueLogout stores m, due at once if NextAttemptAt is zero; ErrConflict on a duplicate ID.
	EnqueueLogout(ctx context.Context, m LogoutMessage) error
	// ClaimLogouts leases up to limit due, unparked, unleased messages until
	// now+lease, oldest due first; concurrent claimers never get the same one.
	ClaimLogouts(ctx context.Context, now time.Time, limit int, lease time.Duration) ([]LogoutMessage, error)
	// DeleteLogout removes a delivered (or dropped) message; ErrNotFound if there is none.
	DeleteLogout(ctx context.Context, id string) error
	// FailLogout counts a failed attempt, records the reason (cut to 500
	// bytes), drops the lease and either schedules the next attempt at next or,
	// with park, parks the message at next.
	FailLogout(ctx context.Context, id string, next time.Time, reason string, park bool) error
	// ListLogouts returns up to limit messages, parked or not as asked, oldest first.
	ListLogouts(ctx context.Context, parked bool, limit int) ([]LogoutMessage, error)
	// RequeueLogout makes a message due at at, unparked, with its attempts
	// counted afresh; ErrNotFound if there is none.
	RequeueLogout(ctx context.Context, id string, at time.Time) (LogoutMessage, error)
}
