package sqlstore

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// lockedBuffer is a log destination safe for the pool's goroutines.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestLoggedSQLHoldsNoArguments runs statements whose arguments hold a codice
// fiscale with debug logging on: through gorm's query builder, through
// Raw(...).Scan (which gorm traces through a recorder that ignores the
// logger's ParamsFilter and inlines every argument), and failing ones. The
// log must show the statements, never the argument.
func TestLoggedSQLHoldsNoArguments(t *testing.T) {
	dsns := map[string]string{"sqlite": filepath.Join(t.TempDir(), "ponte.db")}
	if dsn := os.Getenv("PONTE_TEST_POSTGRES_DSN"); dsn != "" {
		dsns["postgres"] = dsn
	}
	const cf = "RSSMRA80A01H501U"
	for name, dsn := range dsns {
		t.Run(name, func(t *testing.T) {
			var logs lockedBuffer
			log := slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
			s, err := Open(t.Context(), dsn, Options{Logger: log})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = s.Close() })
			ctx := t.Context()

			var got string
			if err := s.w.WithContext(ctx).Raw(`SELECT ? AS v`, "cf:"+cf).Scan(&got).Error; err != nil || got != "cf:"+cf {
				t.Fatalf("Raw Scan: %q %v", got, err)
			}
			var n int64
			if err := s.db.WithContext(ctx).Table("(SELECT ? AS v) AS t", cf).Where("v = ?", cf).Count(&n).Error; err != nil || n != 1 {
				t.Fatalf("Count: %d %v", n, err)
			}
			var rows []struct{ V string }
			if err := s.w.WithContext(ctx).Raw(`SELECT v FROM (SELECT ? AS v) AS t WHERE v = 'x''y' OR v = ?`, cf, cf).Scan(&rows).Error; err != nil || len(rows) != 1 {
				t.Fatalf("Raw Scan rows: %v %v", rows, err)
			}
			if err := s.w.WithContext(ctx).Raw(`SELECT v FROM no_such_table WHERE v = ?`, cf).Scan(&got).Error; err == nil {
				t.Fatal("a query on a missing table succeeded")
			}
			if err := s.w.WithContext(ctx).Exec(`SELECT * FROM no_such_table WHERE v = ?`, cf).Error; err == nil {
				t.Fatal("a statement on a missing table succeeded")
			}

			out := logs.String()
			if !strings.Contains(out, "SELECT") || !strings.Contains(out, "no_such_table") {
				t.Fatalf("the statements were not logged:\n%s", out)
			}
			if strings.Contains(out, cf[3:15]) {
				t.Fatalf("a query argument was logged:\n%s", out)
			}
			// SQLite inlines arguments in double quotes: a single-quoted
			// literal of the statement itself stays.
			if name == "sqlite" && !strings.Contains(out, `v = 'x''y' OR v = ?`) {
				t.Errorf("the statement's own literal was lost:\n%s", out)
			}
		})
	}
}

// TestOpenFailureLoggedOnce: a database that cannot be reached is an error
// for the caller to report, not also a line in the log (it was said twice).
func TestOpenFailureLoggedOnce(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	_, err := Open(t.Context(), "postgres://postgres@127.0.0.1:1/none?sslmode=disable&connect_timeout=2", Options{Logger: log})
	if err == nil {
		t.Fatal("opened a database on port 1")
	}
	if buf.Len() != 0 {
		t.Fatalf("the failure was also logged:\n%s", buf.String())
	}
}
