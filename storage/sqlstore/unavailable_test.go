package sqlstore_test

import (
	"context"
	"database/sql"
	"errors"
	"log/slog"
	"net/url"
	"path/filepath"
	"testing"
	"time"

	"github.com/ponte-id/ponte/internal/netcut"
	"github.com/ponte-id/ponte/storage"
	"github.com/ponte-id/ponte/storage/sqlstore"
	"github.com/ponte-id/ponte/storage/storagetest"
)

// throughProxy returns a fresh PostgreSQL schema's DSN rewritten to reach the
// server through a proxy the test can cut.
func throughProxy(t *testing.T) (string, *netcut.Proxy) {
	t.Helper()
	dsn := storagetest.PostgresDSN(t)
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	p, err := netcut.Start(u.Host)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	u.Host = p.Addr()
	return u.String(), p
}

// TestUnavailablePostgres cuts the connection to PostgreSQL (listener and
// live connections): every kind of call — reads, hot reads and writes,
// transactions, a commit of a transaction begun before the cut, the ping —
// fails with storage.ErrUnavailable, the transaction left nothing behind,
// and after the restore the same store works again.
func TestUnavailablePostgres(t *testing.T) {
	dsn, proxy := throughProxy(t)
	s := storagetest.OpenMigrated(t, dsn)
	ctx := t.Context()
	if err := s.CreateClient(ctx, storage.Client{ID: "rp"}); err != nil {
		t.Fatal(err)
	}
	txCtx, err := s.BeginTx(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.CreateClient(txCtx, storage.Client{ID: "half"}); err != nil {
		t.Fatal(err)
	}
	token := storage.Token{Kind: storage.KindAccessToken, Signature: "sig", RequestID: "req", ClientID: "rp",
		Active: true, RequestedAt: time.Now(), ExpiresAt: time.Now().Add(time.Hour)}

	proxy.Cut()
	cases := []struct {
		name string
		call func(ctx context.Context) error
	}{
		{"ping", s.Ping},
		{"read", func(ctx context.Context) error { _, err := s.GetClient(ctx, "rp"); return err }},
		{"hot write", func(ctx context.Context) error { return s.CreateToken(ctx, token) }},
		{"hot read", func(ctx context.Context) error { _, err := s.GetToken(ctx, storage.KindAccessToken, "sig"); return err }},
		{"write", func(ctx context.Context) error { return s.CreateClient(ctx, storage.Client{ID: "new"}) }},
		{"begin", func(ctx context.Context) error { _, err := s.BeginTx(ctx); return err }},
		{"commit of a transaction begun before", func(context.Context) error { return s.Commit(txCtx) }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call(ctx)
			if !errors.Is(err, storage.ErrUnavailable) {
				t.Fatalf("during the cut: %v, want storage.ErrUnavailable", err)
			}
		})
	}
	if err := proxy.Restore(); err != nil {
		t.Fatal(err)
	}
	if err := s.Ping(ctx); err != nil {
		t.Fatalf("ping after the restore: %v", err)
	}
	if _, err := s.GetClient(ctx, "half"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("the client written in the cut transaction: %v, want storage.ErrNotFound (nothing half written)", err)
	}
	for _, tc := range cases[:5] {
		if err := tc.call(ctx); err != nil {
			t.Errorf("%s after the restore: %v", tc.name, err)
		}
	}
	if _, err := s.GetClient(ctx, "missing"); !errors.Is(err, storage.ErrNotFound) || errors.Is(err, storage.ErrUnavailable) {
		t.Fatalf("a missing client with the database up: %v, want storage.ErrNotFound only", err)
	}
}

