package provider

import (
	"context"
	"encoding/json"
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/ory/fosite"

	"github.com/ponte-id/ponte/storage"
	"github.com/ponte-id/ponte/storage/storagetest"
)

// TestOpenIDRequestOfACode: a code's record holds its OpenID Connect request,
// and nothing else is stored for it; a code an older Ponte issued during a
// rolling upgrade (no "oidc" mark, a record of its own for the OpenID Connect
// request) is still redeemed with that record, which is then deleted.
func TestOpenIDRequestOfACode(t *testing.T) {
	fs, ctx, request := codeStore(t)
	store := fs.s
	// A code issued now: one record, with the nonce.
	if err := fs.CreateAuthorizeCodeSession(ctx, "sig-new", request("new-nonce")); err != nil {
		t.Fatal(err)
	}
	if err := fs.CreateOpenIDConnectSession(ctx, "code.sig-new", request("new-nonce")); err != nil {
		t.Fatal(err)
	}
	if _, err := store.GetToken(ctx, storage.KindOpenID, hashKey("code.sig-new")); err == nil {
		t.Fatal("an OpenID Connect record was stored apart from the code's")
	}
	got, err := fs.GetOpenIDConnectSession(ctx, "code.sig-new", request("x"))
	if err != nil || got.GetRequestForm().Get("nonce") != "new-nonce" {
		t.Fatalf("the OpenID Connect request of a new code: %v, %v", got, err)
	}
	if err := fs.DeleteOpenIDConnectSession(ctx, "code.sig-new"); err != nil {
		t.Fatal(err)
	}

	// A code an older Ponte issued: its record lacks the nonce and the mark.
	legacy(t, store, storage.KindAuthorizeCode, "sig-old", url.Values{"scope": {"openid"}})
	legacy(t, store, storage.KindOpenID, "code.sig-old", url.Values{"nonce": {"old-nonce"}})
	got, err = fs.GetOpenIDConnectSession(ctx, "code.sig-old", request("x"))
	if err != nil || got.GetRequestForm().Get("nonce") != "old-nonce" {
		t.Fatalf("the OpenID Connect request of an older code: %v, %v", got, err)
	}
	if err := fs.DeleteOpenIDConnectSession(ctx, "code.sig-old"); err != nil {
		t.Fatal(err)
	}
	if _, err := store.GetToken(ctx, storage.KindOpenID, hashKey("code.sig-old")); err == nil {
		t.Fatal("an older code's OpenID Connect record outlived its redemption")
	}
}

// TestPKCEChallengeOfACode: a code's record holds its PKCE challenge, and
// reads as none once the code is used, or when it was issued without one; a
// code an older Ponte issued keeps its separate record, deleted by the
// redemption.
func TestPKCEChallengeOfACode(t *testing.T) {
	fs, ctx, request := codeStore(t)
	withChallenge := request("n")
	withChallenge.Form.Set("code_challenge", "challenge")
	withChallenge.Form.Set("code_challenge_method", "S256")
	if err := fs.CreateAuthorizeCodeSession(ctx, "sig-new", withChallenge); err != nil {
		t.Fatal(err)
	}
	if err := fs.CreatePKCERequestSession(ctx, "sig-new", withChallenge); err != nil {
		t.Fatal(err)
	}
	if _, err := fs.s.GetToken(ctx, storage.KindPKCE, hashKey("sig-new")); err == nil {
		t.Fatal("a PKCE record was stored apart from the code's")
	}
	sess := newSession()
	got, err := fs.GetPKCERequestSession(ctx, "sig-new", sess)
	if err != nil || got.GetRequestForm().Get("code_challenge") != "challenge" || got.GetSession() != sess {
		t.Fatalf("the challenge of a new code: %v, %v", got, err)
	}
	if err := fs.InvalidateAuthorizeCodeSession(ctx, "sig-new"); err != nil {
		t.Fatal(err)
	}
	if _, err := fs.GetPKCERequestSession(ctx, "sig-new", sess); !errors.Is(err, fosite.ErrNotFound) {
		t.Fatalf("the challenge of a used code: %v, want not found", err)
	}

	if err := fs.CreateAuthorizeCodeSession(ctx, "sig-none", request("n")); err != nil {
		t.Fatal(err)
	}
	if _, err := fs.GetPKCERequestSession(ctx, "sig-none", sess); !errors.Is(err, fosite.ErrNotFound) {
		t.Fatalf("the challenge of a code issued without one: %v, want not found", err)
	}

	legacy(t, fs.s, storage.KindAuthorizeCode, "sig-old", url.Values{"scope": {"openid"}})
	legacy(t, fs.s, storage.KindPKCE, "sig-old", url.Values{"code_challenge": {"old"}, "code_challenge_method": {"S256"}})
	got, err = fs.GetPKCERequestSession(ctx, "sig-old", sess)
	if err != nil || got.GetRequestForm().Get("code_challenge") != "old" {
		t.Fatalf("the challenge of an older code: %v, %v", got, err)
	}
	if err := fs.InvalidateAuthorizeCodeSession(ctx, "sig-old"); err != nil {
		t.Fatal(err)
	}
	if _, err := fs.s.GetToken(ctx, storage.KindPKCE, hashKey("sig-old")); err == nil {
		t.Fatal("an older code's PKCE record outlived its redemption")
	}
}

