package provider_test

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/ponte-id/ponte/idp"
	"github.com/ponte-id/ponte/idp/clients"
	"github.com/ponte-id/ponte/storage"
)

// idClaims are the ID token claims the tests read.
type idClaims struct {
	Nonce        string   `json:"nonce"`
	ACR          string   `json:"acr"`
	AMR          []string `json:"amr"`
	AuthTime     int64    `json:"auth_time"`
	AuthMethod   string   `json:"auth_method"`
	GivenName    string   `json:"given_name"`
	FiscalNumber string   `json:"fiscal_number"`
	AtHash       string   `json:"at_hash"`
}

// codeFlow runs authorize → login → callback → token exchange → ID token verification.
func codeFlow(r *rp, b *browser, cf string, level idp.Level, opts ...oauth2.AuthCodeOption) (*oauth2.Token, *oidc.IDToken, idClaims) {
	r.Env.T.Helper()
	verifier := oauth2.GenerateVerifier()
	state, nonce := randomString(), randomString()
	opts = append(opts, oauth2.S256ChallengeOption(verifier), oidc.Nonce(nonce))
	loc := login(b, r.Env.Issuer, r.Conf.AuthCodeURL(state, opts...), cf, level)
	q := loc.Query()
	if q.Get("error") != "" {
		r.Env.T.Fatalf("authorization error: %s: %s", q.Get("error"), q.Get("error_description"))
	}
	if q.Get("state") != state {
		r.Env.T.Fatalf("state %q, want %q", q.Get("state"), state)
	}
	if q.Get("iss") != r.Env.Issuer {
		r.Env.T.Fatalf("iss %q, want %q (RFC 9207)", q.Get("iss"), r.Env.Issuer)
	}
	tok, err := r.Conf.Exchange(r.Ctx(), q.Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		r.Env.T.Fatalf("exchange: %v", err)
	}
	raw, _ := tok.Extra("id_token").(string)
	idt, err := r.Verifier.Verify(r.Ctx(), raw)
	if err != nil {
		r.Env.T.Fatalf("verify ID token: %v", err)
	}
	var c idClaims
	if err := idt.Claims(&c); err != nil {
		r.Env.T.Fatal(err)
	}
	if c.Nonce != nonce {
		r.Env.T.Fatalf("nonce %q, want %q", c.Nonce, nonce)
	}
	if err := idt.VerifyAccessToken(tok.AccessToken); err != nil {
		r.Env.T.Fatalf("at_hash: %v", err)
	}
	return tok, idt, c
}

func TestCodeFlow(t *testing.T) {
	backends(t, func(t *testing.T, store storage.Store) {
		e := newEnv(t, store)
		r := e.NewRP(clients.Spec{Name: "Cassetto previdenziale"})
		b := newBrowser(t)
		tok, idt, c := codeFlow(r, b, citizenCF, idp.LevelConsultazione)
		if c.ACR != idp.ACRConsultazione || c.AuthMethod != "pin" || c.AuthTime == 0 || len(c.AMR) == 0 {
			t.Errorf("claims %+v: want acr consultazione, auth_method pin, auth_time, amr", c)
		}
		if c.GivenName != "Mario" || c.FiscalNumber != "" {
			t.Errorf("claims %+v: want profile claims and no fiscal_number without its scope", c)
		}
		if tok.RefreshToken == "" {
			t.Error("no refresh token for offline_access")
		}
		ui, err := r.Provider.UserInfo(r.Ctx(), oauth2.StaticTokenSource(tok))
		if err != nil {
			t.Fatalf("userinfo: %v", err)
		}
		if ui.Subject != idt.Subject {
			t.Errorf("userinfo sub %q, ID token sub %q", ui.Subject, idt.Subject)
		}

		// SSO: a second client is served without a new login, same subject.
		r2 := e.NewRP(clients.Spec{Name: "Second", Scopes: []string{"openid", "fiscal_number"}})
		r2.Conf.Scopes = []string{"openid", "fiscal_number"}
		_, idt2, c2 := codeFlow(r2, b, "", idp.LevelConsultazione)
		if idt2.Subject != idt.Subject || c2.FiscalNumber != citizenCF {
			t.Errorf("SSO: sub %q fiscal %q, want %q %q", idt2.Subject, c2.FiscalNumber, idt.Subject, citizenCF)
		}
	})
}

