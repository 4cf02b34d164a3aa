package sqlstore_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/ponte-id/ponte/storage"
	"github.com/ponte-id/ponte/storage/sqlstore"
	"github.com/ponte-id/ponte/storage/storagetest"
)

// groupToken is a token for the group commit tests.
func groupToken(sig string) storage.Token {
	now := time.Now()
	return storage.Token{Kind: storage.KindAccessToken, Signature: sig, RequestID: "r-" + sig, ClientID: "rp1",
		Active: true, RequestedAt: now, ExpiresAt: now.Add(time.Hour), Data: []byte("{}")}
}

// waitFor polls cond for up to 10 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// durable reports which of sigs a second store, opened afresh on the same
// file, finds: what reached the database file, not what one connection saw.
func durable(t *testing.T, path string, sigs []string) map[string]bool {
	t.Helper()
	s, err := sqlstore.Open(t.Context(), path, sqlstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	found := map[string]bool{}
	for _, sig := range sigs {
		_, err := s.GetToken(t.Context(), storage.KindAccessToken, sig)
		switch {
		case err == nil:
			found[sig] = true
		case !errors.Is(err, storage.ErrNotFound):
			t.Fatal(err)
		}
	}
	return found
}

// batchOf opens a transaction that holds SQLite's writer, then n more that
// wait for it, each writing one token (set a long maximum age first, or a
// slow machine splits the batch); then it commits the first, and each of
// the others, as it gets the writer, commits or rolls back (rollback(i)
// true). It returns each member's Commit or Rollback error, first the
// holder's.
func batchOf(t *testing.T, s *sqlstore.Store, n int, rollback func(i int) bool, during func(i int, tx context.Context), after func(i int, err error)) []error {
	t.Helper()
	ctx := t.Context()
	first, err := s.BeginTx(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.CreateToken(first, groupToken("t0")); err != nil {
		t.Fatal(err)
	}
	errs := make([]error, n+1)
	var wg sync.WaitGroup
	for i := 1; i <= n; i++ {
		wg.Go(func() {
			tx, err := s.BeginTx(ctx)
			if err != nil {
				errs[i] = err
				return
			}
			if err := s.CreateToken(tx, groupToken(fmt.Sprint("t", i))); err != nil {
				errs[i] = err
				_ = s.Rollback(tx)
				return
			}
			if during != nil {
				during(i, tx)
			}
			if rollback(i) {
				errs[i] = s.Rollback(tx)
			} else {
				errs[i] = s.Commit(tx)
			}
			if after != nil {
				after(i, errs[i])
			}
		})
	}
	waitFor(t, "the members to wait for the writer", func() bool { return s.GroupWaiting() == int32(n) })
	errs[0] = s.Commit(first)
	if after != nil {
		after(0, errs[0])
	}
	wg.Wait()
	return errs
}

// TestGroupCommit: transactions that wait for SQLite's writer while another
// holds it share its commit, one fsync for all; each Commit returns only
// when the batch is in the file; a member that rolls back takes only its own
// writes with it.
func TestGroupCommit(t *testing.T) {
	for _, c := range []struct {
		name     string
		rollback func(i int) bool
	}{
		{"all commit", func(int) bool { return false }},
		{"one rolls back", func(i int) bool { return i == 2 }},
		{"all but the first roll back", func(int) bool { return true }},
	} {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "ponte.db")
			s := storagetest.OpenMigrated(t, path)
			// Another store on the file: what it reads is committed.
			other := storagetest.OpenMigrated(t, path)
			s.SetGroupMaxAge(time.Hour)
			before := s.GroupCommits()
			const n = 5
			errs := batchOf(t, s, n, c.rollback, nil, func(i int, err error) {
				if err != nil || (i > 0 && c.rollback(i)) {
					return
				}
				if _, err := other.GetToken(t.Context(), storage.KindAccessToken, fmt.Sprint("t", i)); err != nil {
					t.Errorf("member %d's Commit returned before its batch was committed: %v", i, err)
				}
			})
			var sigs []string
			for i, err := range errs {
				if err != nil {
					t.Errorf("member %d: %v", i, err)
				}
				sigs = append(sigs, fmt.Sprint("t", i))
			}
			if got := s.GroupCommits() - before; got != 1 {
				t.Errorf("%d commits for one batch, want 1", got)
			}
			found := durable(t, path, sigs)
			for i, sig := range sigs {
				if want := i == 0 || !c.rollback(i); found[sig] != want {
					t.Errorf("member %d's token in the file: %t, want %t", i, found[sig], want)
				}
			}
		})
	}
}

