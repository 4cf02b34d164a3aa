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

type usedRow struct {
	ID      string `gorm:"column:id;primaryKey"`
	Expires dbTime `gorm:"column:expires_at"`
}

func (usedRow) TableName() string { return "used_ids" }

// UseOnce records id until exp with one atomic upsert: a new id is inserted,
// an expired one is renewed, and a live one changes nothing, which is reported
// as storage.ErrConflict.
func (s *Store) UseOnce(ctx context.Context, id string, exp time.Time) error {
	if id == "" {
		return errors.New("sqlstore: use once: empty id")
	}
	res := s.writer(ctx).Exec(`INSERT INTO used_ids (id, expires_at) VALUES (?, ?)
ON CONFLICT (id) DO UPDATE SET expires_at = excluded.expires_at
WHERE used_ids.expires_at <= ?`, id, newTime(exp), newTime(s.now()))
	if res.Error != nil {
		return wrap("use once", res.Error)
	}
	if res.RowsAffected == 0 {
		return wrap("use once", storage.ErrConflict)
	}
	return nil
}

// DeleteExpiredUses deletes the IDs that expired strictly before the given time.
func (s *Store) DeleteExpiredUses(ctx context.Context, before time.Time) (int64, error) {
	res := s.writer(ctx).Where("expires_at < ?", newTime(before)).Delete(&usedRow{})
	return res.RowsAffected, wrap("delete expired uses", res.Error)
}

type loginStateRow struct {
	Key       string `gorm:"column:key;primaryKey"`
	Challenge string `gorm:"column:challenge"`
	Data      []byte `gorm:"column:data"`
	Expires   dbTime `gorm:"column:expires_at"`
}

func (loginStateRow) TableName() string { return "login_states" }

// PutLoginState stores st; storage.ErrConflict if the key exists.
func (s *Store) PutLoginState(ctx context.Context, st storage.LoginState) error {
	row := loginStateRow{Key: st.Key, Challenge: st.Challenge, Data: st.Data, Expires: newTime(st.ExpiresAt)}
	return wrap("put login state", s.writer(ctx).Create(&row).Error)
}

// TakeLoginState deletes and returns a live state with one DELETE ... RETURNING,
// so of two takers one gets it.
func (s *Store) TakeLoginState(ctx context.Context, key string, now time.Time) (storage.LoginState, error) {
	var rows []loginStateRow
	err := s.writer(ctx).Raw(`DELETE FROM login_states WHERE key = ? AND (expires_at IS NULL OR expires_at > ?)
RETURNING key, challenge, data, expires_at`, key, newTime(now)).Scan(&rows).Error
	if err != nil {
		return storage.LoginState{}, wrap("take login state", err)
	}
	if len(rows) == 0 {
		return storage.LoginState{}, notFound("take login state")
	}
	r := rows[0]
	return storage.LoginState{Key: r.Key, Challenge: r.Challenge, Data: blob(r.Data), ExpiresAt: r.Expires.t}, nil
}

// DeleteExpiredLoginStates deletes the states that expired strictly before the given time.
func (s *Store) DeleteExpiredLoginStates(ctx context.Context, before time.Time) (int64, error) {
	res := s.writer(ctx).Where("expires_at < ?", newTime(before)).Delete(&loginStateRow{})
	return res.RowsAffected, wrap("delete expired login states", res.Error)
}
