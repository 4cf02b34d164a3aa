package storagetest

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/ponte-id/ponte/storage"
)

func loginEvent(id, subject string, at time.Time) storage.LoginEvent {
	return storage.LoginEvent{ID: id, Subject: subject, SessionID: "sess-" + id, Method: "pin", Level: "urn:inps:loa:consultazione",
		ClientID: "rp", IP: "2001:db8::1", UserAgent: "Mozilla/5.0 (è)", CreatedAt: at, ExpiresAt: at.Add(90 * 24 * time.Hour)}
}

var loginTests = []test{
	{"RecordListTrim", func(t *testing.T, s storage.Store) {
		ctx := t.Context()
		for i := range 5 {
			must(t, s.RecordLogin(ctx, loginEvent(fmt.Sprintf("a%d", i), "alice", base.Add(time.Duration(i)*time.Minute)), 3))
		}
		must(t, s.RecordLogin(ctx, loginEvent("b0", "bob", base), 3))
		got, err := s.ListLogins(ctx, "alice", 10)
		must(t, err)
		if len(got) != 3 || got[0].ID != "a4" || got[2].ID != "a2" {
			t.Fatalf("alice's history kept %v", got)
		}
		same(t, "ListLogins", got[0], loginEvent("a4", "alice", base.Add(4*time.Minute)))
		if got, _ := s.ListLogins(ctx, "alice", 1); len(got) != 1 || got[0].ID != "a4" {
			t.Fatalf("limit 1: %v", got)
		}
		if got, _ := s.ListLogins(ctx, "bob", 10); len(got) != 1 {
			t.Fatalf("bob's history: %v (another citizen's trim touched it?)", got)
		}
		if got, _ := s.ListLogins(ctx, "carol", 10); len(got) != 0 {
			t.Fatalf("carol: %v", got)
		}
		wantErr(t, "RecordLogin twice", s.RecordLogin(ctx, loginEvent("a4", "alice", base), 3), storage.ErrConflict)
		if err := s.RecordLogin(ctx, loginEvent("x", "", base), 3); err == nil {
			t.Error("an event without subject stored")
		}
		if err := s.RecordLogin(ctx, loginEvent("y", "alice", base), 0); err == nil {
			t.Error("keep 0 accepted")
		}
	}},
	{"Expiry", func(t *testing.T, s storage.Store) {
		ctx := t.Context()
		old := loginEvent("old", "alice", base)
		old.ExpiresAt = base.Add(time.Hour)
		must(t, s.RecordLogin(ctx, old, 10))
		must(t, s.RecordLogin(ctx, loginEvent("new", "alice", base.Add(time.Minute)), 10))
		n, err := s.DeleteExpiredLogins(ctx, base.Add(2*time.Hour))
		must(t, err)
		if got, _ := s.ListLogins(ctx, "alice", 10); n != 1 || len(got) != 1 || got[0].ID != "new" {
			t.Fatalf("after the sweep: %d deleted, %v left", n, got)
		}
	}},
	{"ParallelRecordsStayBounded", func(t *testing.T, s storage.Store) {
		ctx := t.Context()
		var wg sync.WaitGroup
		for i := range 20 {
			wg.Go(func() {
				if err := s.RecordLogin(ctx, loginEvent(fmt.Sprintf("p%02d", i), "alice", base.Add(time.Duration(i)*time.Second)), 5); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
		if got, _ := s.ListLogins(ctx, "alice", 100); len(got) > 5 {
			t.Fatalf("%d events kept, the bound is 5", len(got))
		}
	}},
}