// TestGroupCommitBounds: a batch commits when it is full (MaxBatch
// members), and when it is older than its maximum age, even though writers
// wait to join it.
func TestGroupCommitBounds(t *testing.T) {
	for _, c := range []struct {
		name        string
		members     int
		maxAge      time.Duration
		wantCommits int64
	}{
		{"full", sqlstore.MaxBatch + 6, time.Hour, 2},
		{"old", 5, 0, 5}, // each member commits its own
	} {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "ponte.db")
			s := storagetest.OpenMigrated(t, path)
			s.SetGroupMaxAge(c.maxAge)
			before := s.GroupCommits()
			errs := batchOf(t, s, c.members-1, func(int) bool { return false }, nil, nil)
			var sigs []string
			for i, err := range errs {
				if err != nil {
					t.Errorf("member %d: %v", i, err)
				}
				sigs = append(sigs, fmt.Sprint("t", i))
			}
			if got := s.GroupCommits() - before; got != c.wantCommits {
				t.Errorf("%d commits for %d members, want %d", got, c.members, c.wantCommits)
			}
			if found := durable(t, path, sigs); len(found) != c.members {
				t.Errorf("%d of %d members' tokens in the file", len(found), c.members)
			}
		})
	}
}

// TestGroupCommitLost: when SQLite loses the batch's transaction (as it does
// on an I/O error or a full disk, simulated by a ROLLBACK under the store's
// feet), every member of the batch is told its commit failed, and none of
// their writes is in the file.
func TestGroupCommitLost(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ponte.db")
	s := storagetest.OpenMigrated(t, path)
	s.SetGroupMaxAge(time.Hour)
	const n = 3
	errs := batchOf(t, s, n, func(int) bool { return false }, func(i int, tx context.Context) {
		if i == 2 {
			if err := s.ExecInTx(tx, "ROLLBACK"); err != nil {
				t.Error(err)
			}
		}
	}, nil)
	// Members after the loss start a new batch; those before it, the
	// holder, and the one that saw it fail.
	var sigs []string
	for i := range errs {
		sigs = append(sigs, fmt.Sprint("t", i))
	}
	found := durable(t, path, sigs)
	for i, err := range errs {
		if err == nil && !found[sigs[i]] {
			t.Errorf("member %d was told it committed, and its token is not in the file", i)
		}
		if err != nil && found[sigs[i]] {
			t.Errorf("member %d was told %v, and its token is in the file", i, err)
		}
	}
	if errs[0] == nil || errs[2] == nil {
		t.Errorf("the holder and the member that lost the batch: %v, %v; want errors", errs[0], errs[2])
	}
	// The writer works on.
	if err := s.CreateToken(t.Context(), groupToken("after")); err != nil {
		t.Fatal(err)
	}
}

