package storagetest

import (
	"errors"
	"testing"
	"time"

	"github.com/ponte-id/ponte/storage"
)

func sampleSession(id, subject string) storage.Session {
	return storage.Session{
		ID:       id,
		Subject:  subject,
		AuthTime: base,
		Method:   "spid",
		Level:    "https://www.spid.gov.it/SpidL2",
		AMR:      []string{"pwd", "otp"},
		// MethodData is opaque to storage: bytes that are not text round-trip too.
		MethodData: []byte{0, 1, 2, 0xff},
		CreatedAt:  base,
		ExpiresAt:  base.Add(8 * time.Hour),
	}
}

func sessionExists(t *testing.T, s storage.Store, id string) bool {
	t.Helper()
	_, err := s.GetSession(t.Context(), id)
	if errors.Is(err, storage.ErrNotFound) {
		return false
	}
	must(t, err)
	return true
}

var sessionTests = []test{
	{"DeleteMethodSessions", func(t *testing.T, s storage.Store) {
		ctx := t.Context()
		for id, key := range map[string]string{"s1": "idp-a|nid-1", "s2": "idp-a|nid-1", "s3": "idp-a|nid-2", "s4": ""} {
			ss := sampleSession(id, "alice")
			ss.MethodKey = key
			must(t, s.CreateSession(ctx, ss))
		}
		got, err := s.GetSession(ctx, "s1")
		must(t, err)
		if got.MethodKey != "idp-a|nid-1" {
			t.Fatalf("MethodKey = %q", got.MethodKey)
		}
		n, err := s.DeleteMethodSessions(ctx, "idp-a|nid-1")
		must(t, err)
		if n != 2 || sessionExists(t, s, "s1") || sessionExists(t, s, "s2") || !sessionExists(t, s, "s3") || !sessionExists(t, s, "s4") {
			t.Fatalf("DeleteMethodSessions deleted %d, or the wrong sessions", n)
		}
		if _, err := s.DeleteMethodSessions(ctx, ""); err == nil {
			t.Fatal("an empty key would end every session that named none")
		}
	}},
	{"CreateGet", func(t *testing.T, s storage.Store) {
		ctx := t.Context()
		want := sampleSession("sess1", "alice")
		must(t, s.CreateSession(ctx, want))
		got, err := s.GetSession(ctx, "sess1")
		must(t, err)
		same(t, "GetSession", got, want)

		bare := storage.Session{ID: "bare", Subject: "bob", CreatedAt: base}
		must(t, s.CreateSession(ctx, bare))
		got, err = s.GetSession(ctx, "bare")
		must(t, err)
		same(t, "GetSession bare", got, bare)
	}},
	{"CreateDuplicate", func(t *testing.T, s storage.Store) {
		ctx := t.Context()
		must(t, s.CreateSession(ctx, sampleSession("sess1", "alice")))
		wantErr(t, "CreateSession twice", s.CreateSession(ctx, sampleSession("sess1", "bob")), storage.ErrConflict)
	}},
	{"GetMissing", func(t *testing.T, s storage.Store) {
		_, err := s.GetSession(t.Context(), "nope")
		wantErr(t, "GetSession", err, storage.ErrNotFound)
	}},
	{"Delete", func(t *testing.T, s storage.Store) {
		ctx := t.Context()
		must(t, s.CreateSession(ctx, sampleSession("sess1", "alice")))
		must(t, s.CreateSession(ctx, sampleSession("sess2", "alice")))
		must(t, s.DeleteSession(ctx, "sess1"))
		if sessionExists(t, s, "sess1") || !sessionExists(t, s, "sess2") {
			t.Fatal("DeleteSession deleted the wrong sessions")
		}
		wantErr(t, "DeleteSession again", s.DeleteSession(ctx, "sess1"), storage.ErrNotFound)
	}},
	{"DeleteSubjectSessions", func(t *testing.T, s storage.Store) {
		ctx := t.Context()
		for _, ss := range []storage.Session{
			sampleSession("a1", "alice"), sampleSession("a2", "alice"), sampleSession("b1", "bob"),
		} {
			must(t, s.CreateSession(ctx, ss))
		}
		n, err := s.DeleteSubjectSessions(ctx, "alice")
		must(t, err)
		if n != 2 {
			t.Errorf("DeleteSubjectSessions = %d, want 2", n)
		}
		if sessionExists(t, s, "a1") || sessionExists(t, s, "a2") || !sessionExists(t, s, "b1") {
			t.Error("DeleteSubjectSessions deleted the wrong sessions")
		}
		n, err = s.DeleteSubjectSessions(ctx, "alice")
		must(t, err)
		if n != 0 {
			t.Errorf("DeleteSubjectSessions again = %d, want 0", n)
		}
	}},
	{"DeleteExpired", func(t *testing.T, s storage.Store) {
		ctx := t.Context()
		now := base
		for id, exp := range map[string]time.Time{
			"old": now.Add(-time.Hour), "edge": now.Add(-time.Microsecond),
			"now": now, "live": now.Add(time.Hour),
		} {
			ss := sampleSession(id, "alice")
			ss.ExpiresAt = exp
			must(t, s.CreateSession(ctx, ss))
		}
		n, err := s.DeleteExpiredSessions(ctx, now)
		must(t, err)
		if n != 2 {
			t.Errorf("DeleteExpiredSessions = %d, want 2", n)
		}
		if sessionExists(t, s, "old") || sessionExists(t, s, "edge") || !sessionExists(t, s, "now") || !sessionExists(t, s, "live") {
			t.Error("DeleteExpiredSessions deleted the wrong sessions")
		}
	}},
}

