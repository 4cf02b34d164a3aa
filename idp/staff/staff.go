// Package staff owns who works in Ponte's back office and what each may do:
// roles held by codici fiscali (admin, operator-sede, operator-contact-center,
// auditor), API tokens that an administrator issues to machine callers (shown
// once, stored as keyed hashes, scoped to roles, expiring, revocable), the
// authentication of a bearer token, and the audit trail of back-office
// actions. The admin API, the console and the command line all go through it.
package staff

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/ponte-id/ponte/idp"
	"github.com/ponte-id/ponte/internal/fields"
	"github.com/ponte-id/ponte/storage"
)

// The roles.
const (
	// RoleAdmin manages relying parties, keys, roles and API tokens, and reads the audit trail.
	RoleAdmin = "admin"
	// RoleOperatorSede runs the branch-office PIN procedures.
	RoleOperatorSede = idp.RoleOperatorSede
	// RoleOperatorContactCenter runs the contact-center PIN procedures.
	RoleOperatorContactCenter = idp.RoleOperatorContactCenter
	// RoleAuditor reads and exports the audit trail.
	RoleAuditor = "auditor"
)

// Roles lists every role.
var Roles = []string{RoleAdmin, RoleOperatorSede, RoleOperatorContactCenter, RoleAuditor}

// Token limits.
const (
	// MaxTokenTTL is the longest an API token may live: a forgotten token dies within a year.
	MaxTokenTTL = 366 * 24 * time.Hour
	// MinTokenTTL is the shortest.
	MinTokenTTL = time.Minute
	// MaxTokenName bounds a token's name.
	MaxTokenName = 100
	tokenPrefix  = "pt_"
	tokenIDBytes = 8
)

// Errors.
var (
	// ErrUnauthenticated: no token, a malformed, unknown, wrong, expired or revoked one.
	ErrUnauthenticated = errors.New("staff: not authenticated")
	// ErrLastAdmin refuses to revoke the admin role from the last person holding it.
	ErrLastAdmin = errors.New("staff: the last admin cannot lose the role")
)

// Actor is who performs a back-office action, as the audit trail names it:
// a staff member's codice fiscale, "token:<id>" for an API token, "cli" for
// the command line on the server.
type Actor struct {
	ID string
	// Channel is how the action arrived: api, console or cli.
	Channel string
}

// CLI is the actor of the command line.
var CLI = Actor{ID: "cli", Channel: "cli"}

// Principal is an authenticated caller and the roles it acts with.
type Principal struct {
	Actor
	Roles []string
}

// Has says whether p holds role.
func (p Principal) Has(role string) bool { return slices.Contains(p.Roles, role) }

// Store is what the service persists.
type Store interface {
	storage.Staff
	storage.Audit
	storage.Transactor
}

// Service manages staff roles and API tokens.
type Service struct {
	store       Store
	key         []byte
	now         func() time.Time
	validFiscal func(string) bool
}

// Options configures a Service.
type Options struct {
	// TokenKey keys the API tokens' hashes (at least 32 bytes).
	TokenKey []byte
	// ValidFiscalNumber checks a codice fiscale (format and check character).
	ValidFiscalNumber func(string) bool
	// Now is the clock; time.Now if nil.
	Now func() time.Time
}

