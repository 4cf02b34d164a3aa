package sqlstore

import (
	"context"
	"time"

	"github.com/ponte-id/ponte/storage"
)

var _ storage.Staff = (*Store)(nil)

type staffRoleRow struct {
	FiscalNumber string `gorm:"column:fiscal_number;primaryKey"`
	Role         string `gorm:"column:role;primaryKey"`
	GrantedBy    string `gorm:"column:granted_by"`
	GrantedAt    dbTime `gorm:"column:granted_at"`
}

func (staffRoleRow) TableName() string { return "staff_roles" }

func (r staffRoleRow) grant() storage.StaffGrant {
	return storage.StaffGrant{FiscalNumber: r.FiscalNumber, Role: r.Role, GrantedBy: r.GrantedBy, GrantedAt: r.GrantedAt.t}
}

// GrantRole stores g (GrantedAt now if zero); storage.ErrConflict if held.
func (s *Store) GrantRole(ctx context.Context, g storage.StaffGrant) error {
	if g.GrantedAt.IsZero() {
		g.GrantedAt = s.now()
	}
	row := staffRoleRow{FiscalNumber: g.FiscalNumber, Role: g.Role, GrantedBy: g.GrantedBy, GrantedAt: newTime(g.GrantedAt)}
	return wrap("grant role", s.writer(ctx).Create(&row).Error)
}

// RevokeRole removes a role; storage.ErrNotFound if it was not held.
func (s *Store) RevokeRole(ctx context.Context, fiscalNumber, role string) error {
	res := s.writer(ctx).Where("fiscal_number = ? AND role = ?", fiscalNumber, role).Delete(&staffRoleRow{})
	if res.Error != nil {
		return wrap("revoke role", res.Error)
	}
	if res.RowsAffected == 0 {
		return notFound("revoke role")
	}
	return nil
}

// StaffGrants returns one person's roles, ordered by role.
func (s *Store) StaffGrants(ctx context.Context, fiscalNumber string) ([]storage.StaffGrant, error) {
	var rows []staffRoleRow
	if err := s.conn(ctx).Where("fiscal_number = ?", fiscalNumber).Order("role").Find(&rows).Error; err != nil {
		return nil, wrap("staff grants", err)
	}
	return grants(rows), nil
}

// ListStaffGrants returns every grant, ordered by codice fiscale and role.
func (s *Store) ListStaffGrants(ctx context.Context) ([]storage.StaffGrant, error) {
	var rows []staffRoleRow
	if err := s.conn(ctx).Order("fiscal_number, role").Find(&rows).Error; err != nil {
		return nil, wrap("list staff grants", err)
	}
	return grants(rows), nil
}

func grants(rows []staffRoleRow) []storage.StaffGrant {
	out := make([]storage.StaffGrant, len(rows))
	for i, r := range rows {
		out[i] = r.grant()
	}
	return out
}

// CountRole counts the people holding role. In a transaction it locks their
// rows (FOR UPDATE on PostgreSQL; SQLite's transaction holds the write lock),
// so that a count followed by a revocation cannot race another.
func (s *Store) CountRole(ctx context.Context, role string) (int, error) {
	db := s.conn(ctx).Model(&staffRoleRow{}).Where("role = ?", role)
	if s.txFrom(ctx) != nil {
		db = s.forUpdate(db)
	}
	var holders []string
	if err := db.Pluck("fiscal_number", &holders).Error; err != nil {
		return 0, wrap("count role", err)
	}
	return len(holders), nil
}

type apiTokenRow struct {
	ID        string  `gorm:"column:id;primaryKey"`
	Name      string  `gorm:"column:name"`
	Hash      []byte  `gorm:"column:hash"`
	Roles     strList `gorm:"column:roles"`
	CreatedBy string  `gorm:"column:created_by"`
	CreatedAt dbTime  `gorm:"column:created_at"`
	ExpiresAt dbTime  `gorm:"column:expires_at"`
	RevokedAt dbTime  `gorm:"column:revoked_at"`
}

func (apiTokenRow) TableName() string { return "api_tokens" }

