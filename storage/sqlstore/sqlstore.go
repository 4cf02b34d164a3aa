// Package sqlstore is the gorm implementation of storage.Store, on SQLite (the
// pure-Go glebarez/modernc driver, no cgo) or PostgreSQL (pgx).
//
// It owns the SQL schema and its versioned migrations (embedded .sql files per
// dialect, recorded in a schema_migrations table), the mapping between the plain
// records of package storage and table rows, and the translation of driver errors
// into storage.ErrNotFound and storage.ErrConflict.
//
// Representation, identical in meaning on both dialects:
//   - times are stored in UTC at microsecond precision: TIMESTAMPTZ on
//     PostgreSQL, INTEGER unix microseconds on SQLite; the zero time.Time is
//     stored as NULL, so a record with a zero ExpiresAt never expires;
//   - []string fields are JSON text; an empty list reads back as nil;
//   - durations are INTEGER nanoseconds;
//   - an empty []byte reads back as nil.
//
// SQLite runs in WAL mode with a busy timeout and foreign keys on, and every
// transaction is BEGIN IMMEDIATE (the driver's _txlock=immediate), so a
// transaction takes the write lock up front and concurrent writers queue on the
// busy timeout instead of failing with "database is locked".
package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/glebarez/sqlite"
	"gorm.io/driver/postgres"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"

	"github.com/ponte-id/ponte/storage"
)

// Dialect names, as returned by (*Store).Dialect.
const (
	DialectSQLite   = "sqlite"
	DialectPostgres = "postgres"
)

// Options tunes Open. The zero value is a sensible default.
type Options struct {
	// Logger receives slow queries and database errors (never query arguments);
	// nil discards.
	Logger *slog.Logger
	// SlowQuery is the duration above which a query is logged at Warn level;
	// zero means 200ms, negative disables.
	SlowQuery time.Duration
	// MaxOpenConns caps the connection pool; zero means 8 for SQLite and 16 for PostgreSQL.
	MaxOpenConns int
	// MaxIdleConns caps the idle connections kept; zero means MaxOpenConns.
	MaxIdleConns int
	// ConnMaxLifetime closes connections older than this; zero means 30 minutes.
	ConnMaxLifetime time.Duration
	// BusyTimeout is how long a SQLite connection waits for a lock before
	// failing; zero means 5s. Ignored by PostgreSQL.
	BusyTimeout time.Duration
	// Now is the clock used for default timestamps and JTI expiry; nil means time.Now.
	Now func() time.Time
	// ClientsVersionTTL is how long ClientsVersion may answer from memory:
	// the staleness bound for a client changed through another store (another
	// node, ponte client). A change made through this store is seen at once.
	// Zero means DefaultClientsVersionTTL; negative reads the database every time.
	ClientsVersionTTL time.Duration
}

// DefaultClientsVersionTTL is the default Options.ClientsVersionTTL.
const DefaultClientsVersionTTL = 100 * time.Millisecond

// Store is a storage.Store backed by SQLite or PostgreSQL through gorm. It is
// safe for concurrent use; a context returned by BeginTx must not be shared
// between goroutines, and every store call made while a transaction is open
// must carry its context (on SQLite, a write outside it waits for it to end).
type Store struct {
	// db reads. On SQLite its connections are read-only, and w is the one
	// connection that writes: SQLite allows one writer at a time, and writers
	// queued on a Go pool take turns at once, where writers contending for
	// SQLite's lock sleep in its busy handler (1, 2, 5, 10 ms ...). On
	// PostgreSQL both are the same pool.
	db, w *gorm.DB
	pools []*sql.DB
	// rPool and wPool are db's and w's connection pools, and hot the
	// statements run on them without gorm (hot.go).
	rPool, wPool *sql.DB
	hot          hotSQL
	slow         time.Duration
	versions     versionCache
	// group shares SQLite's commits among concurrent transactions
	// (group.go); nil on PostgreSQL, which groups its own.
	group     *groupCommit
	dialect   string
	log       *slog.Logger
	now       func() time.Time
	closeOnce sync.Once
	closeErr  error
}

