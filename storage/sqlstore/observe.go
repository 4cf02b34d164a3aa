package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
)

// Pools returns the store's connection pools by role, for their statistics
// (database/sql DBStats): "main" alone on PostgreSQL, "read" and "write" on
// SQLite, where one connection writes.
func (s *Store) Pools() map[string]*sql.DB {
	if s.rPool == s.wPool {
		return map[string]*sql.DB{"main": s.rPool}
	}
	return map[string]*sql.DB{"read": s.rPool, "write": s.wPool}
}

// SchemaCurrent reports an error unless every migration this build knows is
// applied: a node whose database lags its code is not ready.
func (s *Store) SchemaCurrent(ctx context.Context) error {
	n, err := s.PendingMigrations(ctx)
	if err != nil {
		return err
	}
	if n > 0 {
		return fmt.Errorf("sqlstore: %d migrations pending: run 'ponte migrate'", n)
	}
	return nil
}
