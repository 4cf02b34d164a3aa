package delivery

import (
	"path/filepath"
	"testing"

	"github.com/ponte-id/ponte/storage"
	"github.com/ponte-id/ponte/storage/storagetest"
)

// The real stores: SQLite always, PostgreSQL when PONTE_TEST_POSTGRES_DSN is set.
func init() {
	backends = append(backends,
		backend{
			name: "sqlite",
			open: func(t *testing.T) storage.Outbox { return outbox(t, storagetest.SQLite(t)) },
			shared: func(t *testing.T, n int) []storage.Outbox {
				path := filepath.Join(t.TempDir(), "ponte.db")
				out := make([]storage.Outbox, n)
				for i := range out {
					out[i] = outbox(t, storagetest.OpenMigrated(t, path))
				}
				return out
			},
		},
		backend{
			name: "postgres",
			open: func(t *testing.T) storage.Outbox { return outbox(t, storagetest.Postgres(t)) },
			shared: func(t *testing.T, n int) []storage.Outbox {
				dsn := storagetest.PostgresDSN(t)
				out := make([]storage.Outbox, n)
				for i := range out {
					out[i] = outbox(t, storagetest.OpenMigrated(t, dsn))
				}
				return out
			},
		},
	)
}

// outbox returns s as a storage.Outbox, skipping while the store lacks one.
func outbox(t *testing.T, s any) storage.Outbox {
	t.Helper()
	ob, ok := s.(storage.Outbox)
	if !ok {
		t.Skip("sqlstore does not implement storage.Outbox yet")
	}
	return ob
}
