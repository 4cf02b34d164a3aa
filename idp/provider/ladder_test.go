package provider_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"golang.org/x/oauth2"

	"github.com/ponte-id/ponte/idp"
	"github.com/ponte-id/ponte/idp/clients"
	"github.com/ponte-id/ponte/storage"
)

// TestStepUp walks the level ladder of SPEC §2: an ordinary session asked for
// the dispositivo level logs in again; a citizen who stays ordinary gets a token
// without the elevated scope when the level was voluntary, and
// unmet_authentication_requirements when it was essential.
func TestStepUp(t *testing.T) {
	backends(t, func(t *testing.T, store storage.Store) {
		e := newEnv(t, store)
		r := e.NewRP(clients.Spec{Scopes: []string{"openid", "inps.consultazione", "inps.dispositivo"}})
		r.Conf.Scopes = []string{"openid", "inps.consultazione"}
		b := newBrowser(t)
		_, _, c := codeFlow(r, b, citizenCF, idp.LevelConsultazione)
		if c.ACR != idp.ACRConsultazione {
			t.Fatalf("acr %q", c.ACR)
		}

		// The elevated scope: the SSO session is not enough; the chooser explains the step-up.
		r.Conf.Scopes = []string{"openid", "inps.dispositivo"}
		authURL := r.Conf.AuthCodeURL(randomString(), oauth2.S256ChallengeOption(oauth2.GenerateVerifier()))
		resp, body := b.Get(authURL)
		if !strings.HasPrefix(resp.Request.URL.Path, "/login") || !strings.Contains(body, "superiore a quello con cui hai effettuato l&#39;accesso") {
			t.Fatalf("expected the step-up chooser, got %s: %.300s", resp.Request.URL, body)
		}
		if !strings.Contains(body, `value="continue"`) {
			t.Error("voluntary step-up offers no way to continue at the base level")
		}
		// Logging in again at the dispositivo level grants the elevated scope.
		tok, _, c := codeFlow(r, b, citizenCF, idp.LevelDispositivo)
		if c.ACR != idp.ACRDispositivo || !strings.Contains(tok.Extra("scope").(string), "inps.dispositivo") {
			t.Fatalf("after step-up: acr %q scope %q", c.ACR, tok.Extra("scope"))
		}

		cases := []struct {
			name      string
			opts      []oauth2.AuthCodeOption
			action    string
			wantError string
			wantACR   string
		}{
			{name: "voluntary, citizen continues", action: "continue", wantACR: idp.ACRConsultazione},
			{name: "voluntary, citizen cancels", action: "cancel", wantError: "access_denied"},
			{name: "essential, citizen cancels", action: "cancel", wantError: "unmet_authentication_requirements",
				opts: []oauth2.AuthCodeOption{oauth2.SetAuthURLParam("claims", `{"id_token":{"acr":{"essential":true,"values":["`+idp.ACRDispositivo+`"]}}}`)}},
			{name: "essential, continue refused", action: "continue", wantError: "unmet_authentication_requirements",
				opts: []oauth2.AuthCodeOption{oauth2.SetAuthURLParam("claims", `{"id_token":{"acr":{"essential":true,"value":"`+idp.ACRDispositivo+`"}}}`)}},
			{name: "acr_values, citizen continues", action: "continue", wantACR: idp.ACRConsultazione,
				opts: []oauth2.AuthCodeOption{oauth2.SetAuthURLParam("acr_values", idp.ACRDispositivo)}},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				b := newBrowser(t)
				r.Conf.Scopes = []string{"openid", "inps.consultazione"}
				codeFlow(r, b, citizenCF, idp.LevelConsultazione)
				r.Conf.Scopes = []string{"openid", "inps.consultazione", "inps.dispositivo"}
				verifier := oauth2.GenerateVerifier()
				state := randomString()
				resp, body := b.Get(r.Conf.AuthCodeURL(state, append(tc.opts, oauth2.S256ChallengeOption(verifier))...))
				m := challengeRE.FindStringSubmatch(body)
				if m == nil {
					t.Fatalf("no chooser: %s %.300s", resp.Request.URL, body)
				}
				resp, _ = b.Post(e.Issuer+"/login/abort", url.Values{"challenge": {m[1]}, "action": {tc.action}})
				loc := rpRedirect(resp)
				if loc == nil {
					t.Fatalf("no redirect to the RP: %d", resp.StatusCode)
				}
				q := loc.Query()
				if q.Get("state") != state || q.Get("iss") != e.Issuer {
					t.Errorf("state/iss missing from the response: %v", q)
				}
				if tc.wantError != "" {
					if q.Get("error") != tc.wantError {
						t.Fatalf("error %q, want %q", q.Get("error"), tc.wantError)
					}
					return
				}
				tok, err := r.Conf.Exchange(r.Ctx(), q.Get("code"), oauth2.VerifierOption(verifier))
				if err != nil {
					t.Fatal(err)
				}
				if strings.Contains(tok.Extra("scope").(string), "inps.dispositivo") {
					t.Fatal("elevated scope granted to an ordinary session: a silent upgrade")
				}
				idt, err := r.Verifier.Verify(r.Ctx(), tok.Extra("id_token").(string))
				if err != nil {
					t.Fatal(err)
				}
				var c idClaims
				_ = idt.Claims(&c)
				if c.ACR != tc.wantACR {
					t.Fatalf("acr %q, want %q", c.ACR, tc.wantACR)
				}
			})
		}
	})
}

