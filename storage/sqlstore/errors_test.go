package sqlstore

import (
	"context"
	"errors"
	"fmt"
	"net"
	"syscall"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/ponte-id/ponte/storage"
)

// TestUnavailableClassification: the errors that mean "the database cannot
// do it now" become storage.ErrUnavailable, the others keep their meaning.
func TestUnavailableClassification(t *testing.T) {
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}
	for _, tc := range []struct {
		name        string
		err         error
		unavailable bool
		sentinel    error
	}{
		{"admin_shutdown", &pgconn.PgError{Code: "57P01"}, true, nil},
		{"crash_shutdown", &pgconn.PgError{Code: "57P02"}, true, nil},
		{"cannot_connect_now", &pgconn.PgError{Code: "57P03"}, true, nil},
		{"connection_failure", &pgconn.PgError{Code: "08006"}, true, nil},
		{"too_many_connections", &pgconn.PgError{Code: "53300"}, true, nil},
		{"connection refused", refused, true, nil},
		{"connect error", &pgconn.ConnectError{Config: &pgconn.Config{}}, true, nil},
		{"reset", fmt.Errorf("read: %w", syscall.ECONNRESET), true, nil},
		{"unique violation", &pgconn.PgError{Code: "23505"}, false, storage.ErrConflict},
		{"syntax error", &pgconn.PgError{Code: "42601"}, false, nil},
		{"caller gone", fmt.Errorf("dial: %w: %w", refused, context.Canceled), false, context.Canceled},
		{"caller's deadline", context.DeadlineExceeded, false, context.DeadlineExceeded},
		{"anything else", errors.New("boom"), false, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := wrap("op", tc.err)
			if got := errors.Is(err, storage.ErrUnavailable); got != tc.unavailable {
				t.Fatalf("wrap(%v) = %v: unavailable %v, want %v", tc.err, err, got, tc.unavailable)
			}
			if tc.sentinel != storage.ErrConflict && !errors.Is(err, tc.err) {
				t.Fatalf("wrap(%v) = %v lost the cause", tc.err, err)
			}
			if tc.sentinel != nil && !errors.Is(err, tc.sentinel) {
				t.Fatalf("wrap(%v) = %v, want %v", tc.err, err, tc.sentinel)
			}
			if again := failed("outer", err); errors.Is(again, storage.ErrUnavailable) != tc.unavailable {
				t.Fatalf("wrapping again changed the verdict: %v", again)
			}
		})
	}
}
