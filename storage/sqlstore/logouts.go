package sqlstore

import (
	"cmp"
	"context"
	"errors"
	"slices"
	"strings"
	"time"

	"gorm.io/gorm"

	"github.com/ponte-id/ponte/storage"
)

var _ storage.Logouts = (*Store)(nil)

// ListSubjectSessions returns the subject's sessions, newest first.
func (s *Store) ListSubjectSessions(ctx context.Context, subject string) ([]storage.Session, error) {
	if subject == "" {
		return nil, errEmptySubject
	}
	var rows []sessionRow
	err := s.conn(ctx).Where("subject = ?", subject).Order("created_at DESC, id").Find(&rows).Error
	return sessionsOf(rows), wrap("list subject sessions", err)
}

// ListMethodSessions returns the sessions with that method key.
func (s *Store) ListMethodSessions(ctx context.Context, methodKey string) ([]storage.Session, error) {
	if methodKey == "" {
		return nil, errors.New("sqlstore: list method sessions: empty key")
	}
	var rows []sessionRow
	err := s.conn(ctx).Where("method_key = ?", methodKey).Order("created_at DESC, id").Find(&rows).Error
	return sessionsOf(rows), wrap("list method sessions", err)
}

func sessionsOf(rows []sessionRow) []storage.Session {
	out := make([]storage.Session, len(rows))
	for i, r := range rows {
		out[i] = storage.Session{
			ID: r.ID, Subject: r.Subject, AuthTime: r.AuthTime.t, Method: r.Method, Level: r.Level, AMR: r.AMR,
			MethodData: blob(r.Data), MethodKey: r.Key, CreatedAt: r.Created.t, ExpiresAt: r.Expires.t,
		}
	}
	return out
}

type sessionClientRow struct {
	SessionID string `gorm:"column:session_id;primaryKey"`
	ClientID  string `gorm:"column:client_id;primaryKey"`
	Subject   string `gorm:"column:subject"`
	SID       string `gorm:"column:sid"`
	Created   dbTime `gorm:"column:created_at"`
	Expires   dbTime `gorm:"column:expires_at"`
}

func (sessionClientRow) TableName() string { return "session_clients" }

// AddSessionClient records c, or updates the sub, sid and expiry of the
// session's record for the client.
func (s *Store) AddSessionClient(ctx context.Context, c storage.SessionClient) error {
	if c.CreatedAt.IsZero() {
		c.CreatedAt = s.now()
	}
	// On every authorization's path: plain database/sql (hot.go).
	_, err := s.hotExec(ctx, s.hot.addSessionClient, c.SessionID, c.ClientID, c.Subject, c.SID,
		s.timeArg(c.CreatedAt), s.timeArg(c.ExpiresAt))
	return wrap("add session client", err)
}

// SessionClients returns the session's relying parties, by client ID.
func (s *Store) SessionClients(ctx context.Context, sessionID string) ([]storage.SessionClient, error) {
	var rows []sessionClientRow
	if err := s.conn(ctx).Where("session_id = ?", sessionID).Order("client_id").Find(&rows).Error; err != nil {
		return nil, wrap("session clients", err)
	}
	out := make([]storage.SessionClient, len(rows))
	for i, r := range rows {
		out[i] = storage.SessionClient{SessionID: r.SessionID, ClientID: r.ClientID, Subject: r.Subject, SID: r.SID,
			CreatedAt: r.Created.t, ExpiresAt: r.Expires.t}
	}
	return out, nil
}

// MoveSessionClients moves from's records to to; where to has the client
// already, from's record is dropped. Every record of to then expires with it.
func (s *Store) MoveSessionClients(ctx context.Context, from, to string, expiresAt time.Time) error {
	return wrap("move session clients", s.atomic(ctx, func(tx *gorm.DB) error {
		err := tx.Exec(`DELETE FROM session_clients WHERE session_id = ? AND client_id IN
    (SELECT client_id FROM session_clients WHERE session_id = ?)`, from, to).Error
		if err != nil {
			return err
		}
		if err := tx.Model(&sessionClientRow{}).Where("session_id = ?", from).Update("session_id", to).Error; err != nil {
			return err
		}
		return tx.Model(&sessionClientRow{}).Where("session_id = ?", to).Update("expires_at", newTime(expiresAt)).Error
	}))
}

