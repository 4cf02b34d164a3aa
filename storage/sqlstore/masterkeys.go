package sqlstore

import (
	"context"
	"errors"
	"fmt"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/ponte-id/ponte/storage"
)

var _ storage.MasterKeys = (*Store)(nil)

// dataKeyRow is the one row naming the database's data key.
type dataKeyRow struct {
	ID      int    `gorm:"column:id;primaryKey;autoIncrement:false"`
	KeyID   string `gorm:"column:key_id"`
	Created dbTime `gorm:"column:created_at"`
}

func (dataKeyRow) TableName() string { return "data_key" }

type dataKeyWrapRow struct {
	Fingerprint string `gorm:"column:fingerprint;primaryKey"`
	KeyID       string `gorm:"column:key_id"`
	Wrapped     []byte `gorm:"column:wrapped"`
	Created     dbTime `gorm:"column:created_at"`
}

func (dataKeyWrapRow) TableName() string { return "data_key_wraps" }

// ListDataKeyWraps returns every wrapping, oldest first.
func (s *Store) ListDataKeyWraps(ctx context.Context) ([]storage.DataKeyWrap, error) {
	var rows []dataKeyWrapRow
	if err := s.conn(ctx).Order("created_at").Order("fingerprint").Find(&rows).Error; err != nil {
		return nil, wrap("list data key wrappings", err)
	}
	out := make([]storage.DataKeyWrap, len(rows))
	for i, r := range rows {
		out[i] = storage.DataKeyWrap{Fingerprint: r.Fingerprint, DataKeyID: r.KeyID, Wrapped: blob(r.Wrapped), CreatedAt: r.Created.t}
	}
	return out, nil
}

// AddDataKeyWrap stores w (a zero CreatedAt is set to now). The first
// wrapping also names the data key in the single row of data_key: an insert
// that does nothing if the row exists (on PostgreSQL it waits for a
// concurrent insert to commit), then a read of the row that won.
func (s *Store) AddDataKeyWrap(ctx context.Context, w storage.DataKeyWrap) error {
	if w.Fingerprint == "" || w.DataKeyID == "" || len(w.Wrapped) == 0 {
		return errors.New("sqlstore: add data key wrapping: empty fingerprint, data key ID or wrapped key")
	}
	if w.CreatedAt.IsZero() {
		w.CreatedAt = s.now()
	}
	return s.atomic(ctx, func(tx *gorm.DB) error {
		first := dataKeyRow{ID: 1, KeyID: w.DataKeyID, Created: newTime(w.CreatedAt)}
		if err := tx.Clauses(clause.OnConflict{DoNothing: true}).Create(&first).Error; err != nil {
			return wrap("add data key wrapping", err)
		}
		var held dataKeyRow
		if err := tx.Where("id = 1").Take(&held).Error; err != nil {
			return wrap("add data key wrapping", err)
		}
		if held.KeyID != w.DataKeyID {
			return fmt.Errorf("sqlstore: add data key wrapping: the database holds data key %s, not %s: %w", held.KeyID, w.DataKeyID, storage.ErrConflict)
		}
		row := dataKeyWrapRow{Fingerprint: w.Fingerprint, KeyID: w.DataKeyID, Wrapped: w.Wrapped, Created: newTime(w.CreatedAt)}
		res := tx.Clauses(clause.OnConflict{DoNothing: true}).Create(&row)
		if res.Error != nil {
			return wrap("add data key wrapping", res.Error)
		}
		if res.RowsAffected == 0 {
			return fmt.Errorf("sqlstore: add data key wrapping: master key %s already wraps it: %w", w.Fingerprint, storage.ErrConflict)
		}
		return nil
	})
}

// DeleteDataKeyWrapsExcept deletes every wrapping but keep's, in one
// transaction that first checks keep's is there.
func (s *Store) DeleteDataKeyWrapsExcept(ctx context.Context, keep string) (int64, error) {
	var n int64
	err := s.atomic(ctx, func(tx *gorm.DB) error {
		var kept int64
		if err := tx.Model(&dataKeyWrapRow{}).Where("fingerprint = ?", keep).Count(&kept).Error; err != nil {
			return wrap("delete data key wrappings", err)
		}
		if kept == 0 {
			return notFound("delete data key wrappings: no wrapping under master key " + keep)
		}
		res := tx.Where("fingerprint <> ?", keep).Delete(&dataKeyWrapRow{})
		n = res.RowsAffected
		return wrap("delete data key wrappings", res.Error)
	})
	if err != nil {
		return 0, err
	}
	return n, nil
}
