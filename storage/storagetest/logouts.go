package storagetest

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ponte-id/ponte/storage"
)

func sessionClient(session, client string) storage.SessionClient {
	return storage.SessionClient{SessionID: session, ClientID: client, Subject: "sub-" + client, SID: "sid-" + session,
		CreatedAt: base, ExpiresAt: base.Add(8 * time.Hour)}
}

func logoutMessage(id string, due time.Time) storage.LogoutMessage {
	return storage.LogoutMessage{ID: id, ClientID: "rp-" + id, Subject: "sub", SID: "sid", NextAttemptAt: due, CreatedAt: base}
}

func ids(ms []storage.LogoutMessage) []string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = m.ID
	}
	return out
}

var logoutTests = []test{
	{"ListSessions", func(t *testing.T, s storage.Store) {
		ctx := t.Context()
		for i, id := range []string{"a1", "a2", "b1"} {
			ss := sampleSession(id, "alice")
			ss.CreatedAt = base.Add(time.Duration(i) * time.Minute)
			if id == "b1" {
				ss.Subject = "bob"
			}
			ss.MethodKey = "key-" + id[:1]
			must(t, s.CreateSession(ctx, ss))
		}
		got, err := s.ListSubjectSessions(ctx, "alice")
		must(t, err)
		if len(got) != 2 || got[0].ID != "a2" || got[1].ID != "a1" {
			t.Fatalf("ListSubjectSessions: %+v", got)
		}
		want := sampleSession("a1", "alice")
		want.MethodKey = "key-a"
		same(t, "listed session", got[1], want)
		got, err = s.ListMethodSessions(ctx, "key-a")
		must(t, err)
		if len(got) != 2 {
			t.Fatalf("ListMethodSessions: %d", len(got))
		}
		if got, _ := s.ListSubjectSessions(ctx, "carol"); len(got) != 0 {
			t.Fatalf("unknown subject: %d sessions", len(got))
		}
		if _, err := s.ListSubjectSessions(ctx, ""); err == nil {
			t.Fatal("an empty subject listed")
		}
		if _, err := s.ListMethodSessions(ctx, ""); err == nil {
			t.Fatal("an empty key listed")
		}
	}},
	{"SessionClients", func(t *testing.T, s storage.Store) {
		ctx := t.Context()
		must(t, s.AddSessionClient(ctx, sessionClient("s1", "rp-b")))
		must(t, s.AddSessionClient(ctx, sessionClient("s1", "rp-a")))
		again := sessionClient("s1", "rp-a")
		again.Subject, again.SID, again.CreatedAt = "changed", "sid-later", base.Add(time.Hour)
		must(t, s.AddSessionClient(ctx, again)) // what the client got last; created stays
		must(t, s.AddSessionClient(ctx, sessionClient("s2", "rp-a")))
		got, err := s.SessionClients(ctx, "s1")
		must(t, err)
		want := sessionClient("s1", "rp-a")
		want.Subject, want.SID = "changed", "sid-later"
		same(t, "SessionClients", got, []storage.SessionClient{want, sessionClient("s1", "rp-b")})

		// A re-login moves the records; a client in both keeps the new session's.
		must(t, s.MoveSessionClients(ctx, "s1", "s2", base.Add(9*time.Hour)))
		if got, _ := s.SessionClients(ctx, "s1"); len(got) != 0 {
			t.Fatalf("records left on the old session: %+v", got)
		}
		got, err = s.SessionClients(ctx, "s2")
		must(t, err)
		if len(got) != 2 || got[0].SID != "sid-s2" || got[1].SID != "sid-s1" || got[1].ClientID != "rp-b" ||
			!got[0].ExpiresAt.Equal(micro(base.Add(9*time.Hour))) || !got[1].ExpiresAt.Equal(micro(base.Add(9*time.Hour))) {
			t.Fatalf("after move: %+v", got)
		}
		must(t, s.AddSessionClient(ctx, sessionClient("s3", "rp-a")))
		n, err := s.DeleteExpiredSessionClients(ctx, base.Add(8*time.Hour+time.Second))
		must(t, err)
		if n != 1 {
			t.Fatalf("DeleteExpiredSessionClients: %d", n)
		}
		must(t, s.DeleteSessionClients(ctx, "s2"))
		if got, _ := s.SessionClients(ctx, "s2"); len(got) != 0 {
			t.Fatalf("DeleteSessionClients left %+v", got)
		}
	}},
	{"OrphanLogouts", func(t *testing.T, s storage.Store) {
		ctx := t.Context()
		withURI := sampleClient("rp-uri")
		noURI := sampleClient("rp-none")
		noURI.BackchannelLogoutURI = ""
		must(t, s.CreateClient(ctx, withURI))
		must(t, s.CreateClient(ctx, noURI))
		must(t, s.CreateSession(ctx, sampleSession("live", "alice")))
		for _, sc := range []storage.SessionClient{
			sessionClient("live", "rp-uri"),    // its session exists: not an orphan
			sessionClient("gone", "rp-uri"),    // an orphan: a logout
			sessionClient("gone", "rp-none"),   // an orphan of a client without URI: deleted only
			sessionClient("gone2", "rp-uri"),   // another orphan
			sessionClient("expired", "rp-uri"), // expired with its session: nothing owed
		} {
			if sc.SessionID == "expired" {
				sc.ExpiresAt = base.Add(-time.Minute)
			}
			must(t, s.AddSessionClient(ctx, sc))
		}
		n := 0
		newID := func() string { n++; return fmt.Sprintf("orphan-%d", n) }
		queued, err := s.QueueOrphanLogouts(ctx, base, 10, newID)
		must(t, err)
		if queued != 2 {
			t.Fatalf("queued %d, want 2", queued)
		}
		pending, err := s.ListLogouts(ctx, false, 10)
		must(t, err)
		if len(pending) != 2 || pending[0].ClientID != "rp-uri" || pending[0].SID != "sid-gone" && pending[0].SID != "sid-gone2" {
			t.Fatalf("queued %+v", pending)
		}
		if left, _ := s.SessionClients(ctx, "gone"); len(left) != 0 {
			t.Fatalf("orphans left: %+v", left)
		}
		if left, _ := s.SessionClients(ctx, "live"); len(left) != 1 {
			t.Fatal("a live session's record was taken")
		}
		if again, _ := s.QueueOrphanLogouts(ctx, base, 10, newID); again != 0 {
			t.Fatalf("queued %d more on a second pass", again)
		}
	}},
	{"OutboxLifecycle", func(t *testing.T, s storage.Store) {
		ctx := t.Context()
		must(t, s.EnqueueLogout(ctx, logoutMessage("m2", base.Add(time.Minute))))
		must(t, s.EnqueueLogout(ctx, logoutMessage("m1", base)))
		must(t, s.EnqueueLogout(ctx, logoutMessage("m3", base.Add(time.Hour))))
		wantErr(t, "EnqueueLogout twice", s.EnqueueLogout(ctx, logoutMessage("m1", base)), storage.ErrConflict)

		got, err := s.ClaimLogouts(ctx, base.Add(time.Minute), 10, time.Minute)
		must(t, err)
		if !slices.Equal(ids(got), []string{"m1", "m2"}) {
			t.Fatalf("claimed %v", ids(got))
		}
		want := logoutMessage("m1", base)
		want.LeaseUntil = base.Add(2 * time.Minute)
		same(t, "claimed message", got[0], want)
		// Leased: nobody else claims them until the lease ends.
		if got, _ := s.ClaimLogouts(ctx, base.Add(time.Minute+time.Second), 10, time.Minute); len(got) != 0 {
			t.Fatalf("claimed leased messages: %v", ids(got))
		}
		must(t, s.DeleteLogout(ctx, "m1"))
		wantErr(t, "DeleteLogout twice", s.DeleteLogout(ctx, "m1"), storage.ErrNotFound)
		must(t, s.FailLogout(ctx, "m2", base.Add(10*time.Minute), "503 "+strings.Repeat("é", 400), false))
		must(t, s.FailLogout(ctx, "m3", base.Add(time.Hour), "400", true))
		wantErr(t, "FailLogout unknown", s.FailLogout(ctx, "nope", base, "x", false), storage.ErrNotFound)

		got, err = s.ClaimLogouts(ctx, base.Add(2*time.Hour), 10, time.Minute)
		must(t, err)
		if !slices.Equal(ids(got), []string{"m2"}) || got[0].Attempts != 1 || len(got[0].LastError) > 500 || !strings.HasPrefix(got[0].LastError, "503 ") {
			t.Fatalf("after a failure: %+v", got)
		}
		parked, err := s.ListLogouts(ctx, true, 10)
		must(t, err)
		if !slices.Equal(ids(parked), []string{"m3"}) || parked[0].ParkedAt.IsZero() || parked[0].LastError != "400" {
			t.Fatalf("parked: %+v", parked)
		}
		pending, err := s.ListLogouts(ctx, false, 10)
		must(t, err)
		if !slices.Equal(ids(pending), []string{"m2"}) {
			t.Fatalf("pending: %v", ids(pending))
		}
		m, err := s.RequeueLogout(ctx, "m3", base.Add(3*time.Hour))
		must(t, err)
		if m.Attempts != 0 || !m.ParkedAt.IsZero() || m.LastError != "400" {
			t.Fatalf("requeued: %+v", m)
		}
		_, err = s.RequeueLogout(ctx, "nope", base)
		wantErr(t, "RequeueLogout unknown", err, storage.ErrNotFound)
		got, err = s.ClaimLogouts(ctx, base.Add(3*time.Hour), 10, time.Minute)
		must(t, err)
		if !slices.Equal(ids(got), []string{"m2", "m3"}) { // m2's lease has ended too
			t.Fatalf("after requeue claimed %v", ids(got))
		}
		if got, _ := s.ClaimLogouts(ctx, base.Add(5*time.Hour), 0, time.Minute); len(got) != 0 {
			t.Fatal("a zero limit claimed")
		}
	}},
	{"OutboxConcurrentClaims", func(t *testing.T, s storage.Store) {
		ctx := t.Context()
		const n = 40
		for i := range n {
			must(t, s.EnqueueLogout(ctx, logoutMessage(fmt.Sprintf("m%02d", i), base)))
		}
		var (
			mu   sync.Mutex
			seen = map[string]int{}
			wg   sync.WaitGroup
		)
		for range 8 {
			wg.Go(func() {
				for {
					got, err := s.ClaimLogouts(ctx, base, 3, time.Minute)
					if err != nil {
						t.Error(err)
						return
					}
					if len(got) == 0 {
						return
					}
					mu.Lock()
					for _, m := range got {
						seen[m.ID]++
					}
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		if len(seen) != n {
			t.Fatalf("claimed %d of %d", len(seen), n)
		}
		for id, c := range seen {
			if c != 1 {
				t.Fatalf("%s claimed %d times", id, c)
			}
		}
	}},
}
