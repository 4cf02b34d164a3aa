package sqlstore_test

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ponte-id/ponte/storage"
	"github.com/ponte-id/ponte/storage/sqlstore"
	"github.com/ponte-id/ponte/storage/storagetest"
)

func TestConformance(t *testing.T) {
	for _, b := range storagetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			storagetest.RunTests(t, func(t *testing.T) storage.Store { return b.Open(t) })
		})
	}
}

// dsns returns, per backend, a function giving a fresh unmigrated database.
func dsns() map[string]func(t *testing.T) string {
	return map[string]func(t *testing.T) string{
		"sqlite":   func(t *testing.T) string { return filepath.Join(t.TempDir(), "sub", "ponte.db") },
		"postgres": func(t *testing.T) string { return storagetest.PostgresDSN(t) },
	}
}

func open(t *testing.T, dsn string) *sqlstore.Store {
	t.Helper()
	s, err := sqlstore.Open(t.Context(), dsn, sqlstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func TestMigrate(t *testing.T) {
	for name, dsn := range dsns() {
		t.Run(name, func(t *testing.T) {
			ctx := t.Context()
			s := open(t, dsn(t))
			if s.Dialect() != name {
				t.Fatalf("Dialect = %q, want %q", s.Dialect(), name)
			}
			pending, err := s.PendingMigrations(ctx)
			if err != nil || pending == 0 {
				t.Fatalf("PendingMigrations before Migrate = %d, %v", pending, err)
			}
			// Open does not migrate.
			if _, err := s.GetClient(ctx, "x"); err == nil || errors.Is(err, storage.ErrNotFound) {
				t.Fatalf("GetClient on an unmigrated database: %v", err)
			}
			applied, err := s.Migrate(ctx)
			if err != nil || applied != pending {
				t.Fatalf("Migrate = %d, %v; want %d", applied, err, pending)
			}
			if n, err := s.PendingMigrations(ctx); err != nil || n != 0 {
				t.Fatalf("PendingMigrations after Migrate = %d, %v", n, err)
			}
			if n, err := s.Migrate(ctx); err != nil || n != 0 {
				t.Fatalf("second Migrate = %d, %v", n, err)
			}
			if _, err := s.GetClient(ctx, "x"); !errors.Is(err, storage.ErrNotFound) {
				t.Fatalf("GetClient after Migrate: %v", err)
			}
		})
	}
}

// TestMigrateConcurrent migrates one database from several stores at once, as
// several nodes starting together would.
func TestMigrateConcurrent(t *testing.T) {
	for name, dsn := range dsns() {
		t.Run(name, func(t *testing.T) {
			d := dsn(t)
			const nodes = 4
			stores := make([]*sqlstore.Store, nodes)
			for i := range stores {
				stores[i] = open(t, d)
			}
			var (
				wg      sync.WaitGroup
				mu      sync.Mutex
				applied int
				errs    []error
			)
			for _, s := range stores {
				wg.Go(func() {
					n, err := s.Migrate(t.Context())
					mu.Lock()
					defer mu.Unlock()
					applied += n
					if err != nil {
						errs = append(errs, err)
					}
				})
			}
			wg.Wait()
			if len(errs) > 0 {
				t.Fatalf("concurrent Migrate: %v", errs)
			}
			pending, err := stores[0].PendingMigrations(t.Context())
			if err != nil || pending != 0 {
				t.Fatalf("PendingMigrations = %d, %v", pending, err)
			}
			fresh := open(t, dsns()[name](t))
			want, err := fresh.PendingMigrations(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			if applied != want {
				t.Fatalf("nodes applied %d migrations in total, want %d (each exactly once)", applied, want)
			}
		})
	}
}

// TestSharedDatabase runs two stores (two nodes) on one database: a code
// redeemed on one cannot be redeemed on the other.
func TestSharedDatabase(t *testing.T) {
	for name, dsn := range dsns() {
		t.Run(name, func(t *testing.T) {
			ctx := t.Context()
			d := dsn(t)
			a, b := storagetest.OpenMigrated(t, d), storagetest.OpenMigrated(t, d)
			tok := storage.Token{Kind: storage.KindAuthorizeCode, Signature: "code", Active: true, ExpiresAt: time.Now().Add(time.Minute)}
			if err := a.CreateToken(ctx, tok); err != nil {
				t.Fatal(err)
			}
			var wg sync.WaitGroup
			errs := make([]error, 2*8)
			for i := range errs {
				s := a
				if i%2 == 1 {
					s = b
				}
				wg.Go(func() { errs[i] = s.DeactivateToken(ctx, storage.KindAuthorizeCode, "code") })
			}
			wg.Wait()
			ok := 0
			for _, err := range errs {
				switch {
				case err == nil:
					ok++
				case !errors.Is(err, storage.ErrNotFound):
					t.Fatal(err)
				}
			}
			if ok != 1 {
				t.Fatalf("%d redemptions succeeded across two nodes, want 1", ok)
			}
		})
	}
}

// TestClientsVersionShared: a client changed through one store (a node, or
// `ponte client`) moves the version every other store on the database reads
// within DefaultClientsVersionTTL (a second more is allowed for a slow
// machine), and at once for the store that changed it.
func TestClientsVersionShared(t *testing.T) {
	for name, dsn := range dsns() {
		t.Run(name, func(t *testing.T) {
			ctx := t.Context()
			d := dsn(t)
			a, b := storagetest.OpenMigrated(t, d), storagetest.OpenMigrated(t, d)
			before, err := b.ClientsVersion(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := a.ClientsVersion(ctx); err != nil { // a keeps it too
				t.Fatal(err)
			}
			if err := a.CreateClient(ctx, storage.Client{ID: "rp1"}); err != nil {
				t.Fatal(err)
			}
			changed := time.Now()
			if v, err := a.ClientsVersion(ctx); err != nil || v == before {
				t.Fatalf("the store that changed a client reads %d, %v; want it moved from %d at once", v, err, before)
			}
			for {
				after, err := b.ClientsVersion(ctx)
				if err != nil {
					t.Fatal(err)
				}
				if after != before {
					break
				}
				if time.Since(changed) > sqlstore.DefaultClientsVersionTTL+time.Second {
					t.Fatalf("the other store still reads %d %s after a client was created", after, time.Since(changed))
				}
				time.Sleep(10 * time.Millisecond)
			}
		})
	}
}

func TestOpenRejects(t *testing.T) {
	for _, dsn := range []string{"", ":memory:", "file:x.db?mode=memory", filepath.Join(t.TempDir(), "a?b")} {
		if s, err := sqlstore.Open(t.Context(), dsn, sqlstore.Options{}); err == nil {
			_ = s.Close()
			t.Errorf("Open(%q) succeeded", dsn)
		}
	}
}

// TestSQLiteFile checks the SQLite file itself: private, WAL, and times stored
// as integer microseconds.
func TestSQLiteFile(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "ponte.db")
	s := storagetest.OpenMigrated(t, path)
	exp := time.Date(2030, 1, 2, 3, 4, 5, 678901234, time.UTC)
	if err := s.CreateToken(ctx, storage.Token{Kind: storage.KindAccessToken, Signature: "s", Active: true, ExpiresAt: exp}); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("database file mode = %v, want 0600", fi.Mode().Perm())
	}

	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var mode string
	if err := db.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil || mode != "wal" {
		t.Errorf("journal_mode = %q, %v; want wal", mode, err)
	}
	var typ string
	var micros int64
	if err := db.QueryRowContext(ctx, "SELECT typeof(expires_at), expires_at FROM tokens").Scan(&typ, &micros); err != nil {
		t.Fatal(err)
	}
	if typ != "integer" || micros != exp.UnixMicro() {
		t.Errorf("expires_at stored as %s %d, want integer %d", typ, micros, exp.UnixMicro())
	}
	var requested sql.NullInt64
	if err := db.QueryRowContext(ctx, "SELECT requested_at FROM tokens").Scan(&requested); err != nil || requested.Valid {
		t.Errorf("zero RequestedAt stored as %v, %v; want NULL", requested, err)
	}
}

// TestSQLiteDurability: every commit is synced before it returns
// (synchronous FULL in WAL mode: a redeemed code never comes back after a
// crash or a power cut), and reads go through a memory map.
func TestSQLiteDurability(t *testing.T) {
	ctx := t.Context()
	s := storagetest.OpenMigrated(t, filepath.Join(t.TempDir(), "ponte.db"))
	for _, c := range []struct {
		pragma string
		writer bool
		want   string
	}{
		{"journal_mode", true, "wal"},
		{"synchronous", true, "2"}, // FULL
		{"synchronous", false, "2"},
		{"mmap_size", false, "1073741824"},
	} {
		if got, err := s.Pragma(ctx, c.pragma, c.writer); err != nil || got != c.want {
			t.Errorf("%s on the writer (%t) = %q, %v; want %q", c.pragma, c.writer, got, err, c.want)
		}
	}
}

// TestSQLiteReadersCannotWrite: on SQLite, only the writer connection writes;
// a write sent to the readers fails instead of contending for the lock.
func TestSQLiteReadersCannotWrite(t *testing.T) {
	s := storagetest.OpenMigrated(t, filepath.Join(t.TempDir(), "ponte.db"))
	if err := s.ExecOnReader(t.Context(), "DELETE FROM sessions"); err == nil {
		t.Fatal("a reader connection wrote")
	}
	if err := s.ExecRaw(t.Context(), "DELETE FROM sessions"); err != nil {
		t.Fatalf("the writer connection: %v", err)
	}
}

// TestContextCancel checks that a canceled context aborts a waiting call
// rather than leaving it blocked.
func TestContextCancel(t *testing.T) {
	for _, b := range storagetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			s := b.Open(t)
			ctx, cancel := context.WithTimeout(t.Context(), time.Millisecond)
			defer cancel()
			<-ctx.Done()
			if err := s.Ping(ctx); err == nil {
				t.Fatal("Ping with an expired context succeeded")
			}
		})
	}
}

