package sqlstore

import (
	"cmp"
	"context"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"gorm.io/gorm"

	"github.com/ponte-id/ponte/storage"
)

type messageRow struct {
	ID            string `gorm:"column:id;primaryKey"`
	Channel       string `gorm:"column:channel"`
	Recipient     string `gorm:"column:recipient"`
	Subject       string `gorm:"column:subject"`
	Body          string `gorm:"column:body"`
	Secret        []byte `gorm:"column:secret"`
	FiscalNumber  string `gorm:"column:fiscal_number"`
	Attempts      int    `gorm:"column:attempts"`
	NextAttemptAt dbTime `gorm:"column:next_attempt_at"`
	LeaseUntil    dbTime `gorm:"column:lease_until"`
	LastError     string `gorm:"column:last_error"`
	SentAt        dbTime `gorm:"column:sent_at"`
	Created       dbTime `gorm:"column:created_at"`
}

func (messageRow) TableName() string { return "outbox_messages" }

func (r messageRow) message() storage.Message {
	return storage.Message{
		ID: r.ID, Channel: r.Channel, To: r.Recipient, Subject: r.Subject, Body: r.Body, Secret: blob(r.Secret),
		FiscalNumber: r.FiscalNumber, Attempts: r.Attempts, NextAttemptAt: r.NextAttemptAt.t,
		LeaseUntil: r.LeaseUntil.t, LastError: r.LastError, SentAt: r.SentAt.t, CreatedAt: r.Created.t,
	}
}

// Enqueue stores m; storage.ErrConflict on a duplicate ID. A zero NextAttemptAt
// is due at once.
func (s *Store) Enqueue(ctx context.Context, m storage.Message) error {
	if m.CreatedAt.IsZero() {
		m.CreatedAt = s.now()
	}
	if m.NextAttemptAt.IsZero() {
		m.NextAttemptAt = m.CreatedAt
	}
	row := messageRow{
		ID: m.ID, Channel: m.Channel, Recipient: m.To, Subject: m.Subject, Body: m.Body, Secret: m.Secret,
		FiscalNumber: m.FiscalNumber, Attempts: m.Attempts, NextAttemptAt: newTime(m.NextAttemptAt),
		Created: newTime(m.CreatedAt),
	}
	return wrap("enqueue", s.writer(ctx).Create(&row).Error)
}

// ClaimDue leases up to limit unsent, due messages of channel until now+lease,
// and returns them by next attempt (then ID). Selecting and leasing is one
// UPDATE ... WHERE id IN (SELECT ...) RETURNING statement: on PostgreSQL the
// subquery locks its rows FOR UPDATE SKIP LOCKED, and SQLite takes the write
// lock before the statement reads; either way concurrent claimers never get the
// same message. A limit of zero or less claims nothing.
func (s *Store) ClaimDue(ctx context.Context, channel string, now time.Time, limit int, lease time.Duration) ([]storage.Message, error) {
	if limit <= 0 {
		return nil, nil
	}
	lock := ""
	if s.dialect == DialectPostgres {
		lock = " FOR UPDATE SKIP LOCKED"
	}
	var rows []messageRow
	err := s.writer(ctx).Raw(`UPDATE outbox_messages SET lease_until = ?
WHERE id IN (SELECT id FROM outbox_messages
    WHERE channel = ? AND sent_at IS NULL AND next_attempt_at <= ? AND (lease_until IS NULL OR lease_until <= ?)
    ORDER BY next_attempt_at, id LIMIT ?`+lock+`)
RETURNING `+messageColumns, newTime(now.Add(lease)), channel, newTime(now), newTime(now), limit).Scan(&rows).Error
	if err != nil {
		return nil, wrap("claim due", err)
	}
	slices.SortFunc(rows, func(a, b messageRow) int {
		return cmp.Or(a.NextAttemptAt.t.Compare(b.NextAttemptAt.t), strings.Compare(a.ID, b.ID))
	})
	return messages(rows), nil
}

// messages converts rows to the contract's type.
func messages(rows []messageRow) []storage.Message {
	out := make([]storage.Message, len(rows))
	for i, r := range rows {
		out[i] = r.message()
	}
	return out
}

// messageColumns lists the columns of messageRow, for RETURNING.
const messageColumns = "id, channel, recipient, subject, body, secret, fiscal_number, attempts, next_attempt_at, lease_until, last_error, sent_at, created_at"

// MarkSent records delivery, erases the secret and drops the lease.
func (s *Store) MarkSent(ctx context.Context, id string, at time.Time) error {
	res := s.writer(ctx).Model(&messageRow{}).Where("id = ?", id).Updates(map[string]any{
		"sent_at": newTime(at), "secret": nil, "lease_until": newTime(time.Time{}),
	})
	if res.Error != nil {
		return wrap("mark sent", res.Error)
	}
	if res.RowsAffected == 0 {
		return notFound("mark sent")
	}
	return nil
}

// maxErrorLen bounds the stored reason of a failure.
const maxErrorLen = 500

