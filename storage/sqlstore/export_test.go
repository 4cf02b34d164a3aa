package sqlstore

import "context"

// ExecRaw runs a statement through the pool that writes, outside the storage
// contract, for tests that check what the database itself refuses.
func (s *Store) ExecRaw(ctx context.Context, sql string) error {
	return s.w.WithContext(ctx).Exec(sql).Error
}

// ExecOnReader runs a statement through the pool that reads.
func (s *Store) ExecOnReader(ctx context.Context, sql string) error {
	return s.db.WithContext(ctx).Exec(sql).Error
}
