package sqlstore

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/ponte-id/ponte/storage"
)

var (
	_ storage.PINStore = (*Store)(nil)
	_ storage.Backend  = (*Store)(nil)
)

type pinAccountRow struct {
	FiscalNumber    string `gorm:"column:fiscal_number;primaryKey"`
	GivenName       string `gorm:"column:given_name"`
	FamilyName      string `gorm:"column:family_name"`
	Gender          string `gorm:"column:gender"`
	Birthdate       string `gorm:"column:birthdate"`
	BirthPlace      string `gorm:"column:birth_place"`
	ResidenceAbroad bool   `gorm:"column:residence_abroad"`
	Residence       string `gorm:"column:residence"`
	Mobile          string `gorm:"column:mobile"`
	Phone           string `gorm:"column:phone"`
	Email           string `gorm:"column:email"`
	PEC             string `gorm:"column:pec"`
	PreferredPhone  string `gorm:"column:preferred_phone"`
	CallbackSlot    string `gorm:"column:callback_slot"`
	Hash            []byte `gorm:"column:hash"`
	PreviousHash    []byte `gorm:"column:previous_hash"`
	Status          string `gorm:"column:status"`
	Dispositivo     bool   `gorm:"column:dispositivo"`
	MustChange      bool   `gorm:"column:must_change"`
	FirstAccessDone bool   `gorm:"column:first_access_done"`
	ChangedAt       dbTime `gorm:"column:changed_at"`
	ActivationHash  []byte `gorm:"column:activation_hash"`
	ReplacementHash []byte `gorm:"column:replacement_hash"`
	ReplacementAt   dbTime `gorm:"column:replacement_at"`
	Channel         string `gorm:"column:channel"`
	Operator        string `gorm:"column:operator"`
	Created         dbTime `gorm:"column:created_at"`
	Updated         dbTime `gorm:"column:updated_at"`
}

func (pinAccountRow) TableName() string { return "pin_accounts" }

func pinAccountToRow(a storage.PINAccount) (pinAccountRow, error) {
	res, err := json.Marshal(a.Residence)
	if err != nil {
		return pinAccountRow{}, fmt.Errorf("sqlstore: encode residence: %w", err)
	}
	return pinAccountRow{
		FiscalNumber: a.FiscalNumber, GivenName: a.GivenName, FamilyName: a.FamilyName, Gender: a.Gender,
		Birthdate: a.Birthdate, BirthPlace: a.BirthPlace, ResidenceAbroad: a.ResidenceAbroad, Residence: string(res),
		Mobile: a.Mobile, Phone: a.Phone, Email: a.Email, PEC: a.PEC, PreferredPhone: a.PreferredPhone,
		CallbackSlot: a.CallbackSlot, Hash: a.Hash, PreviousHash: a.PreviousHash, Status: string(a.Status),
		Dispositivo: a.Dispositivo, MustChange: a.MustChange, FirstAccessDone: a.FirstAccessDone,
		ChangedAt: newTime(a.ChangedAt), ActivationHash: a.ActivationHash,
		ReplacementHash: a.ReplacementHash, ReplacementAt: newTime(a.ReplacementAt), Channel: a.Channel, Operator: a.Operator,
		Created: newTime(a.CreatedAt), Updated: newTime(a.UpdatedAt),
	}, nil
}

func (r pinAccountRow) account() (storage.PINAccount, error) {
	var res storage.Address
	if err := json.Unmarshal([]byte(r.Residence), &res); err != nil {
		return storage.PINAccount{}, fmt.Errorf("sqlstore: decode residence: %w", err)
	}
	return storage.PINAccount{
		FiscalNumber: r.FiscalNumber, GivenName: r.GivenName, FamilyName: r.FamilyName, Gender: r.Gender,
		Birthdate: r.Birthdate, BirthPlace: r.BirthPlace, ResidenceAbroad: r.ResidenceAbroad, Residence: res,
		Mobile: r.Mobile, Phone: r.Phone, Email: r.Email, PEC: r.PEC, PreferredPhone: r.PreferredPhone,
		CallbackSlot: r.CallbackSlot, Hash: blob(r.Hash), PreviousHash: blob(r.PreviousHash),
		Status: storage.PINStatus(r.Status), Dispositivo: r.Dispositivo, MustChange: r.MustChange,
		FirstAccessDone: r.FirstAccessDone, ChangedAt: r.ChangedAt.t, ActivationHash: blob(r.ActivationHash),
		ReplacementHash: blob(r.ReplacementHash), ReplacementAt: r.ReplacementAt.t,
		Channel: r.Channel, Operator: r.Operator, CreatedAt: r.Created.t, UpdatedAt: r.Updated.t,
	}, nil
}