// New returns a Service.
func New(store Store, o Options) (*Service, error) {
	if len(o.TokenKey) < 32 {
		return nil, errors.New("staff: token key must be at least 32 bytes")
	}
	if o.ValidFiscalNumber == nil {
		return nil, errors.New("staff: a codice fiscale validator is required")
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Service{store: store, key: slices.Clone(o.TokenKey), now: o.Now, validFiscal: o.ValidFiscalNumber}, nil
}

// ValidFiscalNumber says whether cf is a well-formed codice fiscale.
func (s *Service) ValidFiscalNumber(cf string) bool { return s.validFiscal(cf) }

// Record appends a back-office action to the audit trail under actor.
// target names what it concerned; fiscalNumber is the person concerned, if any.
func (s *Service) Record(ctx context.Context, actor Actor, event, target, fiscalNumber, detail string) error {
	return s.store.AppendAudit(ctx, storage.AuditEvent{At: s.now().UTC(), FiscalNumber: fiscalNumber, Event: event,
		Channel: actor.Channel, Operator: actor.ID, Detail: detail, Target: target})
}

// inTx runs fn in a transaction that commits only when fn succeeds.
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

func (s *Service) checkGrant(fiscalNumber, role string) (string, error) {
	errs := fields.Errors{}
	cf := strings.ToUpper(strings.TrimSpace(fiscalNumber))
	if !s.validFiscal(cf) {
		errs.Add("fiscal_number", "not a valid codice fiscale")
	}
	if !slices.Contains(Roles, role) {
		errs.Add("role", "unknown role %q (known: %s)", role, strings.Join(Roles, ", "))
	}
	return cf, errs.Err()
}

// Grant gives role to the person with fiscalNumber, and audits it.
// Granting a role already held is storage.ErrConflict.
func (s *Service) Grant(ctx context.Context, actor Actor, fiscalNumber, role string) (storage.StaffGrant, error) {
	cf, err := s.checkGrant(fiscalNumber, role)
	if err != nil {
		return storage.StaffGrant{}, err
	}
	g := storage.StaffGrant{FiscalNumber: cf, Role: role, GrantedBy: actor.ID, GrantedAt: s.now().UTC()}
	err = s.inTx(ctx, func(ctx context.Context) error {
		if err := s.store.GrantRole(ctx, g); err != nil {
			return err
		}
		return s.Record(ctx, actor, "staff.granted", "staff:"+cf, cf, role)
	})
	return g, err
}

// Revoke takes role from the person with fiscalNumber, and audits it. The
// last admin keeps the role (ErrLastAdmin); a role not held is storage.ErrNotFound.
func (s *Service) Revoke(ctx context.Context, actor Actor, fiscalNumber, role string) error {
	cf, err := s.checkGrant(fiscalNumber, role)
	if err != nil {
		return err
	}
	return s.inTx(ctx, func(ctx context.Context) error {
		if role == RoleAdmin {
			// CountRole locks the admins' rows in the transaction: two admins
			// revoking each other at once cannot both succeed.
			n, err := s.store.CountRole(ctx, RoleAdmin)
			if err != nil {
				return err
			}
			if n <= 1 {
				if err := s.holds(ctx, cf, RoleAdmin); err != nil {
					return err
				}
				return ErrLastAdmin
			}
		}
		if err := s.store.RevokeRole(ctx, cf, role); err != nil {
			return err
		}
		return s.Record(ctx, actor, "staff.revoked", "staff:"+cf, cf, role)
	})
}

// holds returns storage.ErrNotFound unless cf holds role.
func (s *Service) holds(ctx context.Context, cf, role string) error {
	gs, err := s.store.StaffGrants(ctx, cf)
	if err != nil {
		return err
	}
	for _, g := range gs {
		if g.Role == role {
			return nil
		}
	}
	return fmt.Errorf("staff: %s does not hold %s: %w", cf, role, storage.ErrNotFound)
}

// Grants lists every role held, by codice fiscale and role.
func (s *Service) Grants(ctx context.Context) ([]storage.StaffGrant, error) {
	return s.store.ListStaffGrants(ctx)
}

// RolesOf returns the roles a person holds (none for a stranger).
func (s *Service) RolesOf(ctx context.Context, fiscalNumber string) ([]string, error) {
	gs, err := s.store.StaffGrants(ctx, strings.ToUpper(strings.TrimSpace(fiscalNumber)))
	if err != nil {
		return nil, err
	}
	roles := make([]string, len(gs))
	for i, g := range gs {
		roles[i] = g.Role
	}
	return roles, nil
}

// TokenSpec is what an administrator asks for when issuing an API token.
type TokenSpec struct {
	Name  string
	Roles []string
	TTL   time.Duration
}

func (t TokenSpec) check() error {
	errs := fields.Errors{}
	if strings.TrimSpace(t.Name) == "" || len(t.Name) > MaxTokenName {
		errs.Add("name", "required, at most %d characters", MaxTokenName)
	}
	if len(t.Roles) == 0 {
		errs.Add("roles", "at least one role is required")
	}
	seen := map[string]bool{}
	for i, r := range t.Roles {
		switch {
		case !slices.Contains(Roles, r):
			errs.Add(fmt.Sprintf("roles[%d]", i), "unknown role %q (known: %s)", r, strings.Join(Roles, ", "))
		case seen[r]:
			errs.Add(fmt.Sprintf("roles[%d]", i), "role %q listed twice", r)
		}
		seen[r] = true
	}
	if t.TTL < MinTokenTTL || t.TTL > MaxTokenTTL {
		errs.Add("ttl", "must be between %s and %s", MinTokenTTL, MaxTokenTTL)
	}
	return errs.Err()
}

// CreateToken issues an API token and audits it. It returns the stored
// record and the token itself, which is shown this once and never stored.
func (s *Service) CreateToken(ctx context.Context, actor Actor, spec TokenSpec) (storage.APIToken, string, error) {
	if err := spec.check(); err != nil {
		return storage.APIToken{}, "", err
	}
	idRaw, secretRaw := make([]byte, tokenIDBytes), make([]byte, 32)
	if _, err := rand.Read(idRaw); err != nil {
		return storage.APIToken{}, "", err
	}
	if _, err := rand.Read(secretRaw); err != nil {
		return storage.APIToken{}, "", err
	}
	id, secret := hex.EncodeToString(idRaw), base64.RawURLEncoding.EncodeToString(secretRaw)
	now := s.now().UTC()
	t := storage.APIToken{ID: id, Name: strings.TrimSpace(spec.Name), Hash: s.hash(id, secret), Roles: slices.Clone(spec.Roles),
		CreatedBy: actor.ID, CreatedAt: now, ExpiresAt: now.Add(spec.TTL)}
	err := s.inTx(ctx, func(ctx context.Context) error {
		if err := s.store.CreateAPIToken(ctx, t); err != nil {
			return err
		}
		return s.Record(ctx, actor, "token.created", "token:"+id, "", strings.Join(t.Roles, " "))
	})
	if err != nil {
		return storage.APIToken{}, "", err
	}
	return t, tokenPrefix + id + "_" + secret, nil
}

// Tokens lists the API tokens, newest first (never their secrets: only hashes are kept).
func (s *Service) Tokens(ctx context.Context) ([]storage.APIToken, error) {
	return s.store.ListAPITokens(ctx)
}

// Token returns one API token's record.
func (s *Service) Token(ctx context.Context, id string) (storage.APIToken, error) {
	return s.store.GetAPIToken(ctx, id)
}

// RevokeToken revokes an API token at once, and audits it; an unknown or
// already revoked token is storage.ErrNotFound.
func (s *Service) RevokeToken(ctx context.Context, actor Actor, id string) error {
	return s.inTx(ctx, func(ctx context.Context) error {
		if err := s.store.RevokeAPIToken(ctx, id, s.now().UTC()); err != nil {
			return err
		}
		return s.Record(ctx, actor, "token.revoked", "token:"+id, "", "")
	})
}

// lowerHex reports whether s is lower-case hexadecimal, as a token ID is.
func lowerHex(s string) bool {
	for i := range len(s) {
		if c := s[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// hash is the keyed hash of a token: HMAC-SHA256 over its ID and secret. A
// 256-bit random secret needs no slow hash.
func (s *Service) hash(id, secret string) []byte {
	m := hmac.New(sha256.New, s.key)
	m.Write([]byte(id))
	m.Write([]byte{0})
	m.Write([]byte(secret))
	return m.Sum(nil)
}

// Authenticate checks an API token (pt_<id>_<secret>) and returns its
// principal: the actor "token:<id>" on the api channel with the token's
// roles. The secret is compared in constant time; a malformed, unknown,
// wrong, expired or revoked token is ErrUnauthenticated, and costs the
// same hash either way.
func (s *Service) Authenticate(ctx context.Context, token string) (Principal, error) {
	rest, ok := strings.CutPrefix(token, tokenPrefix)
	if !ok || len(rest) < 2*tokenIDBytes+2 || rest[2*tokenIDBytes] != '_' {
		return Principal{}, ErrUnauthenticated
	}
	id, secret := rest[:2*tokenIDBytes], rest[2*tokenIDBytes+1:]
	if !lowerHex(id) {
		// Not an ID Ponte issues: never sent to the database, whose
		// refusal of a malformed string (invalid UTF-8 on PostgreSQL)
		// would be an error, not a wrong token.
		return Principal{}, ErrUnauthenticated
	}
	got := s.hash(id, secret)
	t, err := s.store.GetAPIToken(ctx, id)
	if errors.Is(err, storage.ErrNotFound) {
		return Principal{}, ErrUnauthenticated
	}
	if err != nil {
		return Principal{}, err
	}
	now := s.now()
	if !hmac.Equal(got, t.Hash) || !t.RevokedAt.IsZero() || !now.Before(t.ExpiresAt) {
		return Principal{}, ErrUnauthenticated
	}
	return Principal{Actor: Actor{ID: "token:" + t.ID, Channel: "api"}, Roles: t.Roles}, nil
}

// OperatorToken is the operator authentication of an API token for the
// methods' operator APIs: the token's actor ID and its operator roles.
// ok is false when the token does not authenticate.
func (s *Service) OperatorToken(ctx context.Context, token string) (id string, roles []string, ok bool, err error) {
	p, err := s.Authenticate(ctx, token)
	if errors.Is(err, ErrUnauthenticated) {
		return "", nil, false, nil
	}
	if err != nil {
		return "", nil, false, err
	}
	for _, r := range p.Roles {
		if r == RoleOperatorSede || r == RoleOperatorContactCenter {
			roles = append(roles, r)
		}
	}
	return p.ID, roles, true, nil
}