func TestPrompts(t *testing.T) {
	backends(t, func(t *testing.T, store storage.Store) {
		e := newEnv(t, store)
		r := e.NewRP(clients.Spec{})
		cases := []struct {
			name      string
			loggedIn  bool
			opts      []oauth2.AuthCodeOption
			wantLogin bool
			wantError string
		}{
			{name: "prompt=none without session", opts: []oauth2.AuthCodeOption{oauth2.SetAuthURLParam("prompt", "none")}, wantError: "login_required"},
			{name: "prompt=none with session", loggedIn: true, opts: []oauth2.AuthCodeOption{oauth2.SetAuthURLParam("prompt", "none")}},
			{name: "prompt=login with session", loggedIn: true, opts: []oauth2.AuthCodeOption{oauth2.SetAuthURLParam("prompt", "login")}, wantLogin: true},
			{name: "max_age=0 with session", loggedIn: true, opts: []oauth2.AuthCodeOption{oauth2.SetAuthURLParam("max_age", "0")}, wantLogin: true},
			{name: "max_age=3600 with session", loggedIn: true, opts: []oauth2.AuthCodeOption{oauth2.SetAuthURLParam("max_age", "3600")}},
			{name: "login_hint for another citizen", loggedIn: true, opts: []oauth2.AuthCodeOption{oauth2.SetAuthURLParam("login_hint", otherCF)}, wantLogin: true},
			{name: "login_hint for the same citizen", loggedIn: true, opts: []oauth2.AuthCodeOption{oauth2.SetAuthURLParam("login_hint", citizenCF)}},
			{name: "bad max_age", loggedIn: true, opts: []oauth2.AuthCodeOption{oauth2.SetAuthURLParam("max_age", "soon")}, wantError: "invalid_request"},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				b := newBrowser(t)
				if tc.loggedIn {
					codeFlow(r, b, citizenCF, idp.LevelConsultazione)
				}
				verifier := oauth2.GenerateVerifier()
				resp, body := b.Get(r.Conf.AuthCodeURL(randomString(), append(tc.opts, oauth2.S256ChallengeOption(verifier), oauth2.SetAuthURLParam("nonce", randomString()))...))
				loc := rpRedirect(resp)
				switch {
				case tc.wantLogin:
					if loc != nil || !strings.HasPrefix(resp.Request.URL.Path, "/login") {
						t.Fatalf("expected the login page, got %d %v", resp.StatusCode, loc)
					}
					// Logging in answers the request (prompt=login is satisfied by this login).
					m := challengeRE.FindStringSubmatch(body)
					resp, _ = b.Post(e.Issuer+"/login/test/", url.Values{"challenge": {m[1]}, "cf": {citizenCF}, "level": {"1"}})
					if loc = rpRedirect(resp); loc == nil || loc.Query().Get("code") == "" {
						t.Fatalf("after login: %d %v", resp.StatusCode, loc)
					}
					if _, err := r.Conf.Exchange(r.Ctx(), loc.Query().Get("code"), oauth2.VerifierOption(verifier)); err != nil {
						t.Fatalf("exchange after re-login: %v", err)
					}
				case tc.wantError != "":
					if loc == nil || loc.Query().Get("error") != tc.wantError {
						t.Fatalf("want error %s, got %d %v", tc.wantError, resp.StatusCode, loc)
					}
				default:
					if loc == nil || loc.Query().Get("code") == "" {
						t.Fatalf("want a code without login, got %d %s", resp.StatusCode, resp.Request.URL)
					}
					if _, err := r.Conf.Exchange(r.Ctx(), loc.Query().Get("code"), oauth2.VerifierOption(verifier)); err != nil {
						t.Fatalf("exchange: %v", err)
					}
				}
			})
		}
	})
}

