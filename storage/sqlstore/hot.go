package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/ponte-id/ponte/internal/logmask"
)

// The statements of a single-sign-on flow's hot path (tokens, sessions,
// subjects, the clients' version) go to database/sql directly, with SQL
// written once per dialect at Open: gorm builds every statement anew through
// its callbacks and reflection, about a tenth of the server's CPU per flow
// (pprof, ssobench). They join the transaction a context carries like every
// other call, map errors the same way (wrap), and log slow and failed
// statements as the gorm logger does, without arguments.

// sqlPool is what a hot statement runs on: *sql.DB, or the *sql.Tx of a
// transaction that gorm began.
type sqlPool interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// hotSQL holds the hot statements in the store's dialect.
type hotSQL struct {
	getToken, createToken, deactivateToken, deleteToken string
	getSession, getSubject, clientsVersion              string
	addSessionClient                                    string
}

func newHotSQL(dialect string) hotSQL {
	q := func(s string) string { return rebind(dialect, s) }
	return hotSQL{
		getToken: q(`SELECT kind, signature, request_id, client_id, subject, active, requested_at, expires_at, data
FROM tokens WHERE kind = ? AND signature = ?`),
		createToken: q(`INSERT INTO tokens (kind, signature, request_id, client_id, subject, active, requested_at, expires_at, data)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`),
		deactivateToken: q(`UPDATE tokens SET active = ? WHERE kind = ? AND signature = ? AND active = ?`),
		deleteToken:     q(`DELETE FROM tokens WHERE kind = ? AND signature = ?`),
		getSession: q(`SELECT id, subject, auth_time, method, level, amr, method_data, method_key, created_at, expires_at
FROM sessions WHERE id = ?`),
		getSubject: q(`SELECT id, fiscal_number, given_name, family_name, birthdate, gender, email, phone_number, claims_rank, created_at, updated_at
FROM subjects WHERE id = ?`),
		clientsVersion: `SELECT version FROM client_version WHERE id = 1`,
		// A client's every authorization in a session names it again: the
		// record is rewritten only when it changes (no page written, no WAL
		// frame, for the same session, sub, sid and expiry).
		addSessionClient: q(`INSERT INTO session_clients (session_id, client_id, subject, sid, created_at, expires_at)
VALUES (?, ?, ?, ?, ?, ?)
ON CONFLICT (session_id, client_id) DO UPDATE SET subject = excluded.subject, sid = excluded.sid, expires_at = excluded.expires_at
WHERE session_clients.subject <> excluded.subject OR session_clients.sid <> excluded.sid
OR session_clients.expires_at ` + distinct(dialect) + ` excluded.expires_at`),
	}
}

// distinct is the null-safe "differs" of the dialect.
func distinct(dialect string) string {
	if dialect == DialectPostgres {
		return "IS DISTINCT FROM"
	}
	return "IS NOT"
}

// rebind turns the ? placeholders of query into PostgreSQL's $1, $2 ...
// (the hot statements have no ? anywhere else).
func rebind(dialect, query string) string {
	if dialect != DialectPostgres {
		return query
	}
	var b strings.Builder
	n := 0
	for _, r := range query {
		if r == '?' {
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

// hotPool returns the transaction carried by ctx, or the pool that writes
// (write) or reads, and the context to run the statement with.
func (s *Store) hotPool(ctx context.Context, write bool) (sqlPool, context.Context) {
	if st := s.txFrom(ctx); st != nil {
		if p, ok := st.db.Statement.ConnPool.(sqlPool); ok {
			return p, st.stmtCtx(ctx)
		}
	}
	if write {
		return s.wPool, ctx
	}
	return s.rPool, ctx
}

// abandoned reports whether ctx carries a transaction that a group commit
// rolled back as abandoned (group.go): it runs nothing more.
func (s *Store) abandoned(ctx context.Context) bool {
	st := s.txFrom(ctx)
	return st != nil && st.m != nil && st.m.isEnded()
}

// timeArg is t as the dialect stores it (see dbTime).
func (s *Store) timeArg(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	if s.dialect == DialectPostgres {
		return t.UTC().Truncate(time.Microsecond)
	}
	return t.UnixMicro()
}

// traced logs a hot statement that was slow (Warn) or failed (Debug), as the
// gorm logger does: the SQL with its placeholders, never the arguments.
func (s *Store) traced(ctx context.Context, query string, begin time.Time, err error) {
	elapsed := time.Since(begin)
	switch {
	case err != nil && !errors.Is(err, sql.ErrNoRows):
		if s.log.Enabled(ctx, slog.LevelDebug) {
			s.log.DebugContext(ctx, "sql error", "sql", query, "elapsed", elapsed, "err", logmask.String(err.Error()))
		}
	case s.slow > 0 && elapsed > s.slow:
		s.log.WarnContext(ctx, "slow sql", "sql", query, "elapsed", elapsed)
	case s.log.Enabled(ctx, slog.LevelDebug):
		s.log.DebugContext(ctx, "sql", "sql", query, "elapsed", elapsed)
	}
}

// hotExec runs a hot write and returns the rows it affected.
func (s *Store) hotExec(ctx context.Context, query string, args ...any) (int64, error) {
	begin := time.Now()
	if s.abandoned(ctx) {
		return 0, ErrTxDone
	}
	pool, sctx := s.hotPool(ctx, true)
	res, err := pool.ExecContext(sctx, query, args...)
	var n int64
	if err == nil {
		n, err = res.RowsAffected()
	}
	s.traced(ctx, query, begin, err)
	return n, err
}

// hotRow runs a hot read of one row into dest; sql.ErrNoRows when none.
func (s *Store) hotRow(ctx context.Context, query string, args []any, dest ...any) error {
	begin := time.Now()
	if s.abandoned(ctx) {
		return ErrTxDone
	}
	pool, sctx := s.hotPool(ctx, false)
	err := pool.QueryRowContext(sctx, query, args...).Scan(dest...)
	s.traced(ctx, query, begin, err)
	return err
}
