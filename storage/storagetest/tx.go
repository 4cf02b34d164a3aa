package storagetest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/ponte-id/ponte/storage"
)

var txTests = []test{
	{"CommitVisible", func(t *testing.T, s storage.Store) {
		ctx := t.Context()
		tx, err := s.BeginTx(ctx)
		must(t, err)
		must(t, s.CreateClient(tx, sampleClient("rp1")))
		must(t, s.CreateToken(tx, sampleToken(storage.KindAuthorizeCode, "code1")))
		if _, err := s.GetClient(tx, "rp1"); err != nil {
			t.Fatalf("transaction does not see its own write: %v", err)
		}
		if _, err := s.GetClient(ctx, "rp1"); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("uncommitted write visible outside the transaction: %v", err)
		}
		must(t, s.Commit(tx))
		_, err = s.GetClient(ctx, "rp1")
		must(t, err)
		_, err = s.GetToken(ctx, storage.KindAuthorizeCode, "code1")
		must(t, err)
	}},
	{"RollbackInvisible", func(t *testing.T, s storage.Store) {
		ctx := t.Context()
		must(t, s.CreateToken(ctx, sampleToken(storage.KindAuthorizeCode, "code1")))
		tx, err := s.BeginTx(ctx)
		must(t, err)
		must(t, s.CreateClient(tx, sampleClient("rp1")))
		must(t, s.DeactivateToken(tx, storage.KindAuthorizeCode, "code1"))
		must(t, s.CreateToken(tx, sampleToken(storage.KindAccessToken, "at1")))
		must(t, s.CreateSession(tx, sampleSession("sess1", "alice")))
		must(t, s.UseOnce(tx, "jti-1", time.Now().Add(time.Hour)))
		must(t, s.Rollback(tx))
		_, err = s.GetClient(ctx, "rp1")
		wantErr(t, "GetClient after rollback", err, storage.ErrNotFound)
		_, err = s.GetToken(ctx, storage.KindAccessToken, "at1")
		wantErr(t, "GetToken after rollback", err, storage.ErrNotFound)
		_, err = s.GetSession(ctx, "sess1")
		wantErr(t, "GetSession after rollback", err, storage.ErrNotFound)
		if _, active := tokenState(t, s, storage.KindAuthorizeCode, "code1"); !active {
			t.Error("rolled back DeactivateToken stuck")
		}
		must(t, s.UseOnce(ctx, "jti-1", time.Now().Add(time.Hour)))
	}},
	{"UpdateInTx", func(t *testing.T, s storage.Store) {
		ctx := t.Context()
		must(t, s.CreateClient(ctx, sampleClient("rp1")))
		must(t, s.CreateKey(ctx, sampleKey("k1", base)))
		tx, err := s.BeginTx(ctx)
		must(t, err)
		must(t, s.UpdateClient(tx, "rp1", func(c storage.Client) (storage.Client, error) {
			c.Name = "in tx"
			return c, nil
		}))
		must(t, s.UpdateKey(tx, "k1", func(k storage.SigningKey) (storage.SigningKey, error) {
			k.State = storage.KeyRetired
			return k, nil
		}))
		c, err := s.GetClient(tx, "rp1")
		must(t, err)
		if c.Name != "in tx" {
			t.Fatalf("transaction does not see its own update: %q", c.Name)
		}
		must(t, s.Rollback(tx))
		c, err = s.GetClient(ctx, "rp1")
		must(t, err)
		if c.Name == "in tx" {
			t.Fatal("rolled back UpdateClient stuck")
		}
		keys, err := s.ListKeys(ctx)
		must(t, err)
		if keys[0].State != storage.KeyActive {
			t.Fatal("rolled back UpdateKey stuck")
		}
	}},
	{"WithoutTx", func(t *testing.T, s storage.Store) {
		ctx := t.Context()
		if err := s.Commit(ctx); err == nil {
			t.Error("Commit without a transaction succeeded")
		}
		if err := s.Rollback(ctx); err == nil {
			t.Error("Rollback without a transaction succeeded")
		}
	}},
	{"Nested", func(t *testing.T, s storage.Store) {
		tx, err := s.BeginTx(t.Context())
		must(t, err)
		if _, err := s.BeginTx(tx); err == nil {
			t.Error("BeginTx inside a transaction succeeded")
		}
		must(t, s.Rollback(tx))
	}},
	{"EndTwice", func(t *testing.T, s storage.Store) {
		tx, err := s.BeginTx(t.Context())
		must(t, err)
		must(t, s.Commit(tx))
		if err := s.Commit(tx); err == nil {
			t.Error("second Commit succeeded")
		}
		if err := s.Rollback(tx); err == nil {
			t.Error("Rollback after Commit succeeded")
		}
	}},
	{"ConflictInTx", func(t *testing.T, s storage.Store) {
		ctx := t.Context()
		must(t, s.CreateClient(ctx, sampleClient("rp1")))
		tx, err := s.BeginTx(ctx)
		must(t, err)
		wantErr(t, "CreateClient duplicate in tx", s.CreateClient(tx, sampleClient("rp1")), storage.ErrConflict)
		must(t, s.Rollback(tx))
	}},
	{"Concurrent", func(t *testing.T, s storage.Store) {
		// Read-then-write transactions from several goroutines: the classic
		// SQLite deadlock (two readers upgrading to writers) must not happen.
		ctx := t.Context()
		const goroutines, rounds = 8, 10
		for g := range goroutines {
			must(t, s.CreateToken(ctx, sampleToken(storage.KindRefreshToken, id("rt", g))))
		}
		errs := race(goroutines, func(g int) error {
			sig := id("rt", g)
			for r := range rounds {
				if err := rotate(ctx, s, sig, id(sig, r)); err != nil {
					return err
				}
				sig = id(sig, r)
			}
			return nil
		})
		noErrors(t, "refresh rotation", errs)
	}},
}

