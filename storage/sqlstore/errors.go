package sqlstore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	gosqlite "github.com/glebarez/go-sqlite"
	"github.com/jackc/pgx/v5/pgconn"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"

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

// wrap maps err to the storage sentinels and adds the operation as context.
func wrap(op string, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, gorm.ErrRecordNotFound):
		return fmt.Errorf("sqlstore: %s: %w", op, storage.ErrNotFound)
	case isUnique(err):
		return fmt.Errorf("sqlstore: %s: %w", op, storage.ErrConflict)
	default:
		return fmt.Errorf("sqlstore: %s: %w", op, err)
	}
}

// notFound is the error for a write that matched no row.
func notFound(op string) error {
	return fmt.Errorf("sqlstore: %s: %w", op, storage.ErrNotFound)
}

// gormLogger adapts gorm's logger to slog. It never logs query arguments (they
// include hashed secrets and fiscal numbers): see ParamsFilter.
type gormLogger struct {
	log  *slog.Logger
	slow time.Duration
}

var (
	_ logger.Interface  = (*gormLogger)(nil)
	_ gorm.ParamsFilter = (*gormLogger)(nil)
)

// LogMode implements logger.Interface; the level is the slog handler's business.
func (l *gormLogger) LogMode(logger.LogLevel) logger.Interface { return l }

// Info implements logger.Interface.
func (l *gormLogger) Info(ctx context.Context, msg string, args ...any) {
	l.log.InfoContext(ctx, fmt.Sprintf(msg, args...))
}

// Warn implements logger.Interface.
func (l *gormLogger) Warn(ctx context.Context, msg string, args ...any) {
	l.log.WarnContext(ctx, fmt.Sprintf(msg, args...))
}

// Error implements logger.Interface.
func (l *gormLogger) Error(ctx context.Context, msg string, args ...any) {
	l.log.ErrorContext(ctx, fmt.Sprintf(msg, args...))
}

// ParamsFilter implements gorm.ParamsFilter: it drops the arguments, so that
// logged SQL keeps its placeholders.
func (l *gormLogger) ParamsFilter(_ context.Context, sql string, _ ...any) (string, []any) {
	return sql, nil
}

// Trace implements logger.Interface: slow queries at Warn, failed ones at
// Debug (the caller gets the error and decides), everything else at Debug.
func (l *gormLogger) Trace(ctx context.Context, begin time.Time, fc func() (string, int64), err error) {
	elapsed := time.Since(begin)
	switch {
	case err != nil && !errors.Is(err, gorm.ErrRecordNotFound):
		if l.log.Enabled(ctx, slog.LevelDebug) {
			sql, rows := fc()
			l.log.DebugContext(ctx, "sql error", "sql", sql, "rows", rows, "elapsed", elapsed, "err", err)
		}
	case l.slow > 0 && elapsed > l.slow:
		sql, rows := fc()
		l.log.WarnContext(ctx, "slow sql", "sql", sql, "rows", rows, "elapsed", elapsed)
	case l.log.Enabled(ctx, slog.LevelDebug):
		sql, rows := fc()
		l.log.DebugContext(ctx, "sql", "sql", sql, "rows", rows, "elapsed", elapsed)
	}
}