var _ storage.Store = (*Store)(nil)

// Open connects to the database named by dsn: a dsn starting with postgres://
// or postgresql:// selects PostgreSQL; anything else is the path of a SQLite
// file, created (mode 0600, with its directory) if missing; ":memory:" and
// "file:" URIs are refused, since the pool needs one shared file with the
// parameters Open sets. Open pings the database but does not migrate: call
// Migrate.
func Open(ctx context.Context, dsn string, opts Options) (*Store, error) {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	slow := opts.SlowQuery
	if slow == 0 {
		slow = 200 * time.Millisecond
	}
	cfg := &gorm.Config{
		TranslateError:         true,
		SkipDefaultTransaction: true,
		NowFunc:                func() time.Time { return now().UTC() },
	}

	var (
		dialector, writer gorm.Dialector
		dialect           string
		maxOpen           = opts.MaxOpenConns
		err               error
	)
	if isPostgres(dsn) {
		dialect = DialectPostgres
		dialector = postgres.New(postgres.Config{DSN: dsn})
		if maxOpen <= 0 {
			maxOpen = 16
		}
	} else {
		dialect = DialectSQLite
		full, err := sqliteDSN(dsn, opts.BusyTimeout)
		if err != nil {
			return nil, err
		}
		// A write that reaches a reader fails loudly instead of contending.
		dialector = sqlite.Open(full + "&" + url.Values{"_pragma": {"query_only(1)"}}.Encode())
		writer = sqlite.Open(full)
		if maxOpen <= 0 {
			maxOpen = 8
		}
	}

	cfg.Logger = newGormLogger(log, slow, dialect)
	s := &Store{dialect: dialect, log: log, now: now, slow: slow, hot: newHotSQL(dialect)}
	s.versions.ttl = opts.ClientsVersionTTL
	if s.versions.ttl == 0 {
		s.versions.ttl = DefaultClientsVersionTTL
	}
	if s.db, err = s.open(dialector, cfg, maxOpen, opts); err != nil {
		return nil, err
	}
	s.w, s.rPool, s.wPool = s.db, s.pools[0], s.pools[0]
	if writer != nil {
		if s.w, err = s.open(writer, cfg, 1, opts); err != nil {
			_ = s.Close()
			return nil, err
		}
		s.wPool = s.pools[1]
		s.group = newGroupCommit(s.w)
	}
	if err := s.Ping(ctx); err != nil {
		_ = s.Close()
		return nil, err
	}
	return s, nil
}

// open opens one connection pool of the store. gorm would log a failure to
// connect before returning it, and the caller reports it: it opens quiet and
// logs from then on.
func (s *Store) open(dialector gorm.Dialector, cfg *gorm.Config, maxOpen int, opts Options) (*gorm.DB, error) {
	quiet := *cfg
	quiet.Logger = logger.Discard
	db, err := gorm.Open(dialector, &quiet)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: open %s: %w", s.dialect, err)
	}
	db.Logger = cfg.Logger
	sqlDB, err := db.DB()
	if err != nil {
		return nil, fmt.Errorf("sqlstore: open %s: %w", s.dialect, err)
	}
	maxIdle := opts.MaxIdleConns
	if maxIdle <= 0 || maxIdle > maxOpen {
		maxIdle = maxOpen
	}
	lifetime := opts.ConnMaxLifetime
	if lifetime <= 0 {
		lifetime = 30 * time.Minute
	}
	sqlDB.SetMaxOpenConns(maxOpen)
	sqlDB.SetMaxIdleConns(maxIdle)
	sqlDB.SetConnMaxLifetime(lifetime)
	s.pools = append(s.pools, sqlDB)
	return db, nil
}

func isPostgres(dsn string) bool {
	return strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://")
}