// TestLogsNoArguments checks that logged SQL keeps its placeholders: query
// arguments include fiscal numbers and hashed secrets.
func TestLogsNoArguments(t *testing.T) {
	for _, slow := range []time.Duration{-1, time.Nanosecond} {
		var buf bytes.Buffer
		log := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
		path := filepath.Join(t.TempDir(), "ponte.db")
		s, err := sqlstore.Open(t.Context(), path, sqlstore.Options{Logger: log, SlowQuery: slow})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Close() })
		if _, err := s.Migrate(t.Context()); err != nil {
			t.Fatal(err)
		}
		const secret = "RSSMRA80A31H501U"
		if _, err := s.LinkSubject(t.Context(), storage.Subject{ID: "sub", FiscalNumber: secret}); err != nil {
			t.Fatal(err)
		}
		if err := s.CreateClient(t.Context(), storage.Client{ID: secret}); err != nil {
			t.Fatal(err)
		}
		_ = s.CreateClient(t.Context(), storage.Client{ID: secret}) // a logged error
		out := buf.String()
		if !strings.Contains(out, "INSERT INTO") {
			t.Fatalf("no SQL logged (slow=%v):\n%s", slow, out)
		}
		if strings.Contains(out, secret) {
			t.Fatalf("query arguments logged (slow=%v):\n%s", slow, out)
		}
	}
}

// TestPostgresSchema checks that PostgresDSN's search_path reaches the
// server through pgx: the tables land in the test's own schema.
func TestPostgresSchema(t *testing.T) {
	dsn := storagetest.PostgresDSN(t)
	storagetest.OpenMigrated(t, dsn)
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	schema := u.Query().Get("search_path")
	conn, err := pgx.Connect(t.Context(), os.Getenv(storagetest.EnvPostgresDSN))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(t.Context())
	var n int
	err = conn.QueryRow(t.Context(),
		`SELECT count(*) FROM information_schema.tables WHERE table_schema = $1 AND table_name IN ('tokens', 'schema_migrations')`,
		schema).Scan(&n)
	if err != nil || n != 2 {
		t.Fatalf("tables in schema %q: %d, %v; want 2", schema, n, err)
	}
}