// MarkFailed counts a failed attempt, schedules the next and drops the lease.
// The reason is stored as valid UTF-8 (invalid bytes become U+FFFD) and cut
// to at most maxErrorLen bytes on a character boundary.
func (s *Store) MarkFailed(ctx context.Context, id string, next time.Time, reason string) error {
	reason = truncateUTF8(strings.ToValidUTF8(reason, "\uFFFD"), maxErrorLen)
	res := s.writer(ctx).Model(&messageRow{}).Where("id = ?", id).Updates(map[string]any{
		"attempts": gorm.Expr("attempts + 1"), "next_attempt_at": newTime(next), "last_error": reason,
		"lease_until": newTime(time.Time{}),
	})
	if res.Error != nil {
		return wrap("mark failed", res.Error)
	}
	if res.RowsAffected == 0 {
		return notFound("mark failed")
	}
	return nil
}

// truncateUTF8 cuts s to at most n bytes without splitting a character.
func truncateUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// ListMessages returns up to limit messages, newest first (by CreatedAt, then
// ID), sent or not; a limit of zero or less returns none.
func (s *Store) ListMessages(ctx context.Context, limit int) ([]storage.Message, error) {
	if limit <= 0 {
		return nil, nil
	}
	var rows []messageRow
	if err := s.conn(ctx).Order("created_at DESC, id").Limit(limit).Find(&rows).Error; err != nil {
		return nil, wrap("list messages", err)
	}
	return messages(rows), nil
}

// ListParked returns unsent messages due more than storage.ParkFor/2 after now, oldest first.
func (s *Store) ListParked(ctx context.Context, now time.Time, limit int) ([]storage.Message, error) {
	if limit <= 0 {
		return nil, nil
	}
	var rows []messageRow
	err := s.conn(ctx).Where("sent_at IS NULL AND next_attempt_at > ?", newTime(now.Add(storage.ParkFor/2))).
		Order("created_at, id").Limit(limit).Find(&rows).Error
	if err != nil {
		return nil, wrap("list parked", err)
	}
	return messages(rows), nil
}

// CountOutbox counts the unsent messages: parked are those due more than
// storage.ParkFor/2 after now, as ListParked finds them; the rest are the backlog.
func (s *Store) CountOutbox(ctx context.Context, now time.Time) (storage.OutboxCounts, error) {
	var row struct {
		Backlog, Parked int64
	}
	err := s.conn(ctx).Raw(`SELECT
  COALESCE(SUM(CASE WHEN next_attempt_at > ? THEN 0 ELSE 1 END), 0) AS backlog,
  COALESCE(SUM(CASE WHEN next_attempt_at > ? THEN 1 ELSE 0 END), 0) AS parked
FROM outbox_messages WHERE sent_at IS NULL`, newTime(now.Add(storage.ParkFor/2)), newTime(now.Add(storage.ParkFor/2))).Scan(&row).Error
	if err != nil {
		return storage.OutboxCounts{}, wrap("count outbox", err)
	}
	return storage.OutboxCounts{Backlog: row.Backlog, Parked: row.Parked}, nil
}

// Requeue makes an unsent message due at at, resets its attempts, drops its
// lease and returns it; the last error stays for the record.
func (s *Store) Requeue(ctx context.Context, id string, at time.Time) (storage.Message, error) {
	var rows []messageRow
	err := s.writer(ctx).Raw(`UPDATE outbox_messages SET attempts = 0, next_attempt_at = ?, lease_until = NULL
WHERE id = ? AND sent_at IS NULL
RETURNING `+messageColumns, newTime(at), id).Scan(&rows).Error
	if err != nil {
		return storage.Message{}, wrap("requeue", err)
	}
	if len(rows) == 0 {
		return storage.Message{}, notFound("requeue")
	}
	return rows[0].message(), nil
}

type codeRow struct {
	Hash         string `gorm:"column:hash;primaryKey"`
	Purpose      string `gorm:"column:purpose"`
	FiscalNumber string `gorm:"column:fiscal_number"`
	ExpiresAt    dbTime `gorm:"column:expires_at"`
	Created      dbTime `gorm:"column:created_at"`
}

func (codeRow) TableName() string { return "one_time_codes" }

// CreateCode stores c; storage.ErrConflict on a duplicate hash.
func (s *Store) CreateCode(ctx context.Context, c storage.OneTimeCode) error {
	if c.CreatedAt.IsZero() {
		c.CreatedAt = s.now()
	}
	row := codeRow{Hash: c.Hash, Purpose: c.Purpose, FiscalNumber: c.FiscalNumber, ExpiresAt: newTime(c.ExpiresAt), Created: newTime(c.CreatedAt)}
	return wrap("create code", s.writer(ctx).Create(&row).Error)
}

