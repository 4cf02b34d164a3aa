package sqlstore

import (
	"context"
	"errors"
	"time"

	"gorm.io/gorm"

	"github.com/ponte-id/ponte/storage"
)

type keyRow struct {
	ID        string `gorm:"column:id;primaryKey"`
	Algorithm string `gorm:"column:algorithm"`
	State     string `gorm:"column:state"`
	Sealed    []byte `gorm:"column:sealed"`
	NotBefore dbTime `gorm:"column:not_before"`
	NotAfter  dbTime `gorm:"column:not_after"`
	Created   dbTime `gorm:"column:created_at"`
}

func (keyRow) TableName() string { return "signing_keys" }

func keyToRow(k storage.SigningKey) keyRow {
	return keyRow{
		ID:        k.ID,
		Algorithm: k.Algorithm,
		State:     string(k.State),
		Sealed:    k.Sealed,
		NotBefore: newTime(k.NotBefore),
		NotAfter:  newTime(k.NotAfter),
		Created:   newTime(k.CreatedAt),
	}
}

func (r keyRow) key() storage.SigningKey {
	return storage.SigningKey{
		ID:        r.ID,
		Algorithm: r.Algorithm,
		State:     storage.KeyState(r.State),
		Sealed:    blob(r.Sealed),
		NotBefore: r.NotBefore.t,
		NotAfter:  r.NotAfter.t,
		CreatedAt: r.Created.t,
	}
}

// CreateKey stores k (a zero CreatedAt is set to now); storage.ErrConflict if
// the ID exists.
func (s *Store) CreateKey(ctx context.Context, k storage.SigningKey) error {
	if k.CreatedAt.IsZero() {
		k.CreatedAt = s.now()
	}
	if k.ID == "" {
		return errors.New("sqlstore: create key: empty ID")
	}
	row := keyToRow(k)
	return wrap("create key", s.writer(ctx).Create(&row).Error)
}

// ListKeys returns every key, oldest first.
func (s *Store) ListKeys(ctx context.Context) ([]storage.SigningKey, error) {
	var rows []keyRow
	if err := s.conn(ctx).Order("created_at").Order("id").Find(&rows).Error; err != nil {
		return nil, wrap("list keys", err)
	}
	out := make([]storage.SigningKey, len(rows))
	for i, r := range rows {
		out[i] = r.key()
	}
	return out, nil
}

// UpdateKey reads the key, applies fn and writes the result atomically, like
// UpdateClient. The ID cannot change; fn's error aborts the update and is
// returned as is; a missing key is storage.ErrNotFound.
func (s *Store) UpdateKey(ctx context.Context, id string, fn func(storage.SigningKey) (storage.SigningKey, error)) error {
	return s.atomic(ctx, func(tx *gorm.DB) error {
		var row keyRow
		if err := s.forUpdate(tx).Where("id = ?", id).Take(&row).Error; err != nil {
			return wrap("update key", err)
		}
		k, err := fn(row.key())
		if err != nil {
			return err
		}
		k.ID = id
		next := keyToRow(k)
		res := tx.Model(&keyRow{}).Where("id = ?", id).Select("*").Omit("id").Updates(&next)
		if res.Error != nil {
			return wrap("update key", res.Error)
		}
		if res.RowsAffected == 0 {
			return notFound("update key")
		}
		return nil
	})
}

// DeleteKey deletes the key, or returns storage.ErrNotFound.
func (s *Store) DeleteKey(ctx context.Context, id string) error {
	res := s.writer(ctx).Where("id = ?", id).Delete(&keyRow{})
	if res.Error != nil {
		return wrap("delete key", res.Error)
	}
	if res.RowsAffected == 0 {
		return notFound("delete key")
	}
	return nil
}

type jtiRow struct {
	JTI     string `gorm:"column:jti;primaryKey"`
	Expires dbTime `gorm:"column:expires_at"`
}

func (jtiRow) TableName() string { return "assertion_jtis" }

// UseJTI records jti until exp with one atomic upsert: a new jti is inserted,
// an expired one (expires_at at or before now) is replaced, and an unexpired
// one is left alone and reported as storage.ErrConflict.
func (s *Store) UseJTI(ctx context.Context, jti string, exp time.Time) error {
	if jti == "" {
		return errors.New("sqlstore: use jti: empty jti")
	}
	res := s.writer(ctx).Exec(`INSERT INTO assertion_jtis (jti, expires_at) VALUES (?, ?)
ON CONFLICT (jti) DO UPDATE SET expires_at = excluded.expires_at
WHERE assertion_jtis.expires_at <= ?`, jti, newTime(exp), newTime(s.now()))
	if res.Error != nil {
		return wrap("use jti", res.Error)
	}
	if res.RowsAffected == 0 {
		return wrap("use jti", storage.ErrConflict)
	}
	return nil
}

// DeleteExpiredJTIs deletes the JTIs that expired strictly before the given
// time and returns how many.
func (s *Store) DeleteExpiredJTIs(ctx context.Context, before time.Time) (int64, error) {
	res := s.writer(ctx).Where("expires_at < ?", newTime(before)).Delete(&jtiRow{})
	return res.RowsAffected, wrap("delete expired jtis", res.Error)
}
