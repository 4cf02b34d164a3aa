package sqlstore

import (
	"context"
	"time"
)

// ExecRaw runs a statement through the pool that writes, outside the storage
// contract, for tests that check what the database itself refuses.
func (s *Store) ExecRaw(ctx context.Context, sql string) error {
	return s.w.WithContext(ctx).Exec(sql).Error
}

// ExecOnReader runs a statement through the pool that reads.
func (s *Store) ExecOnReader(ctx context.Context, sql string) error {
	return s.db.WithContext(ctx).Exec(sql).Error
}

// Pragma reads a SQLite pragma on the connection that writes (writer) or on
// one that reads.
func (s *Store) Pragma(ctx context.Context, name string, writer bool) (string, error) {
	pool := s.rPool
	if writer {
		pool = s.wPool
	}
	var v string
	err := pool.QueryRowContext(ctx, "PRAGMA "+name).Scan(&v)
	return v, err
}

// ExecInTx runs a statement in the transaction ctx carries.
func (s *Store) ExecInTx(ctx context.Context, sql string) error {
	return s.writer(ctx).Exec(sql).Error
}

// GroupCommits is how many batches the SQLite group commit has committed.
func (s *Store) GroupCommits() int64 { return s.group.commits.Load() }

// GroupWaiting is how many writers wait to join the SQLite group commit.
func (s *Store) GroupWaiting() int32 { return s.group.waiting.Load() }

// AbandonGrace is how long an open transaction may outlive its context.
const AbandonGrace = abandonGrace

// SetGroupMaxAge sets the age at which a group commit's batch commits even
// though writers wait to join it.
func (s *Store) SetGroupMaxAge(d time.Duration) { s.group.maxAge = d }

// MaxBatch is the most transactions a group commit's batch holds.
const MaxBatch = maxBatch

// QueryInTx reads one row in the transaction ctx carries.
func (s *Store) QueryInTx(ctx context.Context, sql string, dest ...any) error {
	return s.writer(ctx).Raw(sql).Row().Scan(dest...)
}

// QueryRaw reads one row through the pool that writes.
func (s *Store) QueryRaw(ctx context.Context, sql string, args []any, dest ...any) error {
	return s.w.WithContext(ctx).Raw(sql, args...).Row().Scan(dest...)
}
