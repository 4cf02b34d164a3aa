package storage

import (
	"context"
	"time"
)

// LoginEvent is one login of a citizen, as their own pages show it.
type LoginEvent struct {
	ID      string
	Subject string
	// SessionID is the SSO session the login started.
	SessionID string
	Method    string
	Level     string
	// ClientID is the relying party the citizen was logging in to.
	ClientID string
	// IP is the client address; UserAgent the browser's User-Agent (cut by the caller).
	IP        string
	UserAgent string
	CreatedAt time.Time
	// ExpiresAt ends the record's retention.
	ExpiresAt time.Time
}

// LoginHistory stores citizens' recent logins.
type LoginHistory interface {
	// RecordLogin stores e and then keeps only the newest keep events of its
	// subject (keep > 0).
	RecordLogin(ctx context.Context, e LoginEvent, keep int) error
	// ListLogins returns up to limit events of subject, newest first.
	ListLogins(ctx context.Context, subject string, limit int) ([]LoginEvent, error)
	// DeleteExpiredLogins deletes events whose ExpiresAt is before the given time.
	DeleteExpiredLogins(ctx context.Context, before time.Time) (int64, error)
}
