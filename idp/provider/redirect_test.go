package provider_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"golang.org/x/oauth2"

	"github.com/ponte-id/ponte/idp"
	"github.com/ponte-id/ponte/idp/clients"
	"github.com/ponte-id/ponte/storage"
)

// Attacks on the redirect URI and on pushed requests over HTTP, on both
// storage backends.

// firstResponse makes one request and does not follow its redirect.
func firstResponse(t *testing.T, method, u string, form url.Values) *http.Response {
	t.Helper()
	var body *strings.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	} else {
		body = strings.NewReader("")
	}
	req, err := http.NewRequest(method, u, body)
	if err != nil {
		t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp
}

// authorizeURL is an authorization request of r for the test redirect URI, with extra parameters.
func authorizeURL(r *rp, extra url.Values) string {
	v := url.Values{"response_type": {"code"}, "client_id": {r.ID}, "redirect_uri": {redirectURI},
		"scope": {"openid"}, "state": {randomString()}, "nonce": {randomString()}}
	for k, vals := range extra {
		v[k] = vals
	}
	return r.Env.Issuer + "/authorize?" + v.Encode()
}

// wantErrorPage fails unless resp is an HTML page with status and no redirect.
func wantErrorPage(t *testing.T, resp *http.Response, status int) {
	t.Helper()
	if resp.StatusCode != status || resp.Header.Get("Location") != "" {
		t.Fatalf("got %d Location=%q, want the %d page and no redirect", resp.StatusCode, resp.Header.Get("Location"), status)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/html") {
		t.Fatalf("Content-Type %q, want a page", ct)
	}
}

// TestPARWrongClient: a request_uri (RFC 9126) sent with another client's
// client_id is refused on a page, before fosite reads it (fosite deletes the
// pushed request before it compares the client), so the client that pushed it
// still completes the login with the same request_uri.
func TestPARWrongClient(t *testing.T) {
	backends(t, func(t *testing.T, store storage.Store) {
		e := newEnv(t, store)
		owner, other := e.NewRP(clients.Spec{}), e.NewRP(clients.Spec{})
		verifier := oauth2.GenerateVerifier()
		resp, requestURI := push(t, owner, url.Values{"response_type": {"code"}, "client_id": {owner.ID}, "redirect_uri": {redirectURI},
			"scope": {"openid"}, "state": {randomString()}, "nonce": {randomString()},
			"code_challenge": {s256(verifier)}, "code_challenge_method": {"S256"}})
		if requestURI == "" {
			t.Fatalf("PAR: %d", resp.StatusCode)
		}
		for _, clientID := range []string{other.ID, "", "nobody"} {
			q := url.Values{"request_uri": {requestURI}}
			if clientID != "" {
				q.Set("client_id", clientID)
			}
			wantErrorPage(t, firstResponse(t, http.MethodGet, e.Issuer+"/authorize?"+q.Encode(), nil), http.StatusBadRequest)
		}
		loc := login(newBrowser(t), e.Issuer, e.Issuer+"/authorize?"+url.Values{"client_id": {owner.ID}, "request_uri": {requestURI}}.Encode(), citizenCF, idp.LevelConsultazione)
		if _, err := owner.Conf.Exchange(owner.Ctx(), loc.Query().Get("code"), oauth2.VerifierOption(verifier)); err != nil {
			t.Fatalf("the pushing client after another's attempt: %v", err)
		}
	})
}

// TestRedirectURIExactMatch: redirect URIs match to the letter (RFC 9700 §2.1).
// The any-port loopback rule of RFC 8252 §7.3 holds for public (native)
// clients only, and no registered URI matches with a trailing slash. A refused
// URI gets a page, never a redirect; at /par, a JSON error.
func TestRedirectURIExactMatch(t *testing.T) {
	backends(t, func(t *testing.T, store storage.Store) {
		e := newEnv(t, store)
		conf, pub := e.NewRP(clients.Spec{}), publicRP(e, clients.Spec{})
		otherPort := "http://127.0.0.1:8765/callback"
		challenge := url.Values{"code_challenge": {s256(oauth2.GenerateVerifier())}, "code_challenge_method": {"S256"}}
		with := func(uri string) url.Values {
			v := url.Values{"redirect_uri": {uri}}
			for k, vals := range challenge {
				v[k] = vals
			}
			return v
		}
		for _, tc := range []struct {
			name      string
			rp        *rp
			uri       string
			wantLogin bool
		}{
			{"confidential, another loopback port", conf, otherPort, false},
			{"confidential, trailing slash", conf, redirectURI + "/", false},
			{"confidential, exact", conf, redirectURI, true},
			{"public, trailing slash", pub, redirectURI + "/", false},
			{"public, another loopback port (RFC 8252 §7.3)", pub, otherPort, true},
		} {
			t.Run(tc.name, func(t *testing.T) {
				resp := firstResponse(t, http.MethodGet, authorizeURL(tc.rp, with(tc.uri)), nil)
				if tc.wantLogin {
					if loc, _ := resp.Location(); resp.StatusCode != http.StatusSeeOther || loc == nil || loc.Path != "/login" {
						t.Fatalf("got %d %v, want the login page", resp.StatusCode, loc)
					}
					return
				}
				wantErrorPage(t, resp, http.StatusBadRequest)
			})
		}
		t.Run("PAR, confidential, another loopback port", func(t *testing.T) {
			form := with(otherPort)
			form.Set("response_type", "code")
			form.Set("client_id", conf.ID)
			form.Set("scope", "openid")
			form.Set("state", randomString())
			resp, uri := push(t, conf, form)
			if uri != "" || resp.StatusCode != http.StatusBadRequest || oauthError(t, resp) != "invalid_request" {
				t.Fatalf("PAR with another port: %d %q, want 400 invalid_request", resp.StatusCode, uri)
			}
		})
	})
}

// TestPARStoresNoClientCredentials: a pushed authorization request is stored
// without the credentials the client authenticated with (a client_secret sent
// in the form would otherwise be kept in clear until the request is used).
func TestPARStoresNoClientCredentials(t *testing.T) {
	backends(t, func(t *testing.T, store storage.Store) {
		e := newEnv(t, store)
		r := e.NewRP(clients.Spec{AuthMethod: clients.AuthSecretPost})
		form := url.Values{"response_type": {"code"}, "client_id": {r.ID}, "client_secret": {r.Secret}, "redirect_uri": {redirectURI},
			"scope": {"openid"}, "state": {randomString()}, "code_challenge": {s256(oauth2.GenerateVerifier())}, "code_challenge_method": {"S256"}}
		resp, err := http.PostForm(e.Issuer+"/par", form)
		if err != nil {
			t.Fatal(err)
		}
		var par struct {
			RequestURI string `json:"request_uri"`
		}
		_ = json.NewDecoder(resp.Body).Decode(&par)
		resp.Body.Close()
		if resp.StatusCode != http.StatusCreated || par.RequestURI == "" {
			t.Fatalf("PAR with client_secret_post: %d", resp.StatusCode)
		}
		key := sha256.Sum256([]byte(par.RequestURI)) // the store keys every artefact by its SHA-256
		tok, err := e.Store.GetToken(context.Background(), storage.KindPAR, hex.EncodeToString(key[:]))
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(tok.Data), r.Secret) || strings.Contains(string(tok.Data), "client_secret") {
			t.Fatal("the pushed request was stored with the client secret")
		}
	})
}
