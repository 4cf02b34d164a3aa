package storagetest

import (
	"errors"
	"testing"
	"time"

	"github.com/ponte-id/ponte/storage"
)

func sampleSession(id, subject string) storage.Session {
	return storage.Session{
		ID:        id,
		Subject:   subject,
		AuthTime:  base,
		Method:    "spid",
		Level:     "https://www.spid.gov.it/SpidL2",
		AMR:       []string{"pwd", "otp"},
		CreatedAt: base,
		ExpiresAt: base.Add(8 * time.Hour),
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
}