func (r apiTokenRow) token() storage.APIToken {
	return storage.APIToken{ID: r.ID, Name: r.Name, Hash: blob(r.Hash), Roles: r.Roles, CreatedBy: r.CreatedBy,
		CreatedAt: r.CreatedAt.t, ExpiresAt: r.ExpiresAt.t, RevokedAt: r.RevokedAt.t}
}

// CreateAPIToken stores t (CreatedAt now if zero); storage.ErrConflict if the ID is taken.
func (s *Store) CreateAPIToken(ctx context.Context, t storage.APIToken) error {
	if t.CreatedAt.IsZero() {
		t.CreatedAt = s.now()
	}
	row := apiTokenRow{ID: t.ID, Name: t.Name, Hash: t.Hash, Roles: t.Roles, CreatedBy: t.CreatedBy,
		CreatedAt: newTime(t.CreatedAt), ExpiresAt: newTime(t.ExpiresAt), RevokedAt: newTime(t.RevokedAt)}
	return wrap("create api token", s.writer(ctx).Create(&row).Error)
}

// GetAPIToken returns a token, revoked or not, or storage.ErrNotFound.
func (s *Store) GetAPIToken(ctx context.Context, id string) (storage.APIToken, error) {
	var row apiTokenRow
	if err := s.conn(ctx).Where("id = ?", id).Take(&row).Error; err != nil {
		return storage.APIToken{}, wrap("get api token", err)
	}
	return row.token(), nil
}

// ListAPITokens returns every token, newest first.
func (s *Store) ListAPITokens(ctx context.Context) ([]storage.APIToken, error) {
	var rows []apiTokenRow
	if err := s.conn(ctx).Order("created_at DESC, id").Find(&rows).Error; err != nil {
		return nil, wrap("list api tokens", err)
	}
	out := make([]storage.APIToken, len(rows))
	for i, r := range rows {
		out[i] = r.token()
	}
	return out, nil
}

// RevokeAPIToken marks an unrevoked token revoked; storage.ErrNotFound otherwise.
func (s *Store) RevokeAPIToken(ctx context.Context, id string, at time.Time) error {
	res := s.writer(ctx).Model(&apiTokenRow{}).Where("id = ? AND revoked_at IS NULL", id).Update("revoked_at", newTime(at))
	if res.Error != nil {
		return wrap("revoke api token", res.Error)
	}
	if res.RowsAffected == 0 {
		return notFound("revoke api token")
	}
	return nil
}

// SearchAudit streams the events q selects, ordered by time and ID, from one
// query's rows: memory stays flat however many there are.
func (s *Store) SearchAudit(ctx context.Context, q storage.AuditQuery, fn func(storage.AuditEvent) error) error {
	db := s.conn(ctx).Model(&auditRow{})
	if !q.From.IsZero() {
		db = db.Where("at >= ?", newTime(q.From))
	}
	if !q.To.IsZero() {
		db = db.Where("at < ?", newTime(q.To))
	}
	if q.Actor != "" {
		db = db.Where("operator = ?", q.Actor)
	}
	if q.Action != "" {
		db = db.Where("event = ?", q.Action)
	}
	if q.Subject != "" {
		db = db.Where("(fiscal_number = ? OR target = ?)", q.Subject, q.Subject)
	}
	if q.AfterID > 0 {
		// Continue after an event: later in time, or at the same instant with a greater ID.
		db = db.Where("(at > (SELECT at FROM audit_events WHERE id = ?) OR (at = (SELECT at FROM audit_events WHERE id = ?) AND id > ?))", q.AfterID, q.AfterID, q.AfterID)
	}
	if q.Limit > 0 {
		db = db.Limit(q.Limit)
	}
	rows, err := db.Select("id, at, fiscal_number, event, channel, operator, detail, target").Order("at, id").Rows()
	if err != nil {
		return wrap("search audit", err)
	}
	defer rows.Close()
	for rows.Next() {
		var r auditRow
		if err := rows.Scan(&r.ID, &r.At, &r.FiscalNumber, &r.Event, &r.Channel, &r.Operator, &r.Detail, &r.Target); err != nil {
			return wrap("search audit", err)
		}
		if err := fn(r.event()); err != nil {
			return err
		}
	}
	return wrap("search audit", rows.Err())
}