// sqliteDSN turns a file path into a glebarez/go-sqlite DSN: WAL journal, busy
// timeout, foreign keys, and BEGIN IMMEDIATE for every transaction.
func sqliteDSN(path string, busy time.Duration) (string, error) {
	switch {
	case path == "":
		return "", errors.New("sqlstore: empty SQLite path")
	case path == ":memory:" || strings.HasPrefix(path, "file:"):
		// An in-memory database is per connection, and URI names would bypass
		// the parameters below: both would break the pool's guarantees.
		return "", fmt.Errorf("sqlstore: SQLite dsn %q: want a file path", path)
	case strings.ContainsRune(path, '?'):
		return "", fmt.Errorf("sqlstore: SQLite path %q: must not contain '?'", path)
	}
	if busy <= 0 {
		busy = 5 * time.Second
	}
	if dir := filepath.Dir(path); dir != "" {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return "", fmt.Errorf("sqlstore: create SQLite directory: %w", err)
		}
	}
	// Create the file ourselves so that it is private: it holds hashed client
	// secrets and sealed signing keys. SQLite gives -wal and -shm the same mode.
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return "", fmt.Errorf("sqlstore: create SQLite file: %w", err)
	}
	if err := f.Close(); err != nil {
		return "", fmt.Errorf("sqlstore: create SQLite file: %w", err)
	}
	q := url.Values{}
	// Order matters: the driver runs the pragmas in this order, and the busy
	// timeout must be in force before switching the journal to WAL.
	q.Add("_pragma", "busy_timeout("+strconv.FormatInt(busy.Milliseconds(), 10)+")")
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "foreign_keys(1)")
	// Reads map the file instead of copying each page in with a read(2): as
	// the tables grow past the page cache (2 MiB a connection), a flow's reads
	// would otherwise go to the kernel, and throughput fall with the size of
	// the file. Writes still go through the WAL and its fsync: durability is
	// unchanged (synchronous stays FULL, SQLite's default).
	q.Add("_pragma", "mmap_size("+strconv.FormatInt(mmapSize, 10)+")")
	// Note: _time_format must not be set; go-sqlite v1.21 stops reading the
	// parameters after it, and _txlock would be silently ignored.
	q.Add("_txlock", "immediate")
	return path + "?" + q.Encode(), nil
}

// mmapSize is how much of a SQLite file is read through a memory map.
const mmapSize = 1 << 30

// Dialect reports which database the store talks to: DialectSQLite or DialectPostgres.
func (s *Store) Dialect() string { return s.dialect }

// Ping reports whether the database answers.
func (s *Store) Ping(ctx context.Context) error {
	for _, pool := range s.pools {
		if err := pool.PingContext(ctx); err != nil {
			return failed("ping", err)
		}
	}
	return nil
}

// Close closes the connection pools. It is safe to call more than once.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		for _, pool := range s.pools {
			if err := pool.Close(); err != nil && s.closeErr == nil {
				s.closeErr = fmt.Errorf("sqlstore: close: %w", err)
			}
		}
	})
	return s.closeErr
}

// txKey is the context key under which BeginTx stores the transaction; it is
// per store, so a transaction of one store never leaks into another.
type txKey struct{ s *Store }

type txState struct {
	db   *gorm.DB
	done bool
	// m is the transaction's place in a group commit (SQLite), nil on
	// PostgreSQL.
	m *member
	// clients: the transaction wrote to the clients table.
	clients bool
}

func (s *Store) txFrom(ctx context.Context) *txState {
	st, _ := ctx.Value(txKey{s}).(*txState)
	return st
}

// stmtCtx is the context a statement of the transaction runs with: in a
// group commit, without ctx's cancellation (see group.go).
func (st *txState) stmtCtx(ctx context.Context) context.Context {
	if st.m != nil {
		return context.WithoutCancel(ctx)
	}
	return ctx
}

