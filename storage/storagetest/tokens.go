package storagetest

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/ponte-id/ponte/storage"
)

var allKinds = []storage.TokenKind{
	storage.KindAuthorizeCode, storage.KindAccessToken, storage.KindRefreshToken,
	storage.KindPKCE, storage.KindOpenID, storage.KindPAR,
}

func sampleToken(kind storage.TokenKind, sig string) storage.Token {
	return storage.Token{
		Kind:        kind,
		Signature:   sig,
		RequestID:   "req-" + sig,
		ClientID:    "rp1",
		Subject:     "sub-1",
		Active:      true,
		RequestedAt: base,
		ExpiresAt:   base.Add(10 * time.Minute),
		Data:        []byte(`{"form":{"scope":["openid"]}}`),
	}
}

// tokenState returns whether the token exists and whether it is active.
func tokenState(t *testing.T, s storage.Store, kind storage.TokenKind, sig string) (exists, active bool) {
	t.Helper()
	tok, err := s.GetToken(t.Context(), kind, sig)
	if errors.Is(err, storage.ErrNotFound) {
		return false, false
	}
	must(t, err)
	return true, tok.Active
}

var tokenTests = []test{
	{"CreateGet", func(t *testing.T, s storage.Store) {
		ctx := t.Context()
		for _, kind := range allKinds {
			want := sampleToken(kind, "sig-"+string(kind))
			must(t, s.CreateToken(ctx, want))
			got, err := s.GetToken(ctx, kind, want.Signature)
			must(t, err)
			same(t, "GetToken "+string(kind), got, want)
		}
	}},
	{"CreateGetEdgeValues", func(t *testing.T, s storage.Store) {
		ctx := t.Context()
		big := bytes.Repeat([]byte{0, 1, 2, 0xff}, 64<<10/4)
		cases := []storage.Token{
			{Kind: storage.KindPAR, Signature: "no-subject-no-expiry", RequestID: "r", ClientID: "c", Active: true},
			{Kind: storage.KindAccessToken, Signature: "big", RequestID: "r", Data: big, Active: true,
				RequestedAt: time.Date(1969, 12, 31, 23, 59, 59, 999999500, time.UTC),
				ExpiresAt:   time.Date(2262, 1, 1, 0, 0, 0, 1000, time.UTC)},
			{Kind: storage.KindRefreshToken, Signature: "inactive", Active: false, ExpiresAt: base},
		}
		for _, want := range cases {
			must(t, s.CreateToken(ctx, want))
			got, err := s.GetToken(ctx, want.Kind, want.Signature)
			must(t, err)
			same(t, "GetToken "+want.Signature, got, want)
		}
	}},
	{"CreateDuplicate", func(t *testing.T, s storage.Store) {
		ctx := t.Context()
		must(t, s.CreateToken(ctx, sampleToken(storage.KindAuthorizeCode, "s1")))
		wantErr(t, "CreateToken twice", s.CreateToken(ctx, sampleToken(storage.KindAuthorizeCode, "s1")), storage.ErrConflict)
		// The key is (kind, signature): the same signature under another kind is fine.
		must(t, s.CreateToken(ctx, sampleToken(storage.KindOpenID, "s1")))
	}},
	{"GetMissing", func(t *testing.T, s storage.Store) {
		ctx := t.Context()
		_, err := s.GetToken(ctx, storage.KindAccessToken, "nope")
		wantErr(t, "GetToken", err, storage.ErrNotFound)
		must(t, s.CreateToken(ctx, sampleToken(storage.KindAccessToken, "s1")))
		_, err = s.GetToken(ctx, storage.KindRefreshToken, "s1")
		wantErr(t, "GetToken of another kind", err, storage.ErrNotFound)
	}},
	{"Delete", func(t *testing.T, s storage.Store) {
		ctx := t.Context()
		must(t, s.CreateToken(ctx, sampleToken(storage.KindAccessToken, "s1")))
		must(t, s.CreateToken(ctx, sampleToken(storage.KindRefreshToken, "s1")))
		must(t, s.DeleteToken(ctx, storage.KindAccessToken, "s1"))
		if ok, _ := tokenState(t, s, storage.KindAccessToken, "s1"); ok {
			t.Fatal("token still there after DeleteToken")
		}
		if ok, _ := tokenState(t, s, storage.KindRefreshToken, "s1"); !ok {
			t.Fatal("DeleteToken deleted a token of another kind")
		}
		wantErr(t, "DeleteToken again", s.DeleteToken(ctx, storage.KindAccessToken, "s1"), storage.ErrNotFound)
	}},
	{"Deactivate", func(t *testing.T, s storage.Store) {
		ctx := t.Context()
		want := sampleToken(storage.KindAuthorizeCode, "code1")
		must(t, s.CreateToken(ctx, want))
		must(t, s.DeactivateToken(ctx, storage.KindAuthorizeCode, "code1"))
		got, err := s.GetToken(ctx, storage.KindAuthorizeCode, "code1")
		must(t, err)
		want.Active = false
		same(t, "GetToken after DeactivateToken", got, want)
		wantErr(t, "DeactivateToken twice", s.DeactivateToken(ctx, storage.KindAuthorizeCode, "code1"), storage.ErrNotFound)
		wantErr(t, "DeactivateToken missing", s.DeactivateToken(ctx, storage.KindAuthorizeCode, "nope"), storage.ErrNotFound)
		wantErr(t, "DeactivateToken of another kind", s.DeactivateToken(ctx, storage.KindRefreshToken, "code1"), storage.ErrNotFound)
	}},
	{"DeactivateConcurrent", func(t *testing.T, s storage.Store) {
		ctx := t.Context()
		for round := range 3 {
			sig := id("code", round)
			must(t, s.CreateToken(ctx, sampleToken(storage.KindAuthorizeCode, sig)))
			errs := race(16, func(int) error { return s.DeactivateToken(ctx, storage.KindAuthorizeCode, sig) })
			exactlyOne(t, "concurrent DeactivateToken", errs, storage.ErrNotFound)
		}
	}},
	{"DeactivateRequest", func(t *testing.T, s storage.Store) {
		ctx := t.Context()
		mk := func(kind storage.TokenKind, sig, req string) {
			tok := sampleToken(kind, sig)
			tok.RequestID = req
			must(t, s.CreateToken(ctx, tok))
		}
		mk(storage.KindRefreshToken, "a", "req1")
		mk(storage.KindRefreshToken, "b", "req1")
		mk(storage.KindAccessToken, "c", "req1")
		mk(storage.KindRefreshToken, "d", "req2")
		must(t, s.DeactivateToken(ctx, storage.KindRefreshToken, "b"))
		must(t, s.DeactivateRequest(ctx, storage.KindRefreshToken, "req1"))
		for _, c := range []struct {
			kind   storage.TokenKind
			sig    string
			active bool
		}{
			{storage.KindRefreshToken, "a", false},
			{storage.KindRefreshToken, "b", false},
			{storage.KindAccessToken, "c", true},
			{storage.KindRefreshToken, "d", true},
		} {
			if ok, active := tokenState(t, s, c.kind, c.sig); !ok || active != c.active {
				t.Errorf("%s/%s: exists=%v active=%v, want active=%v", c.kind, c.sig, ok, active, c.active)
			}
		}
		must(t, s.DeactivateRequest(ctx, storage.KindRefreshToken, "no-such-request"))
	}},
	{"DeleteRequest", func(t *testing.T, s storage.Store) {
		ctx := t.Context()
		mk := func(kind storage.TokenKind, sig, req string) {
			tok := sampleToken(kind, sig)
			tok.RequestID = req
			must(t, s.CreateToken(ctx, tok))
		}
		mk(storage.KindAccessToken, "a", "req1")
		mk(storage.KindAccessToken, "b", "req1")
		mk(storage.KindRefreshToken, "c", "req1")
		mk(storage.KindAccessToken, "d", "req2")
		must(t, s.DeleteRequest(ctx, storage.KindAccessToken, "req1"))
		for _, c := range []struct {
			kind   storage.TokenKind
			sig    string
			exists bool
		}{
			{storage.KindAccessToken, "a", false},
			{storage.KindAccessToken, "b", false},
			{storage.KindRefreshToken, "c", true},
			{storage.KindAccessToken, "d", true},
		} {
			if ok, _ := tokenState(t, s, c.kind, c.sig); ok != c.exists {
				t.Errorf("%s/%s: exists=%v, want %v", c.kind, c.sig, ok, c.exists)
			}
		}
		must(t, s.DeleteRequest(ctx, storage.KindAccessToken, "no-such-request"))
	}},
	{"DeleteSubjectTokens", func(t *testing.T, s storage.Store) {
		ctx := t.Context()
		mk := func(kind storage.TokenKind, sig, client, sub string) {
			tok := sampleToken(kind, sig)
			tok.ClientID, tok.Subject = client, sub
			must(t, s.CreateToken(ctx, tok))
		}
		mk(storage.KindAccessToken, "a1", "rp1", "alice")
		mk(storage.KindRefreshToken, "a2", "rp2", "alice")
		mk(storage.KindOpenID, "a3", "rp1", "alice")
		mk(storage.KindAccessToken, "b1", "rp1", "bob")
		mk(storage.KindPAR, "p1", "rp1", "")
		n, err := s.DeleteSubjectTokens(ctx, "alice")
		must(t, err)
		if n != 3 {
			t.Errorf("DeleteSubjectTokens = %d, want 3", n)
		}
		for sig, exists := range map[string]bool{"a1": false, "b1": true} {
			if ok, _ := tokenState(t, s, storage.KindAccessToken, sig); ok != exists {
				t.Errorf("%s exists=%v, want %v", sig, ok, exists)
			}
		}
		if ok, _ := tokenState(t, s, storage.KindPAR, "p1"); !ok {
			t.Error("token without subject deleted")
		}
		n, err = s.DeleteSubjectTokens(ctx, "nobody")
		must(t, err)
		if n != 0 {
			t.Errorf("DeleteSubjectTokens(nobody) = %d", n)
		}
	}},
	{"DeleteExpired", func(t *testing.T, s storage.Store) {
		ctx := t.Context()
		now := base
		exp := map[string]time.Time{
			"long-ago":   time.Date(1960, 1, 1, 0, 0, 0, 0, time.UTC),
			"hour-ago":   now.Add(-time.Hour),
			"just-ago":   now.Add(-time.Microsecond),
			"now":        now,
			"just-after": now.Add(time.Microsecond),
			"tomorrow":   now.Add(24 * time.Hour),
			"never":      {},
		}
		for sig, e := range exp {
			tok := sampleToken(storage.KindRefreshToken, sig)
			tok.ExpiresAt = e
			must(t, s.CreateToken(ctx, tok))
		}
		n, err := s.DeleteExpiredTokens(ctx, now)
		must(t, err)
		if n != 3 {
			t.Errorf("DeleteExpiredTokens = %d, want 3", n)
		}
		for sig := range exp {
			ok, _ := tokenState(t, s, storage.KindRefreshToken, sig)
			if wantGone := sig == "long-ago" || sig == "hour-ago" || sig == "just-ago"; ok == wantGone {
				t.Errorf("%s: exists=%v after sweep", sig, ok)
			}
		}
	}},
	{"ConcurrentLoad", func(t *testing.T, s storage.Store) {
		// 8 writers x 50 create+deactivate pairs: on SQLite this must not hit
		// "database is locked".
		ctx := t.Context()
		errs := race(8, func(g int) error {
			for i := range 50 {
				sig := id(id("load", g), i)
				if err := s.CreateToken(ctx, sampleToken(storage.KindAccessToken, sig)); err != nil {
					return err
				}
				if err := s.DeactivateToken(ctx, storage.KindAccessToken, sig); err != nil {
					return err
				}
			}
			return nil
		})
		noErrors(t, "create+deactivate", errs)
	}},
}