// ConsumeCode deletes the code and returns it if it is live for purpose at now
// (ExpiresAt strictly after now; a code with a zero ExpiresAt is never live).
// It is one DELETE ... RETURNING statement, so of concurrent consumers only
// one gets the code, and a refused call (wrong purpose, expired) leaves the
// row as it was, in a transaction or not.
func (s *Store) ConsumeCode(ctx context.Context, hash, purpose string, now time.Time) (storage.OneTimeCode, error) {
	var rows []codeRow
	err := s.writer(ctx).Raw(`DELETE FROM one_time_codes WHERE hash = ? AND purpose = ? AND expires_at > ?
RETURNING hash, purpose, fiscal_number, expires_at, created_at`, hash, purpose, newTime(now)).Scan(&rows).Error
	if err != nil {
		return storage.OneTimeCode{}, wrap("consume code", err)
	}
	if len(rows) == 0 {
		return storage.OneTimeCode{}, notFound("consume code")
	}
	r := rows[0]
	return storage.OneTimeCode{Hash: r.Hash, Purpose: r.Purpose, FiscalNumber: r.FiscalNumber, ExpiresAt: r.ExpiresAt.t, CreatedAt: r.Created.t}, nil
}

// DeleteExpiredCodes deletes the one-time codes that can no longer be
// consumed at before (ExpiresAt strictly before it, or zero) and returns how
// many. It is not part of storage.PINStore; storage.Sweep does not call it.
func (s *Store) DeleteExpiredCodes(ctx context.Context, before time.Time) (int64, error) {
	res := s.writer(ctx).Where("expires_at < ? OR expires_at IS NULL", newTime(before)).Delete(&codeRow{})
	return res.RowsAffected, wrap("delete expired codes", res.Error)
}

type conversionRow struct {
	ID           string `gorm:"column:id;primaryKey"`
	FiscalNumber string `gorm:"column:fiscal_number"`
	Form         []byte `gorm:"column:form"`
	FormType     string `gorm:"column:form_type"`
	Document     []byte `gorm:"column:document"`
	DocumentType string `gorm:"column:document_type"`
	Status       string `gorm:"column:status"`
	Reason       string `gorm:"column:reason"`
	ReviewedBy   string `gorm:"column:reviewed_by"`
	Created      dbTime `gorm:"column:created_at"`
	ReviewedAt   dbTime `gorm:"column:reviewed_at"`
}

func (conversionRow) TableName() string { return "conversions" }

func (r conversionRow) conversion() storage.Conversion {
	return storage.Conversion{
		ID: r.ID, FiscalNumber: r.FiscalNumber, Form: blob(r.Form), FormType: r.FormType, Document: blob(r.Document),
		DocumentType: r.DocumentType, Status: storage.ConversionStatus(r.Status), Reason: r.Reason,
		ReviewedBy: r.ReviewedBy, CreatedAt: r.Created.t, ReviewedAt: r.ReviewedAt.t,
	}
}

func conversionToRow(c storage.Conversion) conversionRow {
	return conversionRow{
		ID: c.ID, FiscalNumber: c.FiscalNumber, Form: c.Form, FormType: c.FormType, Document: c.Document,
		DocumentType: c.DocumentType, Status: string(c.Status), Reason: c.Reason, ReviewedBy: c.ReviewedBy,
		Created: newTime(c.CreatedAt), ReviewedAt: newTime(c.ReviewedAt),
	}
}

// CreateConversion stores c; storage.ErrConflict on a duplicate ID.
func (s *Store) CreateConversion(ctx context.Context, c storage.Conversion) error {
	if c.CreatedAt.IsZero() {
		c.CreatedAt = s.now()
	}
	row := conversionToRow(c)
	return wrap("create conversion", s.writer(ctx).Create(&row).Error)
}

// GetConversion returns a request with its documents.
func (s *Store) GetConversion(ctx context.Context, id string) (storage.Conversion, error) {
	var row conversionRow
	if err := s.conn(ctx).Where("id = ?", id).Take(&row).Error; err != nil {
		return storage.Conversion{}, wrap("get conversion", err)
	}
	return row.conversion(), nil
}

// ListConversions returns the requests in status, oldest first, without documents.
func (s *Store) ListConversions(ctx context.Context, status storage.ConversionStatus) ([]storage.Conversion, error) {
	var rows []conversionRow
	err := s.conn(ctx).Omit("form", "document").Where("status = ?", string(status)).Order("created_at, id").Find(&rows).Error
	if err != nil {
		return nil, wrap("list conversions", err)
	}
	out := make([]storage.Conversion, len(rows))
	for i, r := range rows {
		out[i] = r.conversion()
	}
	return out, nil
}

// UpdateConversion reads the request, applies fn and writes it back atomically.
func (s *Store) UpdateConversion(ctx context.Context, id string, fn func(storage.Conversion) (storage.Conversion, error)) error {
	return s.atomic(ctx, func(tx *gorm.DB) error {
		var row conversionRow
		if err := s.forUpdate(tx).Where("id = ?", id).Take(&row).Error; err != nil {
			return wrap("update conversion", err)
		}
		c, err := fn(row.conversion())
		if err != nil {
			return err
		}
		c.ID = id
		next := conversionToRow(c)
		if err := tx.Model(&conversionRow{}).Where("id = ?", id).Select("*").Omit("id").Updates(&next).Error; err != nil {
			return wrap("update conversion", err)
		}
		return nil
	})
}
