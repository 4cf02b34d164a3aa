// Package storagetest holds the conformance suite every storage.Store must
// pass (RunTests), and constructors that give other packages' tests a real,
// fresh, migrated store: SQLite always, PostgreSQL when the environment
// variable PONTE_TEST_POSTGRES_DSN names a server (a postgres:// URL). Each
// PostgreSQL store lives in its own randomly named schema, dropped on cleanup,
// so parallel test runs never collide.
package storagetest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ponte-id/ponte/storage/sqlstore"
)

// EnvPostgresDSN names the environment variable holding the PostgreSQL test
// server's URL; when it is unset, PostgreSQL tests skip.
const EnvPostgresDSN = "PONTE_TEST_POSTGRES_DSN"

// Backend is one database the tests can run against.
type Backend struct {
	// Name is "sqlite" or "postgres", usable as a subtest name.
	Name string
	// Open returns a fresh migrated store, closed on cleanup; it skips the
	// test if the backend is not configured.
	Open func(t testing.TB) *sqlstore.Store
}

// Backends returns SQLite and PostgreSQL, in that order.
func Backends() []Backend {
	return []Backend{
		{Name: "sqlite", Open: SQLite},
		{Name: "postgres", Open: Postgres},
	}
}

// SQLite returns a fresh migrated store on a new SQLite file in t.TempDir(),
// closed on cleanup.
func SQLite(t testing.TB) *sqlstore.Store {
	t.Helper()
	return OpenMigrated(t, filepath.Join(t.TempDir(), "ponte.db"))
}

// Postgres returns a fresh migrated store in a new schema of the server named
// by PONTE_TEST_POSTGRES_DSN, closed and dropped on cleanup. It skips the test
// if the variable is unset, and fails it if the server is unreachable.
func Postgres(t testing.TB) *sqlstore.Store {
	t.Helper()
	return OpenMigrated(t, PostgresDSN(t))
}

// OpenMigrated opens dsn with small pools, migrates it and closes the store
// on cleanup; any failure is fatal.
func OpenMigrated(t testing.TB, dsn string) *sqlstore.Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := sqlstore.Open(ctx, dsn, sqlstore.Options{MaxOpenConns: 8})
	if err != nil {
		t.Fatalf("storagetest: open: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("storagetest: %v", err)
		}
	})
	if _, err := s.Migrate(ctx); err != nil {
		t.Fatalf("storagetest: migrate: %v", err)
	}
	return s
}

// PostgresDSN creates a fresh, empty schema named ponte_test_<random hex> on
// the server named by PONTE_TEST_POSTGRES_DSN and returns a DSN whose
// search_path is that schema, for tests that open several stores (nodes) on
// one database. The schema is dropped on cleanup, so close the stores first
// (register their cleanups after calling PostgresDSN). It skips the test if
// the variable is unset, and fails it if the server is unreachable.
func PostgresDSN(t testing.TB) string {
	t.Helper()
	base := os.Getenv(EnvPostgresDSN)
	if base == "" {
		t.Skipf("storagetest: %s is not set; skipping PostgreSQL", EnvPostgresDSN)
	}
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		t.Fatalf("storagetest: %s must be a postgres:// URL", EnvPostgresDSN)
	}
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatalf("storagetest: %v", err)
	}
	schema := "ponte_test_" + hex.EncodeToString(b[:])

	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		t.Fatalf("storagetest: %s is set but PostgreSQL at %s is unreachable: %v", EnvPostgresDSN, u.Redacted(), err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatalf("storagetest: create schema: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, base)
		if err != nil {
			t.Errorf("storagetest: drop schema %s: %v", schema, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			t.Errorf("storagetest: drop schema %s: %v", schema, err)
		}
	})

	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}
