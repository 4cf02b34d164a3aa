// Package admin is what INPS administrators and auditors do to Ponte:
// relying parties (create, read, update, delete, secret rotation with an
// overlap), signing keys (list, rotate), staff roles and API tokens
// (through idp/staff), and the audit trail (search, streamed export). The
// command line (`ponte client`, `ponte keys`) and the admin API (Handler,
// JSON under /admin/api/v1, documented in api/openapi.yaml) both go through
// Service, so a setting is validated in one place (idp/clients) and every
// change is written to the audit trail with who made it.
package admin

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/ponte-id/ponte/idp/clients"
	"github.com/ponte-id/ponte/idp/staff"
	"github.com/ponte-id/ponte/internal/fields"
	"github.com/ponte-id/ponte/storage"
)

// Store is what the service reads and writes.
type Store interface {
	storage.Clients
	storage.Subjects
	storage.Staff
	storage.Audit
	storage.Transactor
}

// KeyManager lists and rotates the signing keys (idp/keys.Manager).
type KeyManager interface {
	List(ctx context.Context) ([]storage.SigningKey, error)
	Rotate(ctx context.Context, alg string) (storage.SigningKey, error)
}

// CitizenSessions ends a citizen's SSO sessions, queueing the back-channel
// logouts they owe (idp/provider.SessionEnder).
type CitizenSessions interface {
	EndSubjectSessions(ctx context.Context, subject string) (int, error)
}

// KeyAlgs are the algorithms a key may be rotated for.
var KeyAlgs = []string{"ES256", "RS256"}

// Service performs back-office actions and audits each under its actor.
type Service struct {
	store    Store
	registry *clients.Registry
	keys     KeyManager
	staff    *staff.Service
	sessions CitizenSessions
	now      func() time.Time
}

// New returns a Service; now may be nil (time.Now).
func New(store Store, registry *clients.Registry, keys KeyManager, st *staff.Service, sessions CitizenSessions, now func() time.Time) *Service {
	if now == nil {
		now = time.Now
	}
	return &Service{store: store, registry: registry, keys: keys, staff: st, sessions: sessions, now: now}
}

// EndCitizenSessions ends every SSO session of the citizen with fiscalNumber
// (with their back-channel logouts) and returns how many there were: none
// for a citizen Ponte does not know.
func (s *Service) EndCitizenSessions(ctx context.Context, actor staff.Actor, fiscalNumber string) (int, error) {
	cf := strings.ToUpper(strings.TrimSpace(fiscalNumber))
	if !s.staff.ValidFiscalNumber(cf) {
		return 0, fields.One("fiscal_number", "not a valid codice fiscale")
	}
	n := 0
	subj, err := s.store.GetSubjectByFiscalNumber(ctx, cf)
	switch {
	case errors.Is(err, storage.ErrNotFound):
	case err != nil:
		return 0, err
	default:
		if n, err = s.sessions.EndSubjectSessions(ctx, subj.ID); err != nil {
			return 0, err
		}
	}
	return n, s.staff.Record(ctx, actor, "citizen.sessions_ended", "", cf, fmt.Sprintf("%d sessions", n))
}

// Staff is the staff service the admin API's roles and tokens go through.
func (s *Service) Staff() *staff.Service { return s.staff }

// inTx runs fn in one transaction: the change and its audit entry commit together.
func (s *Service) inTx(ctx context.Context, fn func(ctx context.Context) error) error {
	tx, err := s.store.BeginTx(ctx)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		_ = s.store.Rollback(tx)
		return err
	}
	return s.store.Commit(tx)
}

// CreateClient registers a relying party; the secret (empty for clients
// without one) is returned this once.
func (s *Service) CreateClient(ctx context.Context, actor staff.Actor, spec clients.Spec) (storage.Client, string, error) {
	var (
		c      storage.Client
		secret string
	)
	err := s.inTx(ctx, func(ctx context.Context) error {
		var err error
		if c, secret, err = s.registry.Create(ctx, spec); err != nil {
			return err
		}
		return s.staff.Record(ctx, actor, "client.created", "client:"+c.ID, "", describe(c))
	})
	if err != nil {
		return storage.Client{}, "", err
	}
	return c, secret, nil
}