// TestGroupCommitAbandoned: a transaction left open after its context ended
// (a panic between BeginTx and Commit) is rolled back after a grace, so
// SQLite's writer is not held for ever; ending it then says so.
func TestGroupCommitAbandoned(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ponte.db")
	s := storagetest.OpenMigrated(t, path)
	ctx, cancel := context.WithCancel(t.Context())
	tx, err := s.BeginTx(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.CreateToken(tx, groupToken("abandoned")); err != nil {
		t.Fatal(err)
	}
	cancel()
	wait, stop := context.WithTimeout(t.Context(), 10*sqlstore.AbandonGrace)
	defer stop()
	start := time.Now()
	next, err := s.BeginTx(wait)
	if err != nil {
		t.Fatalf("the writer stayed held: %v", err)
	}
	if waited := time.Since(start); waited < sqlstore.AbandonGrace/2 {
		t.Errorf("the open transaction was rolled back after %v, before its grace", waited)
	}
	if err := s.CreateToken(next, groupToken("next")); err != nil {
		t.Fatal(err)
	}
	// The abandoned transaction, should its goroutine wake up, writes
	// nothing into the batch it was part of.
	if err := s.CreateToken(tx, groupToken("late")); !errors.Is(err, sqlstore.ErrTxDone) {
		t.Errorf("a write in the abandoned transaction = %v, want ErrTxDone", err)
	}
	if err := s.CreateClient(tx, storage.Client{ID: "late"}); !errors.Is(err, sqlstore.ErrTxDone) {
		t.Errorf("a gorm write in the abandoned transaction = %v, want ErrTxDone", err)
	}
	if err := s.Commit(next); err != nil {
		t.Fatal(err)
	}
	if err := s.Commit(tx); !errors.Is(err, sqlstore.ErrTxDone) {
		t.Errorf("Commit of the abandoned transaction = %v, want ErrTxDone", err)
	}
	found := durable(t, path, []string{"abandoned", "next", "late"})
	if found["abandoned"] || found["late"] || !found["next"] {
		t.Errorf("in the file: %v; want only next", found)
	}
	if _, err := s.GetClient(t.Context(), "late"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("the abandoned transaction's client: %v, want ErrNotFound", err)
	}
}

// TestGroupCommitWaiterGivesUp: a writer whose context ends while it waits
// returns its context's error, and the transaction it waited for commits.
func TestGroupCommitWaiterGivesUp(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ponte.db")
	s := storagetest.OpenMigrated(t, path)
	first, err := s.BeginTx(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if err := s.CreateToken(first, groupToken("t0")); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	gaveUp := make(chan error, 1)
	go func() {
		_, err := s.BeginTx(ctx)
		gaveUp <- err
	}()
	waitFor(t, "the writer to wait", func() bool { return s.GroupWaiting() == 1 })
	cancel()
	if err := <-gaveUp; !errors.Is(err, context.Canceled) {
		t.Errorf("BeginTx of a writer that gave up = %v, want context.Canceled", err)
	}
	if err := s.Commit(first); err != nil {
		t.Fatal(err)
	}
	if !durable(t, path, []string{"t0"})["t0"] {
		t.Error("the transaction waited for is not in the file")
	}
}

// TestGroupCommitParallel: many writers at once, transactions and single
// statements mixed; every write whose call succeeded is in the file.
func TestGroupCommitParallel(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ponte.db")
	s := storagetest.OpenMigrated(t, path)
	const writers, each = 16, 20
	ctx := t.Context()
	var wg sync.WaitGroup
	var mu sync.Mutex
	var sigs []string
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				sig := fmt.Sprintf("w%d-%d", w, i)
				var err error
				if i%4 == 3 {
					err = s.CreateToken(ctx, groupToken(sig))
				} else {
					var tx context.Context
					if tx, err = s.BeginTx(ctx); err == nil {
						if err = s.CreateToken(tx, groupToken(sig)); err == nil {
							err = s.Commit(tx)
						} else {
							_ = s.Rollback(tx)
						}
					}
				}
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				sigs = append(sigs, sig)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	found := durable(t, path, sigs)
	if len(found) != writers*each {
		t.Errorf("%d of %d writes in the file", len(found), writers*each)
	}
	t.Logf("%d writes, %d group commits", writers*each, s.GroupCommits())
}
