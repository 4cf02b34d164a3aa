package provider_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	jose "github.com/go-jose/go-jose/v4"
	josejwt "github.com/go-jose/go-jose/v4/jwt"
	"golang.org/x/oauth2"

	"github.com/ponte-id/ponte/idp"
	"github.com/ponte-id/ponte/idp/clients"
	"github.com/ponte-id/ponte/idp/keys"
	"github.com/ponte-id/ponte/internal/oidctest"
	"github.com/ponte-id/ponte/storage"
)

func TestLogout(t *testing.T) {
	backends(t, func(t *testing.T, store storage.Store) {
		e := newEnv(t, store)
		r := e.NewRP(clients.Spec{})
		cases := []struct {
			name       string
			params     func(idToken string) url.Values
			wantTarget string // redirect target; "" for a page
			wantStatus int
			loggedOut  bool
		}{
			{name: "hint and registered URI", loggedOut: true, wantTarget: "http://127.0.0.1:9/bye?state=xyz",
				params: func(h string) url.Values {
					return url.Values{"id_token_hint": {h}, "post_logout_redirect_uri": {"http://127.0.0.1:9/bye"}, "state": {"xyz"}}
				}},
			{name: "unregistered URI", wantStatus: http.StatusBadRequest,
				params: func(h string) url.Values {
					return url.Values{"id_token_hint": {h}, "post_logout_redirect_uri": {"http://127.0.0.1:9/bye/other"}}
				}},
			{name: "URI without client", wantStatus: http.StatusBadRequest,
				params: func(string) url.Values { return url.Values{"post_logout_redirect_uri": {"http://127.0.0.1:9/bye"}} }},
			{name: "forged hint", wantStatus: http.StatusBadRequest,
				params: func(h string) url.Values { return url.Values{"id_token_hint": {h[:len(h)-4] + "AAAA"}} }},
			{name: "no hint asks to confirm", wantStatus: http.StatusOK,
				params: func(string) url.Values { return url.Values{"client_id": {r.ID}} }},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				b := newBrowser(t)
				tok, _, _ := codeFlow(r, b, citizenCF, idp.LevelConsultazione)
				resp, body := b.Get(e.Issuer + "/logout?" + tc.params(tok.Extra("id_token").(string)).Encode())
				if tc.wantTarget != "" {
					if loc := rpRedirect(resp); loc == nil || loc.String() != tc.wantTarget {
						t.Fatalf("got %d %v, want redirect to %s", resp.StatusCode, loc, tc.wantTarget)
					}
				} else if resp.StatusCode != tc.wantStatus {
					t.Fatalf("status %d, want %d: %.200s", resp.StatusCode, tc.wantStatus, body)
				}
				// Logged out means a prompt=none request now fails.
				resp, _ = b.Get(r.Conf.AuthCodeURL(randomString(), oauth2.SetAuthURLParam("prompt", "none"), oauth2.S256ChallengeOption(oauth2.GenerateVerifier())))
				loc := rpRedirect(resp)
				if gotOut := loc != nil && loc.Query().Get("error") == "login_required"; gotOut != tc.loggedOut {
					t.Fatalf("logged out = %v, want %v", gotOut, tc.loggedOut)
				}
			})
		}

		t.Run("confirmed by the person", func(t *testing.T) {
			b := newBrowser(t)
			codeFlow(r, b, citizenCF, idp.LevelConsultazione)
			resp, _ := b.Post(e.Issuer+"/logout", url.Values{"client_id": {r.ID}, "post_logout_redirect_uri": {"http://127.0.0.1:9/bye"}, "confirm": {"yes"}})
			if loc := rpRedirect(resp); loc == nil || loc.Path != "/bye" {
				t.Fatalf("got %d %v", resp.StatusCode, loc)
			}
		})
		t.Run("cross-site post refused", func(t *testing.T) {
			if got := oidctest.CrossSitePost(t, e.Issuer+"/logout", url.Values{"confirm": {"yes"}}); got != http.StatusForbidden {
				t.Fatalf("cross-site logout post: %d, want 403", got)
			}
		})
	})
}

// TestKeyRotation: a token signed before a rotation still verifies after it,
// the new key is published before it signs, and RS256 clients get RS256.
func TestKeyRotation(t *testing.T) {
	backends(t, func(t *testing.T, store storage.Store) {
		e := newEnv(t, store)
		r := e.NewRP(clients.Spec{})
		rs := e.NewRP(clients.Spec{SigningAlg: "RS256"})
		b := newBrowser(t)
		before, _, _ := codeFlow(r, b, citizenCF, idp.LevelConsultazione)
		oldKid := kid(t, before.Extra("id_token").(string))

		rec, err := e.Keys.Rotate(context.Background(), keys.ES256)
		if err != nil {
			t.Fatal(err)
		}
		if !jwksHas(t, e, rec.ID) || !jwksHas(t, e, oldKid) {
			t.Fatal("after rotation, both keys must be published")
		}
		// Within the publish delay the old key still signs.
		after, _, _ := codeFlow(r, b, "", idp.LevelConsultazione)
		if got := kid(t, after.Extra("id_token").(string)); got != oldKid {
			t.Errorf("signed with %s during the publish delay, want the old key %s", got, oldKid)
		}
		// The token issued before rotation verifies with a fresh verifier (fresh JWKS fetch).
		fresh := e.NewRP(clients.Spec{})
		fresh.Verifier = fresh.Provider.Verifier(&oidc.Config{SkipClientIDCheck: true, SupportedSigningAlgs: []string{"ES256", "RS256"}})
		if _, err := fresh.Verifier.Verify(fresh.Ctx(), before.Extra("id_token").(string)); err != nil {
			t.Errorf("pre-rotation token no longer verifies: %v", err)
		}
		tokRS, _, _ := codeFlow(rs, b, "", idp.LevelConsultazione)
		if alg := header(t, tokRS.Extra("id_token").(string))["alg"]; alg != "RS256" {
			t.Errorf("RS256 client got %v", alg)
		}
	})
}

