package storage

import (
	"context"
	"time"
)

// StaffGrant is one role held by one member of staff, named by codice fiscale.
type StaffGrant struct {
	FiscalNumber string
	// Role is admin, operator-sede, operator-contact-center or auditor; storage
	// keeps it as given (idp/staff decides what a role may do).
	Role string
	// GrantedBy is the actor that granted it (a staff member, a token, the CLI).
	GrantedBy string
	GrantedAt time.Time
}

// APIToken is a bearer token an administrator issued to a machine caller.
// The token itself is never stored: Hash is its keyed hash.
type APIToken struct {
	// ID is public: it is the first part of the token and names it in lists and in the audit trail.
	ID   string
	Name string
	Hash []byte
	// Roles the token acts with.
	Roles     []string
	CreatedBy string
	CreatedAt time.Time
	ExpiresAt time.Time
	// RevokedAt is zero while the token has not been revoked.
	RevokedAt time.Time
}

// AuditQuery selects audit events. Zero fields select everything; From is
// inclusive and To exclusive. AfterID continues a listing after the event
// with that ID (events come ordered by time, then ID). Limit, when positive,
// caps how many are returned.
type AuditQuery struct {
	From, To time.Time
	// Actor matches AuditEvent.Operator exactly.
	Actor string
	// Action matches AuditEvent.Event exactly.
	Action string
	// Subject matches AuditEvent.FiscalNumber or AuditEvent.Target exactly.
	Subject string
	AfterID int64
	Limit   int
}

// Staff stores the back office's roles and API tokens, and searches the audit trail.
type Staff interface {
	// GrantRole stores g; ErrConflict if that person already holds that role.
	GrantRole(ctx context.Context, g StaffGrant) error
	// RevokeRole removes a role; ErrNotFound if the person does not hold it.
	RevokeRole(ctx context.Context, fiscalNumber, role string) error
	// StaffGrants returns the roles one person holds, ordered by role.
	StaffGrants(ctx context.Context, fiscalNumber string) ([]StaffGrant, error)
	// ListStaffGrants returns every grant, ordered by codice fiscale and role.
	ListStaffGrants(ctx context.Context) ([]StaffGrant, error)
	// CountRole counts the people holding role.
	CountRole(ctx context.Context, role string) (int, error)

	// CreateAPIToken stores t; ErrConflict if the ID is taken.
	CreateAPIToken(ctx context.Context, t APIToken) error
	// GetAPIToken returns a token, revoked or not; ErrNotFound if there is none.
	GetAPIToken(ctx context.Context, id string) (APIToken, error)
	// ListAPITokens returns every token, newest first.
	ListAPITokens(ctx context.Context) ([]APIToken, error)
	// RevokeAPIToken marks a token revoked at the given time; ErrNotFound if
	// there is no such token or it is already revoked.
	RevokeAPIToken(ctx context.Context, id string, at time.Time) error

	// SearchAudit calls fn with each event q selects, in order, reading them
	// from the database as it goes (never all at once); fn's error stops the
	// search and is returned.
	SearchAudit(ctx context.Context, q AuditQuery, fn func(AuditEvent) error) error
}