// codeStore is a fositeStore on a fresh SQLite store with client rp1, a
// context with a request memo, and a maker of authorization requests.
func codeStore(t *testing.T) (fositeStore, context.Context, func(nonce string) *fosite.AuthorizeRequest) {
	store := storagetest.SQLite(t)
	ctx := context.WithValue(t.Context(), memoCtxKey{}, &requestMemo{}) // as in a request
	if err := store.CreateClient(ctx, storage.Client{ID: "rp1"}); err != nil {
		t.Fatal(err)
	}
	fs := fositeStore{s: store, clients: newClientCache(store, time.Now), codeSignature: func(_ context.Context, code string) string {
		_, sig, _ := strings.Cut(code, ".")
		return sig
	}}
	request := func(nonce string) *fosite.AuthorizeRequest {
		ar := fosite.NewAuthorizeRequest()
		ar.ID, ar.Client, ar.RequestedAt = "req-"+nonce, &client{Client: storage.Client{ID: "rp1"}}, time.Now()
		ar.Session = newSession()
		ar.Session.SetExpiresAt(fosite.AuthorizeCode, time.Now().Add(time.Minute))
		ar.Form = url.Values{"nonce": {nonce}}
		ar.GrantScope("openid")
		return ar
	}
	return fs, ctx, request
}

// legacy stores a record the way the previous version did: no marks.
func legacy(t *testing.T, store storage.Store, kind storage.TokenKind, key string, form url.Values) {
	t.Helper()
	sess, _ := json.Marshal(newSession())
	data, _ := json.Marshal(map[string]any{"id": "req-old", "client_id": "rp1", "granted_scopes": []string{"openid"},
		"form": form, "session": json.RawMessage(sess)})
	if err := store.CreateToken(t.Context(), storage.Token{Kind: kind, Signature: hashKey(key), RequestID: "req-old", ClientID: "rp1",
		Active: true, RequestedAt: time.Now(), ExpiresAt: time.Now().Add(time.Minute), Data: data}); err != nil {
		t.Fatal(err)
	}
}

// pkceDeletes is a store that counts the deletes of separate PKCE records,
// and fails them on demand.
type pkceDeletes struct {
	storage.Store
	n    int
	fail bool
}

func (s *pkceDeletes) DeleteToken(ctx context.Context, kind storage.TokenKind, sig string) error {
	if kind == storage.KindPKCE {
		s.n++
		if s.fail {
			return errors.New("the token table is unavailable")
		}
	}
	return s.Store.DeleteToken(ctx, kind, sig)
}

// TestPKCEChallengeRemoval: redeeming a code that holds its own challenge
// deletes no separate record (there is none); redeeming a code an older Ponte
// issued deletes its separate record, and fails if that delete fails; a code
// this request has not read is treated as an older one.
func TestPKCEChallengeRemoval(t *testing.T) {
	fs, ctx, request := codeStore(t)
	counted := &pkceDeletes{Store: fs.s}
	fs.s = counted
	withChallenge := request("n1")
	withChallenge.Form.Set("code_challenge", "c")
	withChallenge.Form.Set("code_challenge_method", "S256")
	if err := fs.CreateAuthorizeCodeSession(ctx, "sig-new", withChallenge); err != nil {
		t.Fatal(err)
	}
	legacy(t, fs.s, storage.KindAuthorizeCode, "sig-old", url.Values{"scope": {"openid"}})
	legacy(t, fs.s, storage.KindPKCE, "sig-old", url.Values{"code_challenge": {"old"}, "code_challenge_method": {"S256"}})
	legacy(t, fs.s, storage.KindAuthorizeCode, "sig-unread", url.Values{"scope": {"openid"}})
	for _, c := range []struct {
		sig         string
		read, fail  bool
		wantDeletes int
		wantErr     bool
	}{
		{sig: "sig-new", read: true, wantDeletes: 0},
		{sig: "sig-old", read: true, fail: true, wantDeletes: 1, wantErr: true},
		{sig: "sig-old", read: true, wantDeletes: 1},
		{sig: "sig-unread", wantDeletes: 1},
	} {
		ctx := context.WithValue(t.Context(), memoCtxKey{}, &requestMemo{}) // one token request
		if c.read {
			if _, err := fs.GetAuthorizeCodeSession(ctx, c.sig, newSession()); err != nil {
				t.Fatal(err)
			}
		}
		counted.n, counted.fail = 0, c.fail
		tx, err := fs.BeginTX(ctx)
		if err != nil {
			t.Fatal(err)
		}
		err = fs.InvalidateAuthorizeCodeSession(tx, c.sig)
		if (err != nil) != c.wantErr || counted.n != c.wantDeletes {
			t.Errorf("%s (fail %t): err %v, %d PKCE deletes; want error %t, %d", c.sig, c.fail, err, counted.n, c.wantErr, c.wantDeletes)
		}
		if err != nil {
			_ = fs.Rollback(tx)
		} else if err := fs.Commit(tx); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := fs.s.GetToken(t.Context(), storage.KindPKCE, hashKey("sig-old")); err == nil {
		t.Fatal("an older code's PKCE record outlived its redemption")
	}
}
