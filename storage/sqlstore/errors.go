package sqlstore

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"syscall"
	"time"

	gosqlite "github.com/glebarez/go-sqlite"
	"github.com/jackc/pgx/v5/pgconn"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"

	"github.com/ponte-id/ponte/internal/logmask"
	"github.com/ponte-id/ponte/storage"
)

// SQLite extended result codes for unique violations.
const (
	sqliteConstraintPrimaryKey = 1555
	sqliteConstraintUnique     = 2067
)

// isUnique reports whether err is a unique or primary-key violation. gorm's
// TranslateError turns both drivers' violations into gorm.ErrDuplicatedKey;
// the driver errors are checked too, in case an error bypassed translation.
func isUnique(err error) bool {
	if errors.Is(err, gorm.ErrDuplicatedKey) {
		return true
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code == "23505"
	}
	var liteErr *gosqlite.Error
	if errors.As(err, &liteErr) {
		return liteErr.Code() == sqliteConstraintUnique || liteErr.Code() == sqliteConstraintPrimaryKey
	}
	return false
}

// SQLite primary result codes of a database that stayed locked past the busy
// timeout (the extended codes carry them in their low byte).
const (
	sqliteBusy   = 5
	sqliteLocked = 6
)

// unavailable reports whether err means that the database could not do the
// work now, rather than that the work was wrong: the server cannot be reached
// or dropped the connection (refused, reset, closed, a dial timeout, the pool
// handing out a dead connection, pgx refusing a connection it saw die before
// sending anything), PostgreSQL is shutting down or starting
// (57P01 admin_shutdown, 57P02 crash_shutdown, 57P03 cannot_connect_now),
// any class 08 connection exception, 53300 too_many_connections, or SQLite
// stayed busy or locked past its busy timeout. A caller that went away
// (context.Canceled) is not an outage, nor is a deadline of the caller's
// own, except while dialling.
func unavailable(err error) bool {
	if errors.Is(err, context.Canceled) {
		return false
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch pgErr.Code {
		case "57P01", "57P02", "57P03", "53300":
			return true
		}
		return strings.HasPrefix(pgErr.Code, "08")
	}
	var liteErr *gosqlite.Error
	if errors.As(err, &liteErr) {
		c := liteErr.Code() & 0xff
		return c == sqliteBusy || c == sqliteLocked
	}
	var connectErr *pgconn.ConnectError
	if errors.As(err, &connectErr) {
		return true
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	var netErr net.Error
	return errors.As(err, &netErr) || pgconn.SafeToRetry(err) ||
		errors.Is(err, driver.ErrBadConn) || errors.Is(err, sql.ErrConnDone) ||
		errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

// failed adds the operation to err as context, and storage.ErrUnavailable
// when the database could not be reached (unavailable); it keeps err's chain.
func failed(op string, err error) error {
	switch {
	case err == nil:
		return nil
	case !errors.Is(err, storage.ErrUnavailable) && unavailable(err):
		return fmt.Errorf("sqlstore: %s: %w: %w", op, storage.ErrUnavailable, err)
	default:
		return fmt.Errorf("sqlstore: %s: %w", op, err)
	}
}

// wrap maps err to the storage sentinels and adds the operation as context.
func wrap(op string, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, storage.ErrUnavailable) || unavailable(err):
		return failed(op, err)
	case errors.Is(err, gorm.ErrRecordNotFound), errors.Is(err, sql.ErrNoRows):
		return fmt.Errorf("sqlstore: %s: %w", op, storage.ErrNotFound)
	case isUnique(err):
		return fmt.Errorf("sqlstore: %s: %w", op, storage.ErrConflict)
	default:
		return failed(op, err)
	}
}

// notFound is the error for a write that matched no row.
func notFound(op string) error {
	return fmt.Errorf("sqlstore: %s: %w", op, storage.ErrNotFound)
}

