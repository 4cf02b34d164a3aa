package sqlstore

import "context"

// ExecRaw runs a statement outside the storage contract, for tests that check
// what the database itself refuses.
func (s *Store) ExecRaw(ctx context.Context, sql string) error {
	return s.db.WithContext(ctx).Exec(sql).Error
}