// TestPARAndPairwise: a pushed request resumes after the login; a client with a
// sector identifier sees a pairwise subject that differs from the public one.
func TestPARAndPairwise(t *testing.T) {
	backends(t, func(t *testing.T, store storage.Store) {
		e := newEnv(t, store)
		public := e.NewRP(clients.Spec{})
		pairwise := e.NewRP(clients.Spec{SectorIdentifier: "https://sector.example.it"})
		b := newBrowser(t)
		_, idt, _ := codeFlow(public, b, citizenCF, idp.LevelConsultazione)

		verifier := oauth2.GenerateVerifier()
		form := url.Values{"response_type": {"code"}, "client_id": {pairwise.ID}, "redirect_uri": {redirectURI},
			"scope": {"openid"}, "state": {randomString()}, "nonce": {randomString()}, "prompt": {"login"},
			"code_challenge": {s256(verifier)}, "code_challenge_method": {"S256"}}
		req, _ := http.NewRequest(http.MethodPost, e.Issuer+"/par", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth(url.QueryEscape(pairwise.ID), url.QueryEscape(pairwise.Secret))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var par struct {
			RequestURI string `json:"request_uri"`
		}
		_ = json.NewDecoder(resp.Body).Decode(&par)
		resp.Body.Close()
		if resp.StatusCode != http.StatusCreated || par.RequestURI == "" {
			t.Fatalf("PAR: %d %+v", resp.StatusCode, par)
		}
		loc := login(b, e.Issuer, e.Issuer+"/authorize?"+url.Values{"client_id": {pairwise.ID}, "request_uri": {par.RequestURI}}.Encode(), citizenCF, idp.LevelConsultazione)
		tok, err := pairwise.Conf.Exchange(pairwise.Ctx(), loc.Query().Get("code"), oauth2.VerifierOption(verifier))
		if err != nil {
			t.Fatalf("exchange after PAR: %v", err)
		}
		pidt, err := pairwise.Verifier.Verify(pairwise.Ctx(), tok.Extra("id_token").(string))
		if err != nil {
			t.Fatal(err)
		}
		if pidt.Subject == idt.Subject || len(pidt.Subject) < 32 {
			t.Fatalf("pairwise sub %q vs public %q", pidt.Subject, idt.Subject)
		}
	})
}

// TestPrivateKeyJWT authenticates a client with a signed assertion, and refuses its replay.
func TestPrivateKeyJWT(t *testing.T) {
	backends(t, func(t *testing.T, store storage.Store) {
		e := newEnv(t, store)
		key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		set, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: key.Public(), KeyID: "rp1", Algorithm: "ES256", Use: "sig"}}})
		r := e.NewRP(clients.Spec{AuthMethod: clients.AuthPrivateKeyJWT, JWKS: set})
		b := newBrowser(t)
		verifier := oauth2.GenerateVerifier()
		loc := login(b, e.Issuer, r.Conf.AuthCodeURL(randomString(), oauth2.S256ChallengeOption(verifier)), citizenCF, idp.LevelConsultazione)

		signer, _ := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: key}, (&jose.SignerOptions{}).WithHeader("kid", "rp1"))
		assertion, _ := josejwt.Signed(signer).Claims(josejwt.Claims{
			Issuer: r.ID, Subject: r.ID, Audience: josejwt.Audience{e.Issuer + "/token"}, ID: randomString(),
			Expiry: josejwt.NewNumericDate(time.Now().Add(time.Minute)), IssuedAt: josejwt.NewNumericDate(time.Now()),
		}).Serialize()
		post := func(code string) (int, string) {
			resp, err := http.PostForm(e.Issuer+"/token", url.Values{
				"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {redirectURI}, "code_verifier": {verifier},
				"client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"}, "client_assertion": {assertion},
			})
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var body struct {
				Error string `json:"error"`
			}
			_ = json.NewDecoder(resp.Body).Decode(&body)
			return resp.StatusCode, body.Error
		}
		if got, _ := post(loc.Query().Get("code")); got != http.StatusOK {
			t.Fatalf("private_key_jwt exchange: %d", got)
		}
		loc = login(b, e.Issuer, r.Conf.AuthCodeURL(randomString(), oauth2.S256ChallengeOption(verifier)), "", idp.LevelConsultazione)
		if got, code := post(loc.Query().Get("code")); got != http.StatusBadRequest || code != "jti_known" {
			t.Fatalf("a replayed client assertion: %d %q, want 400 jti_known", got, code)
		}
	})
}

func kid(t *testing.T, token string) string {
	k, _ := header(t, token)["kid"].(string)
	return k
}

func header(t *testing.T, token string) map[string]any {
	t.Helper()
	tok, err := jose.ParseSignedCompact(token, []jose.SignatureAlgorithm{jose.ES256, jose.RS256})
	if err != nil {
		t.Fatal(err)
	}
	h := tok.Signatures[0].Protected
	return map[string]any{"kid": h.KeyID, "alg": h.Algorithm}
}

func jwksHas(t *testing.T, e *env, kid string) bool {
	t.Helper()
	resp, err := http.Get(e.Issuer + "/jwks.json")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var set jose.JSONWebKeySet
	_ = json.NewDecoder(resp.Body).Decode(&set)
	return len(set.Key(kid)) == 1
}