func TestRefreshRotationAndReuse(t *testing.T) {
	backends(t, func(t *testing.T, store storage.Store) {
		e := newEnv(t, store)
		r := e.NewRP(clients.Spec{})
		tok, _, _ := codeFlow(r, newBrowser(t), citizenCF, idp.LevelConsultazione)
		first := tok.RefreshToken

		refreshed, err := r.Conf.TokenSource(r.Ctx(), &oauth2.Token{RefreshToken: first}).Token()
		if err != nil {
			t.Fatalf("refresh: %v", err)
		}
		if refreshed.RefreshToken == "" || refreshed.RefreshToken == first {
			t.Fatal("refresh token was not rotated")
		}
		if _, err := r.Verifier.Verify(r.Ctx(), refreshed.Extra("id_token").(string)); err != nil {
			t.Errorf("refreshed ID token: %v", err)
		}
		// Reusing the old refresh token revokes the whole family.
		if _, err := r.Conf.TokenSource(r.Ctx(), &oauth2.Token{RefreshToken: first}).Token(); !isOAuthError(err, "invalid_grant") {
			t.Fatalf("reuse: got %v, want invalid_grant", err)
		}
		if _, err := r.Conf.TokenSource(r.Ctx(), &oauth2.Token{RefreshToken: refreshed.RefreshToken}).Token(); err == nil {
			t.Fatal("after reuse, the newest refresh token still works")
		}
		if active := introspect(t, r, refreshed.AccessToken); active {
			t.Fatal("after reuse, the newest access token is still active")
		}
	})
}

func TestRevocationAndIntrospection(t *testing.T) {
	backends(t, func(t *testing.T, store storage.Store) {
		e := newEnv(t, store)
		r := e.NewRP(clients.Spec{})
		tok, _, _ := codeFlow(r, newBrowser(t), citizenCF, idp.LevelConsultazione)
		if !introspect(t, r, tok.AccessToken) {
			t.Fatal("fresh access token is not active")
		}
		req, _ := http.NewRequest(http.MethodPost, e.Issuer+"/revoke", strings.NewReader(url.Values{"token": {tok.RefreshToken}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth(url.QueryEscape(r.ID), url.QueryEscape(r.Secret))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("revoke: %d", resp.StatusCode)
		}
		if _, err := r.Conf.TokenSource(r.Ctx(), &oauth2.Token{RefreshToken: tok.RefreshToken}).Token(); err == nil {
			t.Fatal("revoked refresh token still works")
		}
		if introspect(t, r, tok.AccessToken) {
			t.Fatal("access token of a revoked grant is still active")
		}

		// A public client may not introspect (RFC 7662 §2.1): 401 invalid_client.
		pub := e.NewRP(clients.Spec{AuthMethod: clients.AuthNone})
		resp, err = http.PostForm(e.Issuer+"/introspect", url.Values{"token": {tok.AccessToken}, "client_id": {pub.ID}})
		if err != nil {
			t.Fatal(err)
		}
		if got := oauthError(t, resp); resp.StatusCode != http.StatusUnauthorized || got != "invalid_client" {
			t.Fatalf("public client introspection: %d %q, want 401 invalid_client", resp.StatusCode, got)
		}
	})
}

// introspect asks whether token is active, as the confidential client r.
func introspect(t *testing.T, r *rp, token string) bool {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, r.Env.Issuer+"/introspect", strings.NewReader(url.Values{"token": {token}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(r.ID), url.QueryEscape(r.Secret))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct {
		Active bool `json:"active"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatalf("introspection response (%d): %v", resp.StatusCode, err)
	}
	return out.Active
}

func isOAuthError(err error, code string) bool {
	var re *oauth2.RetrieveError
	if e, ok := err.(*oauth2.RetrieveError); ok {
		re = e
	}
	return re != nil && re.ErrorCode == code
}

func s256(v string) string {
	sum := sha256.Sum256([]byte(v))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}