// QueueOrphanLogouts turns records of vanished sessions into logouts, in one
// transaction; on PostgreSQL the records are locked SKIP LOCKED and each is
// queued only by the caller whose delete removed it.
func (s *Store) QueueOrphanLogouts(ctx context.Context, now time.Time, limit int, newID func() string) (int, error) {
	if limit <= 0 {
		return 0, nil
	}
	lock := ""
	if s.dialect == DialectPostgres {
		lock = " FOR UPDATE SKIP LOCKED"
	}
	queued := 0
	err := s.atomic(ctx, func(tx *gorm.DB) error {
		var rows []sessionClientRow
		err := tx.Raw(`SELECT session_id, client_id, subject, sid, created_at, expires_at FROM session_clients
WHERE expires_at > ? AND NOT EXISTS (SELECT 1 FROM sessions WHERE sessions.id = session_clients.session_id)
ORDER BY session_id, client_id LIMIT ?`+lock, newTime(now), limit).Scan(&rows).Error
		if err != nil {
			return err
		}
		for _, r := range rows {
			res := tx.Where("session_id = ? AND client_id = ?", r.SessionID, r.ClientID).Delete(&sessionClientRow{})
			if res.Error != nil {
				return res.Error
			}
			if res.RowsAffected == 0 {
				continue
			}
			var uri string
			if err := tx.Raw(`SELECT backchannel_logout_uri FROM clients WHERE id = ?`, r.ClientID).Scan(&uri).Error; err != nil {
				return err
			}
			if uri == "" {
				continue
			}
			m := logoutRow{ID: newID(), ClientID: r.ClientID, Subject: r.Subject, SID: r.SID,
				NextAttemptAt: newTime(now), Created: newTime(now)}
			if err := tx.Create(&m).Error; err != nil {
				return err
			}
			queued++
		}
		return nil
	})
	if err != nil {
		return 0, wrap("queue orphan logouts", err)
	}
	return queued, nil
}

// DeleteSessionClients deletes the session's records.
func (s *Store) DeleteSessionClients(ctx context.Context, sessionID string) error {
	return wrap("delete session clients", s.writer(ctx).Where("session_id = ?", sessionID).Delete(&sessionClientRow{}).Error)
}

// DeleteExpiredSessionClients deletes records that expired before the given time.
func (s *Store) DeleteExpiredSessionClients(ctx context.Context, before time.Time) (int64, error) {
	res := s.writer(ctx).Where("expires_at < ?", newTime(before)).Delete(&sessionClientRow{})
	return res.RowsAffected, wrap("delete expired session clients", res.Error)
}

type logoutRow struct {
	ID            string `gorm:"column:id;primaryKey"`
	ClientID      string `gorm:"column:client_id"`
	Subject       string `gorm:"column:subject"`
	SID           string `gorm:"column:sid"`
	Attempts      int    `gorm:"column:attempts"`
	NextAttemptAt dbTime `gorm:"column:next_attempt_at"`
	LeaseUntil    dbTime `gorm:"column:lease_until"`
	LastError     string `gorm:"column:last_error"`
	ParkedAt      dbTime `gorm:"column:parked_at"`
	Created       dbTime `gorm:"column:created_at"`
}

func (logoutRow) TableName() string { return "logout_outbox" }

const logoutColumns = "id, client_id, subject, sid, attempts, next_attempt_at, lease_until, last_error, parked_at, created_at"

func (r logoutRow) message() storage.LogoutMessage {
	return storage.LogoutMessage{ID: r.ID, ClientID: r.ClientID, Subject: r.Subject, SID: r.SID, Attempts: r.Attempts,
		NextAttemptAt: r.NextAttemptAt.t, LeaseUntil: r.LeaseUntil.t, LastError: r.LastError, ParkedAt: r.ParkedAt.t,
		CreatedAt: r.Created.t}
}

func logoutMessages(rows []logoutRow) []storage.LogoutMessage {
	out := make([]storage.LogoutMessage, len(rows))
	for i, r := range rows {
		out[i] = r.message()
	}
	return out
}

// EnqueueLogout stores m; storage.ErrConflict on a duplicate ID.
func (s *Store) EnqueueLogout(ctx context.Context, m storage.LogoutMessage) error {
	if m.CreatedAt.IsZero() {
		m.CreatedAt = s.now()
	}
	if m.NextAttemptAt.IsZero() {
		m.NextAttemptAt = m.CreatedAt
	}
	row := logoutRow{ID: m.ID, ClientID: m.ClientID, Subject: m.Subject, SID: m.SID, Attempts: m.Attempts,
		NextAttemptAt: newTime(m.NextAttemptAt), LastError: m.LastError, ParkedAt: newTime(m.ParkedAt), Created: newTime(m.CreatedAt)}
	return wrap("enqueue logout", s.writer(ctx).Create(&row).Error)
}