// gorm returns the transaction for a statement made with ctx; one that a
// group commit rolled back as abandoned runs nothing more (gorm skips the
// statements of a DB that carries an error) and fails with ErrTxDone.
func (st *txState) gorm(ctx context.Context) *gorm.DB {
	db := st.db.WithContext(st.stmtCtx(ctx))
	if st.m != nil && st.m.isEnded() {
		_ = db.AddError(ErrTxDone)
	}
	return db
}

// conn returns the transaction carried by ctx, or the pool that reads.
func (s *Store) conn(ctx context.Context) *gorm.DB {
	if st := s.txFrom(ctx); st != nil {
		return st.gorm(ctx)
	}
	return s.db.WithContext(ctx)
}

// writer returns the transaction carried by ctx, or the pool that writes.
func (s *Store) writer(ctx context.Context) *gorm.DB {
	if st := s.txFrom(ctx); st != nil {
		return st.gorm(ctx)
	}
	return s.w.WithContext(ctx)
}

// atomic runs fn in the transaction carried by ctx, or in a new one (on
// SQLite, a member of a group commit).
func (s *Store) atomic(ctx context.Context, fn func(tx *gorm.DB) error) (err error) {
	if st := s.txFrom(ctx); st != nil {
		return fn(st.gorm(ctx))
	}
	if s.group == nil {
		return s.w.WithContext(ctx).Transaction(fn)
	}
	m, tx, err := s.group.begin(ctx)
	if err != nil {
		return err
	}
	ended := false
	defer func() {
		if !ended { // fn panicked
			_ = m.end(false)
		}
	}()
	err = fn(tx.WithContext(context.WithoutCancel(ctx)))
	ended = true
	if err != nil {
		_ = m.end(false)
		return err
	}
	return m.end(true)
}

// Errors returned by the Transactor methods.
var (
	// ErrNoTx is returned by Commit and Rollback given a context without a transaction.
	ErrNoTx = errors.New("sqlstore: no transaction in context")
	// ErrNestedTx is returned by BeginTx given a context already in a transaction.
	ErrNestedTx = errors.New("sqlstore: context already carries a transaction")
	// ErrTxDone is returned by Commit and Rollback once the transaction has ended.
	ErrTxDone = errors.New("sqlstore: transaction already committed or rolled back")
)

// BeginTx starts a transaction and returns a context that carries it: every
// Store method called with that context joins it until Commit or Rollback.
// On SQLite the transaction holds the database write lock until it ends.
func (s *Store) BeginTx(ctx context.Context) (context.Context, error) {
	if s.txFrom(ctx) != nil {
		return ctx, ErrNestedTx
	}
	if s.group != nil {
		m, tx, err := s.group.begin(ctx)
		if err != nil {
			return ctx, err
		}
		return context.WithValue(ctx, txKey{s}, &txState{db: tx, m: m}), nil
	}
	tx := s.w.WithContext(ctx).Begin()
	if tx.Error != nil {
		return ctx, failed("begin", tx.Error)
	}
	return context.WithValue(ctx, txKey{s}, &txState{db: tx}), nil
}

// Commit commits the transaction carried by ctx. On SQLite it returns when
// the group commit that includes it has reached the disk, with its result.
func (s *Store) Commit(ctx context.Context) error {
	return s.endTx(ctx, "commit", true)
}

// Rollback aborts the transaction carried by ctx.
func (s *Store) Rollback(ctx context.Context) error {
	return s.endTx(ctx, "rollback", false)
}

// endTx ends the transaction carried by ctx, once.
func (s *Store) endTx(ctx context.Context, op string, commit bool) error {
	st := s.txFrom(ctx)
	if st == nil {
		return ErrNoTx
	}
	if st.done {
		return ErrTxDone
	}
	st.done = true
	var err error
	switch {
	case st.m != nil:
		if err = st.m.end(commit); errors.Is(err, ErrTxDone) {
			return ErrTxDone // abandoned (group.go)
		}
	case commit:
		err = st.db.Commit().Error
	default:
		err = st.db.Rollback().Error
	}
	if st.clients {
		s.versions.invalidate() // what others read meanwhile was the old version
	}
	return failed(op, err)
}