// TestBadRequests checks that hostile or malformed requests get the protocol's
// error and never a redirect to an unregistered URI.
func TestBadRequests(t *testing.T) {
	backends(t, func(t *testing.T, store storage.Store) {
		e := newEnv(t, store)
		conf := e.NewRP(clients.Spec{})
		pub := e.NewRP(clients.Spec{AuthMethod: clients.AuthNone})
		verifier := oauth2.GenerateVerifier()
		base := func(c *rp, extra url.Values) string {
			v := url.Values{"response_type": {"code"}, "client_id": {c.ID}, "redirect_uri": {redirectURI},
				"scope": {"openid"}, "state": {randomString()}, "nonce": {randomString()}}
			for k, vals := range extra {
				v[k] = vals
			}
			for k, vals := range v {
				if len(vals) == 1 && vals[0] == "" {
					delete(v, k)
				}
			}
			return e.Issuer + "/authorize?" + v.Encode()
		}
		cases := []struct {
			name       string
			url        string
			wantStatus int    // a page for the person
			wantError  string // a redirect to the RP
		}{
			{name: "unknown client", url: base(&rp{ID: "nobody"}, nil), wantStatus: http.StatusUnauthorized},
			{name: "wrong redirect_uri", url: base(conf, url.Values{"redirect_uri": {"https://evil.example/cb"}}), wantStatus: http.StatusBadRequest},
			{name: "redirect_uri prefix", url: base(conf, url.Values{"redirect_uri": {redirectURI + "/x"}}), wantStatus: http.StatusBadRequest},
			{name: "public client without PKCE", url: base(pub, nil), wantError: "invalid_request"},
			{name: "plain PKCE", url: base(pub, url.Values{"code_challenge": {verifier}, "code_challenge_method": {"plain"}}), wantError: "invalid_request"},
			{name: "state too short", url: base(conf, url.Values{"state": {"abc"}}), wantError: "invalid_state"},
			{name: "nonce too short", url: base(conf, url.Values{"nonce": {"abc"}, "code_challenge": {s256(verifier)}, "code_challenge_method": {"S256"}}), wantError: "invalid_request"},
			{name: "implicit flow", url: base(conf, url.Values{"response_type": {"id_token token"}}), wantError: "unsupported_response_type"},
			{name: "unknown scope", url: base(conf, url.Values{"scope": {"openid admin"}}), wantError: "invalid_scope"},
			{name: "claims not JSON", url: base(conf, url.Values{"claims": {"{"}}), wantError: "invalid_request"},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				resp, body := newBrowser(t).Get(tc.url)
				loc := rpRedirect(resp)
				if tc.wantStatus != 0 {
					if loc != nil || resp.StatusCode != tc.wantStatus {
						t.Fatalf("got %d %v, want page %d", resp.StatusCode, loc, tc.wantStatus)
					}
					if !strings.Contains(resp.Header.Get("Content-Type"), "text/html") || strings.Contains(body, "goroutine") {
						t.Fatalf("want a plain HTML page, got %s: %.200s", resp.Header.Get("Content-Type"), body)
					}
					return
				}
				if loc == nil {
					t.Fatalf("want a redirect with %s, got %d %.300s", tc.wantError, resp.StatusCode, body)
				}
				if got := loc.Query().Get("error"); got != tc.wantError {
					t.Fatalf("error %q (%s), want %q", got, loc.Query().Get("error_description"), tc.wantError)
				}
			})
		}
	})
}