// gormLogger adapts gorm's logger to slog. It never logs query arguments (they
// include hashed secrets and fiscal numbers): ParamsFilter drops them, so that
// logged SQL keeps its placeholders, and since gorm's Scan traces through a
// recorder of its own that inlines every argument, Trace also replaces each
// literal quoted the way the dialect inlines arguments with a placeholder.
type gormLogger struct {
	log  *slog.Logger
	slow time.Duration
	// quote is the character the dialect's Explain quotes arguments with.
	quote byte
}

var (
	_ logger.Interface  = (*gormLogger)(nil)
	_ gorm.ParamsFilter = (*gormLogger)(nil)
)

// newGormLogger returns the logger for dialect: glebarez/sqlite inlines
// arguments in double quotes (identifiers are in backquotes), PostgreSQL in
// single quotes (identifiers are in double quotes).
func newGormLogger(log *slog.Logger, slow time.Duration, dialect string) *gormLogger {
	quote := byte('"')
	if dialect == DialectPostgres {
		quote = '\''
	}
	return &gormLogger{log: log, slow: slow, quote: quote}
}

// LogMode implements logger.Interface; the level is the slog handler's business.
func (l *gormLogger) LogMode(logger.LogLevel) logger.Interface { return l }

// Info implements logger.Interface.
func (l *gormLogger) Info(ctx context.Context, msg string, args ...any) {
	l.log.InfoContext(ctx, logmask.String(fmt.Sprintf(msg, args...)))
}

// Warn implements logger.Interface.
func (l *gormLogger) Warn(ctx context.Context, msg string, args ...any) {
	l.log.WarnContext(ctx, logmask.String(fmt.Sprintf(msg, args...)))
}

// Error implements logger.Interface.
func (l *gormLogger) Error(ctx context.Context, msg string, args ...any) {
	l.log.ErrorContext(ctx, logmask.String(fmt.Sprintf(msg, args...)))
}

// ParamsFilter implements gorm.ParamsFilter: it drops the arguments, so that
// logged SQL keeps its placeholders.
func (l *gormLogger) ParamsFilter(_ context.Context, sql string, _ ...any) (string, []any) {
	return sql, nil
}

// Trace implements logger.Interface: slow queries at Warn, failed ones at
// Debug (the caller gets the error and decides), everything else at Debug.
// The SQL is logged without literals and the error with any codice fiscale
// masked (a driver may quote the offending value).
func (l *gormLogger) Trace(ctx context.Context, begin time.Time, fc func() (string, int64), err error) {
	elapsed := time.Since(begin)
	switch {
	case err != nil && !errors.Is(err, gorm.ErrRecordNotFound):
		if l.log.Enabled(ctx, slog.LevelDebug) {
			sql, rows := fc()
			l.log.DebugContext(ctx, "sql error", "sql", l.redact(sql), "rows", rows, "elapsed", elapsed, "err", logmask.String(err.Error()))
		}
	case l.slow > 0 && elapsed > l.slow:
		sql, rows := fc()
		l.log.WarnContext(ctx, "slow sql", "sql", l.redact(sql), "rows", rows, "elapsed", elapsed)
	case l.log.Enabled(ctx, slog.LevelDebug):
		sql, rows := fc()
		l.log.DebugContext(ctx, "sql", "sql", l.redact(sql), "rows", rows, "elapsed", elapsed)
	}
}

// redact replaces every literal of sql quoted with l.quote (a doubled quote
// inside is part of the literal) by the placeholder ?.
func (l *gormLogger) redact(sql string) string {
	q := l.quote
	if strings.IndexByte(sql, q) < 0 {
		return sql
	}
	var b strings.Builder
	b.Grow(len(sql))
	for i := 0; i < len(sql); i++ {
		if sql[i] != q {
			b.WriteByte(sql[i])
			continue
		}
		j := i + 1
		for ; j < len(sql); j++ {
			if sql[j] == q {
				if j+1 < len(sql) && sql[j+1] == q {
					j++
					continue
				}
				break
			}
		}
		b.WriteByte('?')
		i = j
	}
	return b.String()
}