// CreatePINAccount stores a; storage.ErrConflict if the citizen has one.
func (s *Store) CreatePINAccount(ctx context.Context, a storage.PINAccount) error {
	row, err := pinAccountToRow(s.stamp(a))
	if err != nil {
		return err
	}
	return wrap("create PIN account", s.writer(ctx).Create(&row).Error)
}

// stamp sets zero creation and update times to now.
func (s *Store) stamp(a storage.PINAccount) storage.PINAccount {
	if a.CreatedAt.IsZero() {
		a.CreatedAt = s.now()
	}
	if a.UpdatedAt.IsZero() {
		a.UpdatedAt = a.CreatedAt
	}
	return a
}

// GetPINAccount returns the citizen's account, or storage.ErrNotFound.
func (s *Store) GetPINAccount(ctx context.Context, fiscalNumber string) (storage.PINAccount, error) {
	var row pinAccountRow
	if err := s.conn(ctx).Where("fiscal_number = ?", fiscalNumber).Take(&row).Error; err != nil {
		return storage.PINAccount{}, wrap("get PIN account", err)
	}
	return row.account()
}

// UpdatePINAccount reads the account, applies fn and writes the result,
// atomically (locked FOR UPDATE on PostgreSQL). The fiscal number cannot
// change; UpdatedAt becomes now. fn's error aborts and is returned as is.
func (s *Store) UpdatePINAccount(ctx context.Context, fiscalNumber string, fn func(storage.PINAccount) (storage.PINAccount, error)) error {
	return s.atomic(ctx, func(tx *gorm.DB) error {
		var row pinAccountRow
		if err := s.forUpdate(tx).Where("fiscal_number = ?", fiscalNumber).Take(&row).Error; err != nil {
			return wrap("update PIN account", err)
		}
		old, err := row.account()
		if err != nil {
			return err
		}
		a, err := fn(old)
		if err != nil {
			return err
		}
		a.FiscalNumber, a.UpdatedAt = fiscalNumber, s.now()
		next, err := pinAccountToRow(a)
		if err != nil {
			return err
		}
		res := tx.Model(&pinAccountRow{}).Where("fiscal_number = ?", fiscalNumber).Select("*").Omit("fiscal_number").Updates(&next)
		if res.Error != nil {
			return wrap("update PIN account", res.Error)
		}
		if res.RowsAffected == 0 {
			return notFound("update PIN account")
		}
		return nil
	})
}

// ReplacePINAccount writes a, creating it or overwriting every column.
func (s *Store) ReplacePINAccount(ctx context.Context, a storage.PINAccount) error {
	row, err := pinAccountToRow(s.stamp(a))
	if err != nil {
		return err
	}
	err = s.writer(ctx).Clauses(clause.OnConflict{
		Columns:   []clause.Column{{Name: "fiscal_number"}},
		UpdateAll: true,
	}).Create(&row).Error
	return wrap("replace PIN account", err)
}

type attemptRow struct {
	Key    string `gorm:"column:key;primaryKey"`
	Count  int    `gorm:"column:count"`
	LastAt dbTime `gorm:"column:last_at"`
}

func (attemptRow) TableName() string { return "pin_attempts" }

// ReserveAttempt counts one attempt with a single upsert, so parallel
// reservations on one key each get their own count.
func (s *Store) ReserveAttempt(ctx context.Context, key string, now, forgetBefore time.Time) (storage.Attempt, error) {
	var out struct {
		Count  int    `gorm:"column:count"`
		PrevAt dbTime `gorm:"column:prev_at"`
	}
	forget := newTime(forgetBefore)
	err := s.writer(ctx).Raw(`INSERT INTO pin_attempts (key, count, last_at, prev_at) VALUES (?, 1, ?, NULL)
ON CONFLICT (key) DO UPDATE SET
  count   = CASE WHEN pin_attempts.last_at <= ? THEN 1 ELSE pin_attempts.count + 1 END,
  prev_at = CASE WHEN pin_attempts.last_at <= ? THEN NULL ELSE pin_attempts.last_at END,
  last_at = excluded.last_at
RETURNING count, prev_at`, key, newTime(now), forget, forget).Scan(&out).Error
	if err != nil {
		return storage.Attempt{}, wrap("reserve attempt", err)
	}
	return storage.Attempt{Key: key, Count: out.Count, At: now, Prev: out.PrevAt.t}, nil
}