func sampleChallenge(id string) storage.Challenge {
	return storage.Challenge{
		ID:        id,
		ClientID:  "rp1",
		Browser:   "browser-hash",
		ClientIP:  "ip-hash",
		Data:      []byte("authorize?client_id=rp1&scope=openid"),
		CreatedAt: base,
		ExpiresAt: base.Add(15 * time.Minute),
	}
}

func challengeExists(t *testing.T, s storage.Store, id string) bool {
	t.Helper()
	_, err := s.GetChallenge(t.Context(), id)
	if errors.Is(err, storage.ErrNotFound) {
		return false
	}
	must(t, err)
	return true
}

var challengeTests = []test{
	{"CreateGet", func(t *testing.T, s storage.Store) {
		ctx := t.Context()
		want := sampleChallenge("ch1")
		must(t, s.CreateChallenge(ctx, want))
		got, err := s.GetChallenge(ctx, "ch1")
		must(t, err)
		same(t, "GetChallenge", got, want)
	}},
	{"CreateDuplicate", func(t *testing.T, s storage.Store) {
		ctx := t.Context()
		must(t, s.CreateChallenge(ctx, sampleChallenge("ch1")))
		wantErr(t, "CreateChallenge twice", s.CreateChallenge(ctx, sampleChallenge("ch1")), storage.ErrConflict)
	}},
	{"GetMissing", func(t *testing.T, s storage.Store) {
		_, err := s.GetChallenge(t.Context(), "nope")
		wantErr(t, "GetChallenge", err, storage.ErrNotFound)
	}},
	{"Return", func(t *testing.T, s storage.Store) {
		ctx := t.Context()
		must(t, s.CreateChallenge(ctx, sampleChallenge("ch1")))
		must(t, s.CreateChallenge(ctx, sampleChallenge("ch2")))
		wantErr(t, "ReturnChallenge after expiry", s.ReturnChallenge(ctx, "ch1", []byte("id"), base.Add(time.Hour)), storage.ErrNotFound)
		wantErr(t, "ReturnChallenge unknown", s.ReturnChallenge(ctx, "nope", []byte("id"), base), storage.ErrNotFound)
		must(t, s.ReturnChallenge(ctx, "ch1", []byte("identity"), base))
		got, err := s.GetChallenge(ctx, "ch1")
		must(t, err)
		if string(got.Returned) != "identity" {
			t.Fatalf("Returned = %q", got.Returned)
		}
		if other, _ := s.GetChallenge(ctx, "ch2"); other.Returned != nil {
			t.Fatalf("another challenge got the identity: %q", other.Returned)
		}
		must(t, s.ReturnChallenge(ctx, "ch1", nil, base))
		if got, _ = s.GetChallenge(ctx, "ch1"); got.Returned != nil {
			t.Fatalf("Returned after clearing = %q", got.Returned)
		}
	}},
	{"Delete", func(t *testing.T, s storage.Store) {
		ctx := t.Context()
		must(t, s.CreateChallenge(ctx, sampleChallenge("ch1")))
		must(t, s.CreateChallenge(ctx, sampleChallenge("ch2")))
		must(t, s.DeleteChallenge(ctx, "ch1"))
		if challengeExists(t, s, "ch1") || !challengeExists(t, s, "ch2") {
			t.Fatal("DeleteChallenge deleted the wrong challenges")
		}
		wantErr(t, "DeleteChallenge again", s.DeleteChallenge(ctx, "ch1"), storage.ErrNotFound)
	}},
	{"DeleteExpired", func(t *testing.T, s storage.Store) {
		ctx := t.Context()
		now := base
		for id, exp := range map[string]time.Time{
			"old": now.Add(-time.Minute), "edge": now.Add(-time.Microsecond),
			"now": now, "live": now.Add(time.Minute), "never": {},
		} {
			c := sampleChallenge(id)
			c.ExpiresAt = exp
			must(t, s.CreateChallenge(ctx, c))
		}
		n, err := s.DeleteExpiredChallenges(ctx, now)
		must(t, err)
		if n != 2 {
			t.Errorf("DeleteExpiredChallenges = %d, want 2", n)
		}
		for id, want := range map[string]bool{"old": false, "edge": false, "now": true, "live": true, "never": true} {
			if got := challengeExists(t, s, id); got != want {
				t.Errorf("%s exists=%v, want %v", id, got, want)
			}
		}
	}},
	{"Count", func(t *testing.T, s storage.Store) {
		ctx := t.Context()
		now := base
		for _, c := range []struct {
			id, browser, ip string
			exp             time.Time
		}{
			{"b1-ip1", "b1", "ip1", now.Add(10 * time.Minute)},
			{"b1-ip2", "b1", "ip2", now.Add(5 * time.Minute)},
			{"b2-ip1", "b2", "ip1", now.Add(time.Minute)},
			{"b1-ip1-expired", "b1", "ip1", now.Add(-time.Minute)},
			{"b1-ip1-at-now", "b1", "ip1", now},
			{"b3-never", "b3", "ip3", time.Time{}},
			{"legacy", "", "", now.Add(time.Hour)},
		} {
			ch := sampleChallenge(c.id)
			ch.Browser, ch.ClientIP, ch.ExpiresAt = c.browser, c.ip, c.exp
			must(t, s.CreateChallenge(ctx, ch))
		}
		for _, tc := range []struct {
			name, browser, ip string
			want              storage.ChallengeCount
		}{
			{"both keys", "b1", "ip1", storage.ChallengeCount{Browser: 2, ClientIP: 2,
				BrowserNextExpiry: now.Add(5 * time.Minute), ClientIPNextExpiry: now.Add(time.Minute)}},
			{"address only", "", "ip1", storage.ChallengeCount{ClientIP: 2, ClientIPNextExpiry: now.Add(time.Minute)}},
			{"browser only", "b2", "", storage.ChallengeCount{Browser: 1, BrowserNextExpiry: now.Add(time.Minute)}},
			{"never expiring", "b3", "ip3", storage.ChallengeCount{Browser: 1, ClientIP: 1}},
			{"unknown keys", "b9", "ip9", storage.ChallengeCount{}},
			{"empty keys match nothing", "", "", storage.ChallengeCount{}},
		} {
			got, err := s.CountChallenges(ctx, tc.browser, tc.ip, now)
			must(t, err)
			same(t, "CountChallenges "+tc.name, got, tc.want)
		}
	}},
	{"CountCapConcurrent", func(t *testing.T, s storage.Store) {
		// Count then create in one transaction, from many callers at once for
		// one address: the cap holds exactly.
		const callers, limit = 12, 5
		created := race(callers, func(i int) error {
			ctx := t.Context()
			tx, err := s.BeginTx(ctx)
			if err != nil {
				return err
			}
			n, err := s.CountChallenges(tx, id("browser", i), "ip1", base)
			if err == nil && n.ClientIP >= limit {
				err = errAbort
			}
			if err == nil {
				ch := sampleChallenge(id("ch", i))
				ch.Browser, ch.ClientIP = id("browser", i), "ip1"
				err = s.CreateChallenge(tx, ch)
			}
			if err != nil {
				_ = s.Rollback(tx)
				return err
			}
			return s.Commit(tx)
		})
		ok := 0
		for i, err := range created {
			switch {
			case err == nil:
				ok++
			case !errors.Is(err, errAbort):
				t.Errorf("caller %d: %v", i, err)
			}
		}
		got, err := s.CountChallenges(t.Context(), "", "ip1", base)
		must(t, err)
		if ok != limit || got.ClientIP != limit {
			t.Fatalf("%d callers admitted, %d challenges stored; want exactly %d (the cap)", ok, got.ClientIP, limit)
		}
	}},
}