// TestUnavailablePostgresShutdown: a backend PostgreSQL ends (57P01
// admin_shutdown, as in a restart; here pg_terminate_backend on the
// transaction's own backend) makes the transaction's next statement and its
// commit fail with storage.ErrUnavailable; the pool then serves again.
func TestUnavailablePostgresShutdown(t *testing.T) {
	s := storagetest.OpenMigrated(t, storagetest.PostgresDSN(t))
	ctx := t.Context()
	txCtx, err := s.BeginTx(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.CreateClient(txCtx, storage.Client{ID: "half"}); err != nil {
		t.Fatal(err)
	}
	var pid int
	if err := s.QueryInTx(txCtx, "SELECT pg_backend_pid()", &pid); err != nil {
		t.Fatal(err)
	}
	var ok bool
	if err := s.QueryRaw(ctx, "SELECT pg_terminate_backend($1)", []any{pid}, &ok); err != nil || !ok {
		t.Fatalf("terminating backend %d: %v, %v", pid, ok, err)
	}
	if _, err := s.GetClient(txCtx, "half"); !errors.Is(err, storage.ErrUnavailable) {
		t.Fatalf("a statement on the terminated backend: %v, want storage.ErrUnavailable", err)
	}
	if err := s.Rollback(txCtx); err != nil && !errors.Is(err, storage.ErrUnavailable) {
		t.Fatalf("rollback: %v", err)
	}
	if _, err := s.GetClient(ctx, "half"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("after: %v, want storage.ErrNotFound (nothing half written, the pool serves)", err)
	}
}

// TestUnavailableSQLiteBusy: a SQLite file another process holds the write
// lock of past the busy timeout makes a write fail with
// storage.ErrUnavailable (busy: a 503 too), and reads go on.
func TestUnavailableSQLiteBusy(t *testing.T) {
	s, conn := lockedSQLite(t)
	if err := s.CreateClient(t.Context(), storage.Client{ID: "rp"}); !errors.Is(err, storage.ErrUnavailable) {
		t.Fatalf("a write while another holds the lock: %v, want storage.ErrUnavailable", err)
	}
	if _, err := s.GetClient(t.Context(), "rp"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("a read meanwhile: %v, want storage.ErrNotFound", err)
	}
	if _, err := conn.ExecContext(t.Context(), "ROLLBACK"); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateClient(t.Context(), storage.Client{ID: "rp"}); err != nil {
		t.Fatalf("the write once the lock is free: %v", err)
	}
}

// TestJanitorOutageWarns: a janitor sweep that meets a database it cannot
// use (SQLite locked by another writer past the busy timeout) logs a
// warning, not an error: an outage is reported once by /readyz and the
// 503s, and the sweep runs again on its own.
func TestJanitorOutageWarns(t *testing.T) {
	s, _ := lockedSQLite(t)
	records := make(chan slog.Record, 1)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	done := make(chan struct{})
	go func() {
		defer close(done)
		storage.RunJanitor(ctx, s, time.Hour, nil, slog.New(recordHandler(records)))
	}()
	select {
	case r := <-records:
		if r.Level != slog.LevelWarn || r.Message != "janitor sweep failed" {
			t.Fatalf("the sweep during the outage logged %s %q, want WARN", r.Level, r.Message)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the sweep logged nothing")
	}
	cancel()
	<-done
	if storage.Severity(errors.New("disk I/O error")) != slog.LevelError {
		t.Fatal("a failure that is no outage is not an error")
	}
}

// recordHandler sends each record to records, dropping those that do not fit.
type recordHandler chan slog.Record

func (h recordHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h recordHandler) Handle(_ context.Context, r slog.Record) error {
	select {
	case h <- r:
	default:
	}
	return nil
}
func (h recordHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h recordHandler) WithGroup(string) slog.Handler      { return h }

// lockedSQLite returns a migrated SQLite store with a busy timeout of 50 ms
// whose file another connection (returned) holds the write lock of, in a
// transaction begun with BEGIN IMMEDIATE.
func lockedSQLite(t *testing.T) (*sqlstore.Store, *sql.Conn) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "ponte.db")
	s, err := sqlstore.Open(t.Context(), path, sqlstore.Options{BusyTimeout: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	if _, err := s.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	other, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = other.Close() })
	conn, err := other.Conn(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	if _, err := conn.ExecContext(t.Context(), "BEGIN IMMEDIATE"); err != nil {
		t.Fatal(err)
	}
	return s, conn
}