// Client returns one relying party.
func (s *Service) Client(ctx context.Context, id string) (storage.Client, error) {
	return s.store.GetClient(ctx, id)
}

// Clients lists the relying parties by ID.
func (s *Service) Clients(ctx context.Context) ([]storage.Client, error) {
	return s.store.ListClients(ctx)
}

// UpdateClient replaces a relying party's settings; a secret is returned
// only when the client moved to a secret method and got one.
func (s *Service) UpdateClient(ctx context.Context, actor staff.Actor, id string, spec clients.Spec) (storage.Client, string, error) {
	var (
		c      storage.Client
		secret string
	)
	err := s.inTx(ctx, func(ctx context.Context) error {
		var err error
		if c, secret, err = s.registry.Update(ctx, id, spec); err != nil {
			return err
		}
		return s.staff.Record(ctx, actor, "client.updated", "client:"+c.ID, "", describe(c))
	})
	if err != nil {
		return storage.Client{}, "", err
	}
	return c, secret, nil
}

// DeleteClient deletes a relying party; storage.ErrNotFound if there is none.
func (s *Service) DeleteClient(ctx context.Context, actor staff.Actor, id string) error {
	return s.inTx(ctx, func(ctx context.Context) error {
		if err := s.store.DeleteClient(ctx, id); err != nil {
			return err
		}
		return s.staff.Record(ctx, actor, "client.deleted", "client:"+id, "", "")
	})
}

// RotateSecret gives a confidential client a new secret; the old one works
// for overlap more. It returns the new secret and the client as stored.
func (s *Service) RotateSecret(ctx context.Context, actor staff.Actor, id string, overlap time.Duration) (storage.Client, string, error) {
	var (
		c      storage.Client
		secret string
	)
	err := s.inTx(ctx, func(ctx context.Context) error {
		var err error
		if secret, err = s.registry.RotateSecret(ctx, id, overlap); err != nil {
			return err
		}
		if c, err = s.store.GetClient(ctx, id); err != nil {
			return err
		}
		return s.staff.Record(ctx, actor, "client.secret_rotated", "client:"+id, "", "overlap "+overlap.String())
	})
	if err != nil {
		return storage.Client{}, "", err
	}
	return c, secret, nil
}

// Keys lists the signing keys, newest first, without private material.
func (s *Service) Keys(ctx context.Context) ([]storage.SigningKey, error) {
	return s.keys.List(ctx)
}

// RotateKey creates a new signing key of alg (published now, signing after
// the publish delay) and retires the one it replaces.
func (s *Service) RotateKey(ctx context.Context, actor staff.Actor, alg string) (storage.SigningKey, error) {
	if !slices.Contains(KeyAlgs, alg) {
		return storage.SigningKey{}, fields.One("alg", "want %s", strings.Join(KeyAlgs, " or "))
	}
	k, err := s.keys.Rotate(ctx, alg)
	if err != nil {
		return storage.SigningKey{}, err
	}
	k.Sealed = nil
	return k, s.staff.Record(ctx, actor, "key.rotated", "key:"+k.ID, "", alg)
}

// SearchAudit streams the events q selects to fn.
func (s *Service) SearchAudit(ctx context.Context, q storage.AuditQuery, fn func(storage.AuditEvent) error) error {
	return s.store.SearchAudit(ctx, q, fn)
}

// RecordExport writes an export of the audit trail to the trail itself.
func (s *Service) RecordExport(ctx context.Context, actor staff.Actor, format string, q storage.AuditQuery) error {
	return s.staff.Record(ctx, actor, "audit.exported", "", "", fmt.Sprintf("%s from=%s to=%s actor=%q action=%q subject=%q",
		format, stamp(q.From), stamp(q.To), q.Actor, q.Action, q.Subject))
}

func stamp(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

// describe is a client's settings in brief, for the audit trail (no secret).
func describe(c storage.Client) string {
	return fmt.Sprintf("auth=%s alg=%s scopes=%s redirect_uris=%s pkce_exempt=%t",
		c.TokenEndpointAuthMethod, c.IDTokenSigningAlg, strings.Join(c.Scopes, ","), strings.Join(c.RedirectURIs, ","), c.PKCEExempt)
}