// RefundAttempt gives a reservation back; the time of the last attempt goes
// back to a.Prev only if it is still the reservation's own.
func (s *Store) RefundAttempt(ctx context.Context, a storage.Attempt) error {
	err := s.writer(ctx).Exec(`UPDATE pin_attempts SET
  count   = CASE WHEN count > 0 THEN count - 1 ELSE 0 END,
  last_at = CASE WHEN last_at = ? THEN ? ELSE last_at END
WHERE key = ?`, newTime(a.At), newTime(a.Prev), a.Key).Error
	return wrap("refund attempt", err)
}

// ResetAttempts clears the counter of key.
func (s *Store) ResetAttempts(ctx context.Context, key string) error {
	return wrap("reset attempts", s.writer(ctx).Where("key = ?", key).Delete(&attemptRow{}).Error)
}

// GetAttempts returns the count and the last attempt's time; zero for an unknown key.
func (s *Store) GetAttempts(ctx context.Context, key string) (int, time.Time, error) {
	var row attemptRow
	err := s.conn(ctx).Where("key = ?", key).Take(&row).Error
	if err == gorm.ErrRecordNotFound {
		return 0, time.Time{}, nil
	}
	if err != nil {
		return 0, time.Time{}, wrap("get attempts", err)
	}
	return row.Count, row.LastAt.t, nil
}

// DeleteQuietAttempts deletes the counters whose last attempt is strictly
// before the given time.
func (s *Store) DeleteQuietAttempts(ctx context.Context, before time.Time) (int64, error) {
	res := s.writer(ctx).Where("last_at < ?", newTime(before)).Delete(&attemptRow{})
	return res.RowsAffected, wrap("delete quiet attempts", res.Error)
}

// CountInWindow counts one event in the key's current window with a single
// upsert; last_at holds the start of the window.
func (s *Store) CountInWindow(ctx context.Context, key string, now time.Time, window time.Duration) (int, error) {
	var count int
	start := newTime(now.Add(-window))
	err := s.writer(ctx).Raw(`INSERT INTO pin_attempts (key, count, last_at) VALUES (?, 1, ?)
ON CONFLICT (key) DO UPDATE SET
  count   = CASE WHEN pin_attempts.last_at IS NULL OR pin_attempts.last_at <= ? THEN 1 ELSE pin_attempts.count + 1 END,
  last_at = CASE WHEN pin_attempts.last_at IS NULL OR pin_attempts.last_at <= ? THEN excluded.last_at ELSE pin_attempts.last_at END
RETURNING count`, key, newTime(now), start, start).Scan(&count).Error
	if err != nil {
		return 0, wrap("count in window", err)
	}
	return count, nil
}

type auditRow struct {
	ID           int64  `gorm:"column:id;primaryKey;autoIncrement"`
	At           dbTime `gorm:"column:at"`
	FiscalNumber string `gorm:"column:fiscal_number"`
	Event        string `gorm:"column:event"`
	Channel      string `gorm:"column:channel"`
	Operator     string `gorm:"column:operator"`
	Detail       string `gorm:"column:detail"`
	Target       string `gorm:"column:target"`
}

func (r auditRow) event() storage.AuditEvent {
	return storage.AuditEvent{ID: r.ID, At: r.At.t, FiscalNumber: r.FiscalNumber, Event: r.Event, Channel: r.Channel,
		Operator: r.Operator, Detail: r.Detail, Target: r.Target}
}

func (auditRow) TableName() string { return "audit_events" }

// AppendAudit appends e (At now if zero). The table refuses updates and deletes.
func (s *Store) AppendAudit(ctx context.Context, e storage.AuditEvent) error {
	if e.At.IsZero() {
		e.At = s.now()
	}
	row := auditRow{At: newTime(e.At), FiscalNumber: e.FiscalNumber, Event: e.Event, Channel: e.Channel, Operator: e.Operator, Detail: e.Detail, Target: e.Target}
	return wrap("append audit", s.writer(ctx).Omit("id").Create(&row).Error)
}

// ListAudit returns a citizen's events, oldest first.
func (s *Store) ListAudit(ctx context.Context, fiscalNumber string) ([]storage.AuditEvent, error) {
	var rows []auditRow
	if err := s.conn(ctx).Where("fiscal_number = ?", fiscalNumber).Order("at, id").Find(&rows).Error; err != nil {
		return nil, wrap("list audit", err)
	}
	out := make([]storage.AuditEvent, len(rows))
	for i, r := range rows {
		out[i] = r.event()
	}
	return out, nil
}