// rotate redeems refresh token old and issues next in one transaction, the
// way a refresh grant does.
func rotate(ctx context.Context, s storage.Store, old, next string) (err error) {
	tx, err := s.BeginTx(ctx)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			_ = s.Rollback(tx)
		}
	}()
	tok, err := s.GetToken(tx, storage.KindRefreshToken, old)
	if err != nil {
		return err
	}
	if err := s.DeactivateToken(tx, storage.KindRefreshToken, old); err != nil {
		return err
	}
	tok.Signature = next
	if err := s.CreateToken(tx, tok); err != nil {
		return err
	}
	return s.Commit(tx)
}

var janitorTests = []test{
	{"Sweep", func(t *testing.T, s storage.Store) {
		ctx := t.Context()
		now := base
		past, future := now.Add(-time.Minute), now.Add(time.Minute)

		// A refresh-token family: the access token has expired, the refresh
		// token has not and must survive.
		at := sampleToken(storage.KindAccessToken, "at-old")
		at.RequestID, at.ExpiresAt = "fam", past
		rt := sampleToken(storage.KindRefreshToken, "rt-live")
		rt.RequestID, rt.ExpiresAt = "fam", future
		rtOld := sampleToken(storage.KindRefreshToken, "rt-old")
		rtOld.ExpiresAt = past
		for _, tok := range []storage.Token{at, rt, rtOld} {
			must(t, s.CreateToken(ctx, tok))
		}
		for id, exp := range map[string]time.Time{"s-old": past, "s-live": future} {
			ss := sampleSession(id, "alice")
			ss.ExpiresAt = exp
			must(t, s.CreateSession(ctx, ss))
		}
		for id, exp := range map[string]time.Time{"c-old": past, "c-old2": past, "c-live": future} {
			c := sampleChallenge(id)
			c.ExpiresAt = exp
			must(t, s.CreateChallenge(ctx, c))
		}
		must(t, s.UseOnce(ctx, "j-old", past))
		must(t, s.UseOnce(ctx, "j-live", future))
		must(t, s.PutLoginState(ctx, storage.LoginState{Key: "st-old", ExpiresAt: past}))
		must(t, s.PutLoginState(ctx, storage.LoginState{Key: "st-live", ExpiresAt: future}))
		for id, exp := range map[string]time.Time{"s-old": past, "s-live": future} {
			sc := sessionClient(id, "rp")
			sc.ExpiresAt = exp
			must(t, s.AddSessionClient(ctx, sc))
		}

		oldLogin := loginEvent("l-old", "alice", past)
		oldLogin.ExpiresAt = past
		must(t, s.RecordLogin(ctx, oldLogin, 10))
		must(t, s.RecordLogin(ctx, loginEvent("l-live", "alice", past), 10))

		got, err := storage.Sweep(ctx, s, now)
		must(t, err)
		want := storage.Swept{Tokens: 2, Sessions: 1, Challenges: 2, Uses: 1, LoginStates: 1, SessionClients: 1, Logins: 1}
		if got != want {
			t.Fatalf("Sweep = %+v, want %+v", got, want)
		}
		if got.Total() != 9 {
			t.Errorf("Total = %d, want 9", got.Total())
		}
		if live, _ := s.SessionClients(ctx, "s-live"); len(live) != 1 {
			t.Error("Sweep deleted a live session's relying parties")
		}
		if _, err := s.TakeLoginState(ctx, "st-live", now); err != nil {
			t.Errorf("Sweep deleted a live login state: %v", err)
		}
		if ok, _ := tokenState(t, s, storage.KindRefreshToken, "rt-live"); !ok {
			t.Error("Sweep deleted an unexpired refresh token")
		}
		if !sessionExists(t, s, "s-live") || !challengeExists(t, s, "c-live") {
			t.Error("Sweep deleted unexpired records")
		}
		again, err := storage.Sweep(ctx, s, now)
		must(t, err)
		if again.Total() != 0 {
			t.Errorf("second Sweep = %+v, want nothing", again)
		}
	}},
	{"RunJanitor", func(t *testing.T, s storage.Store) {
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		tok := sampleToken(storage.KindAccessToken, "at")
		tok.ExpiresAt = base
		must(t, s.CreateToken(ctx, tok))
		clock := func() time.Time { return base.Add(time.Second) }
		done := make(chan struct{})
		go func() {
			defer close(done)
			storage.RunJanitor(ctx, s, 10*time.Millisecond, clock, nil)
		}()
		deadline := time.Now().Add(10 * time.Second)
		for {
			if ok, _ := tokenState(t, s, storage.KindAccessToken, "at"); !ok {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("RunJanitor did not sweep the expired token")
			}
			time.Sleep(5 * time.Millisecond)
		}
		cancel()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatal("RunJanitor did not return after cancel")
		}
	}},
}
