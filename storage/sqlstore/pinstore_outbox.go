package sqlstore

import (
	"context"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"

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
	return wrap("enqueue", s.conn(ctx).Create(&row).Error)
}

// ClaimDue leases up to limit unsent, due messages of channel until now+lease.
// It selects and leases in one transaction (rows locked with SKIP LOCKED on
// PostgreSQL; the write lock held from the start on SQLite), so concurrent
// claimers never get the same message.
func (s *Store) ClaimDue(ctx context.Context, channel string, now time.Time, limit int, lease time.Duration) ([]storage.Message, error) {
	if limit <= 0 {
		return nil, nil
	}
	var out []storage.Message
	err := s.atomic(ctx, func(tx *gorm.DB) error {
		q := tx.Where("channel = ? AND sent_at IS NULL AND next_attempt_at <= ? AND (lease_until IS NULL OR lease_until <= ?)",
			channel, newTime(now), newTime(now)).Order("next_attempt_at").Limit(limit)
		if s.dialect == DialectPostgres {
			q = q.Clauses(clause.Locking{Strength: clause.LockingStrengthUpdate, Options: clause.LockingOptionsSkipLocked})
		}
		var rows []messageRow
		if err := q.Find(&rows).Error; err != nil {
			return wrap("claim due", err)
		}
		until := now.Add(lease)
		for _, r := range rows {
			res := tx.Model(&messageRow{}).Where("id = ?", r.ID).Update("lease_until", newTime(until))
			if res.Error != nil {
				return wrap("claim due", res.Error)
			}
			r.LeaseUntil = newTime(until)
			out = append(out, r.message())
		}
		return nil
	})
	return out, err
}

// MarkSent records delivery, erases the secret and drops the lease.
func (s *Store) MarkSent(ctx context.Context, id string, at time.Time) error {
	res := s.conn(ctx).Model(&messageRow{}).Where("id = ?", id).Updates(map[string]any{
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
func (s *Store) MarkFailed(ctx context.Context, id string, next time.Time, reason string) error {
	if len(reason) > maxErrorLen {
		reason = reason[:maxErrorLen]
	}
	res := s.conn(ctx).Model(&messageRow{}).Where("id = ?", id).Updates(map[string]any{
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

// ListMessages returns the newest messages first, sent or not.
func (s *Store) ListMessages(ctx context.Context, limit int) ([]storage.Message, error) {
	var rows []messageRow
	if err := s.conn(ctx).Order("created_at DESC, id").Limit(limit).Find(&rows).Error; err != nil {
		return nil, wrap("list messages", err)
	}
	out := make([]storage.Message, len(rows))
	for i, r := range rows {
		out[i] = r.message()
	}
	return out, nil
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
	return wrap("create code", s.conn(ctx).Create(&row).Error)
}

// ConsumeCode deletes the code and returns it if it is live for purpose at
// now; only one of concurrent consumers gets it (the delete decides).
func (s *Store) ConsumeCode(ctx context.Context, hash, purpose string, now time.Time) (storage.OneTimeCode, error) {
	var out storage.OneTimeCode
	err := s.atomic(ctx, func(tx *gorm.DB) error {
		var row codeRow
		if err := tx.Where("hash = ?", hash).Take(&row).Error; err != nil {
			return wrap("consume code", err)
		}
		res := tx.Where("hash = ?", hash).Delete(&codeRow{})
		if res.Error != nil {
			return wrap("consume code", res.Error)
		}
		if res.RowsAffected == 0 || row.Purpose != purpose || !now.Before(row.ExpiresAt.t) {
			return notFound("consume code")
		}
		out = storage.OneTimeCode{Hash: row.Hash, Purpose: row.Purpose, FiscalNumber: row.FiscalNumber, ExpiresAt: row.ExpiresAt.t, CreatedAt: row.Created.t}
		return nil
	})
	return out, err
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
	return wrap("create conversion", s.conn(ctx).Create(&row).Error)
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