func TestTokenEndpointErrors(t *testing.T) {
	backends(t, func(t *testing.T, store storage.Store) {
		e := newEnv(t, store)
		r := e.NewRP(clients.Spec{})
		b := newBrowser(t)
		verifier := oauth2.GenerateVerifier()
		loc := login(b, e.Issuer, r.Conf.AuthCodeURL(randomString(), oauth2.S256ChallengeOption(verifier)), citizenCF, idp.LevelConsultazione)
		code := loc.Query().Get("code")

		bad := r.Conf
		bad.ClientSecret = "wrong"
		if _, err := bad.Exchange(r.Ctx(), code, oauth2.VerifierOption(verifier)); !isOAuthError(err, "invalid_client") {
			t.Fatalf("bad secret: %v", err)
		}
		if _, err := r.Conf.Exchange(r.Ctx(), code, oauth2.VerifierOption("wrong-verifier-wrong-verifier-wrong-verifier-x")); !isOAuthError(err, "invalid_grant") {
			t.Fatalf("bad verifier: %v", err)
		}
		// A refused attempt is not a use: the right client with the right
		// verifier still redeems the code (TestWrongVerifierKeepsCode), once
		// (RFC 6749 §10.5).
		if _, err := r.Conf.Exchange(r.Ctx(), code, oauth2.VerifierOption(verifier)); err != nil {
			t.Fatalf("code after refused attempts: %v", err)
		}
		if _, err := r.Conf.Exchange(r.Ctx(), code, oauth2.VerifierOption(verifier)); !isOAuthError(err, "invalid_grant") {
			t.Fatalf("code after its redemption: %v", err)
		}

		// A code reused after success fails and revokes what it issued (RFC 6749 §4.1.2).
		verifier = oauth2.GenerateVerifier()
		loc = login(b, e.Issuer, r.Conf.AuthCodeURL(randomString(), oauth2.S256ChallengeOption(verifier)), "", idp.LevelConsultazione)
		tok, err := r.Conf.Exchange(r.Ctx(), loc.Query().Get("code"), oauth2.VerifierOption(verifier))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := r.Conf.Exchange(r.Ctx(), loc.Query().Get("code"), oauth2.VerifierOption(verifier)); !isOAuthError(err, "invalid_grant") {
			t.Fatalf("code reuse: %v", err)
		}
		if introspect(t, r, tok.AccessToken) {
			t.Fatal("tokens of a reused code are still active")
		}
		if _, err := r.Conf.TokenSource(r.Ctx(), &oauth2.Token{RefreshToken: tok.RefreshToken}).Token(); err == nil {
			t.Fatal("the refresh token of a reused code still works")
		}

		resp, err := http.PostForm(e.Issuer+"/token", url.Values{"grant_type": {"password"}, "client_id": {r.ID}, "client_secret": {r.Secret}})
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Fatalf("password grant: %d", resp.StatusCode)
		}
	})
}
