package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"gorm.io/gorm"
)

// Group commit (SQLite). SQLite makes every commit durable with an fsync of
// its write-ahead log, and its one writer holds the lock while it waits for
// the disk: under load the writers queue for the fsyncs, and the CPU idles
// (ssobench: Ponte used 0.7 of 2 cores, two fsyncs a flow). So the writing
// connection keeps one SQLite transaction open for a batch of the store's
// transactions (members), each inside a savepoint of its own: a member that
// rolls back undoes its savepoint only; a member that commits releases it
// and waits. When no other writer waits to join (or the batch is full, or
// old), the batch commits, with one fsync, and only then does every member's
// Commit return, with the batch's result. A commit that fails fails every
// member of its batch: no caller is told a write is durable before it is,
// and synchronous stays FULL.
//
// Members run one at a time, as SQLite writers always did, and a member sees
// the writes of the members before it in its batch (none of whose callers
// has yet been told they are committed; if the batch fails, they all fail).
// Readers on the other connections see a batch when it is committed.
//
// Statements in a batch run without the caller's cancellation: SQLite
// answers an interrupted write inside a transaction by rolling back the
// whole transaction, which would fail the other members for one caller
// that went away. A member whose context ends while it is still open (a
// panic between BeginTx and Commit) is rolled back after abandonGrace, so
// that the writer is not held for ever; the statements it makes after that
// fail with ErrTxDone, and so does its Commit. (One statement already on its
// way when the rollback happens could still land in the batch: a member
// must be stuck for the whole grace after its request ended for that.)

// Bounds of a batch. A batch commits when no writer waits to join it, or
// when it has maxBatch members, or when it began maxBatchAge ago (the
// default of groupCommit.maxAge).
const (
	maxBatch    = 64
	maxBatchAge = 20 * time.Millisecond
	// abandonGrace is how long an open member may outlive its context.
	abandonGrace = time.Second
)

// groupCommit is the writing connection shared by batches of transactions.
type groupCommit struct {
	w *gorm.DB
	// slot is the right to write: held by one member at a time (or by
	// whoever commits a batch nobody else will).
	slot chan struct{}
	// waiting counts the writers waiting for the slot.
	waiting atomic.Int32
	// commits counts the batches committed (tests, benchmarks).
	commits atomic.Int64
	maxAge  time.Duration

	// Owned by the holder of slot.
	tx    *gorm.DB // the open SQLite transaction, nil when none
	sqlTx *sql.Tx  // its database/sql transaction
	batch *batch
}

// batch is the members of one SQLite transaction that committed theirs.
type batch struct {
	done  chan struct{} // closed when the batch has committed or failed
	err   error         // set before done is closed
	n     int           // members that committed
	start time.Time
}

func newGroupCommit(w *gorm.DB) *groupCommit {
	return &groupCommit{w: w, slot: make(chan struct{}, 1), maxAge: maxBatchAge}
}

// errBatchLost is the error of members whose batch SQLite rolled back
// before it could commit.
var errBatchLost = errors.New("sqlstore: the group transaction was lost")

// acquire takes the slot. A writer that gives up (ctx ended) takes the slot
// if it is free, to commit a batch that was left open for it to join.
func (g *groupCommit) acquire(ctx context.Context) error {
	g.waiting.Add(1)
	select {
	case g.slot <- struct{}{}:
		g.waiting.Add(-1)
		return nil
	case <-ctx.Done():
		g.waiting.Add(-1)
		select {
		case g.slot <- struct{}{}:
			if g.tx != nil {
				g.flush()
			}
			<-g.slot
		default: // the holder commits or hands on the batch
		}
		return ctx.Err()
	}
}

// member is one transaction of a batch.
type member struct {
	g     *groupCommit
	mu    sync.Mutex
	ended bool
	stop  func() bool // stops the abandonment watch
}

// begin opens a member for ctx: the slot taken, the batch's transaction
// begun if none is open, and a savepoint.
func (g *groupCommit) begin(ctx context.Context) (*member, *gorm.DB, error) {
	if err := g.acquire(ctx); err != nil {
		return nil, nil, failed("begin", err)
	}
	if g.tx == nil {
		tx := g.w.WithContext(context.Background()).Begin()
		if tx.Error != nil {
			<-g.slot
			return nil, nil, failed("begin", tx.Error)
		}
		sqlTx, ok := tx.Statement.ConnPool.(*sql.Tx)
		if !ok {
			_ = tx.Rollback()
			<-g.slot
			return nil, nil, errors.New("sqlstore: begin: not a database/sql transaction")
		}
		g.tx, g.sqlTx = tx, sqlTx
		g.batch = &batch{done: make(chan struct{}), start: time.Now()}
	}
	if _, err := g.sqlTx.ExecContext(context.Background(), "SAVEPOINT member"); err != nil {
		g.fail(err)
		<-g.slot
		return nil, nil, failed("begin", err)
	}
	m := &member{g: g}
	m.stop = context.AfterFunc(ctx, func() {
		time.AfterFunc(abandonGrace, func() { _ = m.end(false) })
	})
	return m, g.tx, nil
}

// isEnded reports whether the member has ended (committed, rolled back, or
// rolled back as abandoned).
func (m *member) isEnded() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.ended
}

// end ends the member: its savepoint released (commit) or rolled back, then
// the batch committed unless another writer waits to join it. A member that
// commits returns when its batch has committed, with the batch's result.
// ErrTxDone if the member has ended already.
func (m *member) end(commit bool) error {
	m.mu.Lock()
	if m.ended {
		m.mu.Unlock()
		return ErrTxDone
	}
	m.ended = true
	m.stop()
	g := m.g
	b := g.batch
	var err error
	if commit {
		_, err = g.sqlTx.ExecContext(context.Background(), "RELEASE member")
	} else if _, err = g.sqlTx.ExecContext(context.Background(), "ROLLBACK TO member"); err == nil {
		_, err = g.sqlTx.ExecContext(context.Background(), "RELEASE member")
	}
	if err != nil {
		// The savepoint is gone: SQLite rolled the transaction back (an I/O
		// error, a full disk), and with it the members before this one.
		g.fail(fmt.Errorf("%w: %w", errBatchLost, err))
		<-g.slot
		m.mu.Unlock()
		return b.err
	}
	if commit {
		b.n++
	}
	if g.waiting.Load() == 0 || b.n >= maxBatch || time.Since(b.start) >= g.maxAge {
		g.flush()
	}
	<-g.slot
	m.mu.Unlock()
	if !commit {
		return nil
	}
	<-b.done
	return b.err
}

// flush commits the open batch (rolls back one with no committed member)
// and tells its members. The caller holds the slot.
func (g *groupCommit) flush() {
	b := g.batch
	if b.n == 0 {
		b.err = g.tx.Rollback().Error
	} else {
		b.err = g.tx.Commit().Error
		g.commits.Add(1)
	}
	g.tx, g.sqlTx, g.batch = nil, nil, nil
	close(b.done)
}

// fail rolls back the open batch and fails its members with err. The caller
// holds the slot.
func (g *groupCommit) fail(err error) {
	b := g.batch
	_ = g.tx.Rollback()
	b.err = err
	g.tx, g.sqlTx, g.batch = nil, nil, nil
	close(b.done)
}
