package sqlstore

import (
	"context"
	"errors"
	"time"

	"gorm.io/gorm"

	"github.com/ponte-id/ponte/storage"
)

var _ storage.LoginHistory = (*Store)(nil)

type loginRow struct {
	ID        string `gorm:"column:id;primaryKey"`
	Subject   string `gorm:"column:subject"`
	SessionID string `gorm:"column:session_id"`
	Method    string `gorm:"column:method"`
	Level     string `gorm:"column:level"`
	ClientID  string `gorm:"column:client_id"`
	IP        string `gorm:"column:ip"`
	UserAgent string `gorm:"column:user_agent"`
	Created   dbTime `gorm:"column:created_at"`
	Expires   dbTime `gorm:"column:expires_at"`
}

func (loginRow) TableName() string { return "login_history" }

// RecordLogin stores e and trims the subject's history to its newest keep events.
func (s *Store) RecordLogin(ctx context.Context, e storage.LoginEvent, keep int) error {
	if e.Subject == "" {
		return errEmptySubject
	}
	if keep <= 0 {
		return errors.New("sqlstore: record login: keep must be positive")
	}
	if e.CreatedAt.IsZero() {
		e.CreatedAt = s.now()
	}
	row := loginRow{ID: e.ID, Subject: e.Subject, SessionID: e.SessionID, Method: e.Method, Level: e.Level,
		ClientID: e.ClientID, IP: e.IP, UserAgent: e.UserAgent, Created: newTime(e.CreatedAt), Expires: newTime(e.ExpiresAt)}
	return wrap("record login", s.atomic(ctx, func(tx *gorm.DB) error {
		// One citizen's logins are recorded one at a time (on SQLite the
		// transaction holds the write lock already), so that the trim of each
		// sees the others' rows and the bound holds.
		if s.dialect == DialectPostgres {
			if err := tx.Exec(`SELECT pg_advisory_xact_lock(hashtext('ponte.login_history.' || ?))`, e.Subject).Error; err != nil {
				return err
			}
		}
		if err := tx.Create(&row).Error; err != nil {
			return err
		}
		return tx.Exec(`DELETE FROM login_history WHERE subject = ? AND id NOT IN
    (SELECT id FROM login_history WHERE subject = ? ORDER BY created_at DESC, id DESC LIMIT ?)`, e.Subject, e.Subject, keep).Error
	}))
}

// ListLogins returns the subject's newest events first.
func (s *Store) ListLogins(ctx context.Context, subject string, limit int) ([]storage.LoginEvent, error) {
	if limit <= 0 {
		return nil, nil
	}
	var rows []loginRow
	if err := s.conn(ctx).Where("subject = ?", subject).Order("created_at DESC, id DESC").Limit(limit).Find(&rows).Error; err != nil {
		return nil, wrap("list logins", err)
	}
	out := make([]storage.LoginEvent, len(rows))
	for i, r := range rows {
		out[i] = storage.LoginEvent{ID: r.ID, Subject: r.Subject, SessionID: r.SessionID, Method: r.Method, Level: r.Level,
			ClientID: r.ClientID, IP: r.IP, UserAgent: r.UserAgent, CreatedAt: r.Created.t, ExpiresAt: r.Expires.t}
	}
	return out, nil
}

// DeleteExpiredLogins deletes events past their retention.
func (s *Store) DeleteExpiredLogins(ctx context.Context, before time.Time) (int64, error) {
	res := s.writer(ctx).Where("expires_at < ?", newTime(before)).Delete(&loginRow{})
	return res.RowsAffected, wrap("delete expired logins", res.Error)
}