// ClaimLogouts leases due messages in one UPDATE ... RETURNING (FOR UPDATE
// SKIP LOCKED on PostgreSQL; SQLite holds the write lock), as ClaimDue does.
func (s *Store) ClaimLogouts(ctx context.Context, now time.Time, limit int, lease time.Duration) ([]storage.LogoutMessage, error) {
	if limit <= 0 {
		return nil, nil
	}
	lock := ""
	if s.dialect == DialectPostgres {
		lock = " FOR UPDATE SKIP LOCKED"
	}
	var rows []logoutRow
	err := s.writer(ctx).Raw(`UPDATE logout_outbox SET lease_until = ?
WHERE id IN (SELECT id FROM logout_outbox
    WHERE parked_at IS NULL AND next_attempt_at <= ? AND (lease_until IS NULL OR lease_until <= ?)
    ORDER BY next_attempt_at, id LIMIT ?`+lock+`)
RETURNING `+logoutColumns, newTime(now.Add(lease)), newTime(now), newTime(now), limit).Scan(&rows).Error
	if err != nil {
		return nil, wrap("claim logouts", err)
	}
	out := logoutMessages(rows)
	sortLogouts(out)
	return out, nil
}

func sortLogouts(ms []storage.LogoutMessage) {
	slices.SortFunc(ms, func(a, b storage.LogoutMessage) int {
		return cmp.Or(a.NextAttemptAt.Compare(b.NextAttemptAt), strings.Compare(a.ID, b.ID))
	})
}

// DeleteLogout removes a message.
func (s *Store) DeleteLogout(ctx context.Context, id string) error {
	res := s.writer(ctx).Where("id = ?", id).Delete(&logoutRow{})
	if res.Error != nil {
		return wrap("delete logout", res.Error)
	}
	if res.RowsAffected == 0 {
		return notFound("delete logout")
	}
	return nil
}

// FailLogout counts a failure and schedules the next attempt, or parks.
func (s *Store) FailLogout(ctx context.Context, id string, next time.Time, reason string, park bool) error {
	reason = truncateUTF8(strings.ToValidUTF8(reason, "\uFFFD"), maxErrorLen)
	set := map[string]any{"attempts": gorm.Expr("attempts + 1"), "last_error": reason, "lease_until": newTime(time.Time{})}
	if park {
		set["parked_at"] = newTime(next)
	} else {
		set["next_attempt_at"] = newTime(next)
	}
	res := s.writer(ctx).Model(&logoutRow{}).Where("id = ?", id).Updates(set)
	if res.Error != nil {
		return wrap("fail logout", res.Error)
	}
	if res.RowsAffected == 0 {
		return notFound("fail logout")
	}
	return nil
}

// ListLogouts returns parked (or pending) messages, oldest first.
func (s *Store) ListLogouts(ctx context.Context, parked bool, limit int) ([]storage.LogoutMessage, error) {
	if limit <= 0 {
		return nil, nil
	}
	cond := "parked_at IS NULL"
	if parked {
		cond = "parked_at IS NOT NULL"
	}
	var rows []logoutRow
	if err := s.conn(ctx).Where(cond).Order("created_at, id").Limit(limit).Find(&rows).Error; err != nil {
		return nil, wrap("list logouts", err)
	}
	return logoutMessages(rows), nil
}

// RequeueLogout unparks a message and makes it due at at.
func (s *Store) RequeueLogout(ctx context.Context, id string, at time.Time) (storage.LogoutMessage, error) {
	var rows []logoutRow
	err := s.writer(ctx).Raw(`UPDATE logout_outbox SET attempts = 0, next_attempt_at = ?, lease_until = NULL, parked_at = NULL
WHERE id = ?
RETURNING `+logoutColumns, newTime(at), id).Scan(&rows).Error
	if err != nil {
		return storage.LogoutMessage{}, wrap("requeue logout", err)
	}
	if len(rows) == 0 {
		return storage.LogoutMessage{}, notFound("requeue logout")
	}
	return rows[0].message(), nil
}
