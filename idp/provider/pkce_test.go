package provider_test

import (
	"context"
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

// Attacks on PKCE over HTTP, on both storage backends.

// publicRP registers a public client (token_endpoint_auth_method none) that
// sends its client_id in the token request body.
func publicRP(e *env, spec clients.Spec) *rp {
	spec.AuthMethod = clients.AuthNone
	r := e.NewRP(spec)
	r.Conf.Endpoint.AuthStyle = oauth2.AuthStyleInParams
	return r
}

// oauthError reads an RFC 6749 §5.2 error response.
func oauthError(t *testing.T, resp *http.Response) string {
	t.Helper()
	defer resp.Body.Close()
	var out struct {
		Error string `json:"error"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatalf("error response (%d) is not JSON: %v", resp.StatusCode, err)
	}
	return out.Error
}

// push sends a pushed authorization request (RFC 9126) as confidential client r.
func push(t *testing.T, r *rp, form url.Values) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, r.Env.Issuer+"/par", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(r.ID), url.QueryEscape(r.Secret))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusCreated {
		return resp, ""
	}
	defer resp.Body.Close()
	var par struct {
		RequestURI string `json:"request_uri"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&par); err != nil || par.RequestURI == "" {
		t.Fatalf("PAR response: %v %+v", err, par)
	}
	return resp, par.RequestURI
}

// oidcNonce is a fresh nonce parameter.
func oidcNonce() oauth2.AuthCodeOption { return oauth2.SetAuthURLParam("nonce", randomString()) }

// TestWrongVerifierKeepsCode: someone who holds a code but not its verifier
// (a public client's code read from a log, a referrer, another app) sends it
// with a wrong code_verifier. The attempt fails, and the code still yields
// tokens to the client that has the right verifier: the failed attempt does not
// spend it (fosite deletes the PKCE record before comparing; Ponte keeps it
// until the code is redeemed). Once redeemed, the code is spent.
func TestWrongVerifierKeepsCode(t *testing.T) {
	backends(t, func(t *testing.T, store storage.Store) {
		e := newEnv(t, store)
		for _, tc := range []struct {
			name string
			rp   *rp
		}{
			{"public client", publicRP(e, clients.Spec{})},
			{"confidential client", e.NewRP(clients.Spec{})},
		} {
			t.Run(tc.name, func(t *testing.T) {
				r := tc.rp
				verifier := oauth2.GenerateVerifier()
				loc := login(newBrowser(t), e.Issuer, r.Conf.AuthCodeURL(randomString(), oauth2.S256ChallengeOption(verifier)), citizenCF, idp.LevelConsultazione)
				code := loc.Query().Get("code")
				for range 2 {
					if _, err := r.Conf.Exchange(r.Ctx(), code, oauth2.VerifierOption(oauth2.GenerateVerifier())); !isOAuthError(err, "invalid_grant") {
						t.Fatalf("wrong verifier: %v, want invalid_grant", err)
					}
				}
				tok, err := r.Conf.Exchange(r.Ctx(), code, oauth2.VerifierOption(verifier))
				if err != nil {
					t.Fatalf("the right verifier after wrong ones: %v, want tokens", err)
				}
				if _, err := r.Verifier.Verify(r.Ctx(), tok.Extra("id_token").(string)); err != nil {
					t.Fatal(err)
				}
				if _, err := r.Conf.Exchange(r.Ctx(), code, oauth2.VerifierOption(verifier)); !isOAuthError(err, "invalid_grant") {
					t.Fatalf("code redeemed twice: %v, want invalid_grant", err)
				}
			})
		}
	})
}

// TestPKCEEveryClient: PKCE is required of confidential clients too (RFC 9700
// §2.1.1), at /authorize, at /par and at the token endpoint; only a
// confidential client that an administrator exempted goes without, and a
// code issued with a challenge always needs its verifier.
func TestPKCEEveryClient(t *testing.T) {
	backends(t, func(t *testing.T, store storage.Store) {
		e := newEnv(t, store)
		strict := e.NewRP(clients.Spec{})
		exempt := e.NewRP(clients.Spec{PKCEExempt: true})
		if _, _, err := e.Registry.Create(context.Background(), clients.Spec{AuthMethod: clients.AuthNone, PKCEExempt: true,
			RedirectURIs: []string{redirectURI}}); err == nil {
			t.Fatal("a public client was exempted from PKCE")
		}
		b := newBrowser(t)
		codeFlow(strict, b, citizenCF, idp.LevelConsultazione) // an SSO session: the codes below come at once

		// code returns a code issued to r, with PKCE or without.
		code := func(t *testing.T, r *rp, withPKCE bool) string {
			t.Helper()
			opts := []oauth2.AuthCodeOption{oidcNonce()}
			if withPKCE {
				opts = append(opts, oauth2.S256ChallengeOption(oauth2.GenerateVerifier()))
			}
			loc := login(b, e.Issuer, r.Conf.AuthCodeURL(randomString(), opts...), "", idp.LevelConsultazione)
			if c := loc.Query().Get("code"); c != "" {
				return c
			}
			t.Fatalf("no code: %v", loc.Query())
			return ""
		}
		t.Run("authorize without PKCE", func(t *testing.T) {
			for _, tc := range []struct {
				rp        *rp
				wantError string
			}{{strict, "invalid_request"}, {exempt, ""}} {
				resp, _ := b.Get(tc.rp.Conf.AuthCodeURL(randomString(), oidcNonce()))
				loc := rpRedirect(resp)
				if loc == nil || loc.Query().Get("error") != tc.wantError || (tc.wantError == "") != (loc.Query().Get("code") != "") {
					t.Fatalf("client exempt=%v: got %d %v, want error %q", tc.rp == exempt, resp.StatusCode, loc, tc.wantError)
				}
			}
		})
		t.Run("PAR without PKCE", func(t *testing.T) {
			resp, uri := push(t, strict, url.Values{"response_type": {"code"}, "client_id": {strict.ID}, "redirect_uri": {redirectURI},
				"scope": {"openid"}, "state": {randomString()}})
			if uri != "" || resp.StatusCode != http.StatusBadRequest || oauthError(t, resp) != "invalid_request" {
				t.Fatalf("PAR without PKCE: %d, want 400 invalid_request", resp.StatusCode)
			}
		})
		for _, tc := range []struct {
			name      string
			rp        *rp
			withPKCE  bool
			revoke    bool // the administrator withdraws the exemption before the code is redeemed
			wantError string
		}{
			// The code carries a challenge: without a verifier, invalid_grant,
			// whatever the client (RFC 7636 §4.6).
			{name: "PKCE code, no verifier", rp: strict, withPKCE: true, wantError: "invalid_grant"},
			{name: "PKCE code of an exempt client, no verifier", rp: exempt, withPKCE: true, wantError: "invalid_grant"},
			{name: "exempt client without PKCE", rp: exempt},
			// The token endpoint enforces PKCE on its own, not only /authorize.
			{name: "code without PKCE after the exemption is withdrawn", rp: exempt, revoke: true, wantError: "invalid_request"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				c := code(t, tc.rp, tc.withPKCE)
				if tc.revoke {
					if err := e.Store.UpdateClient(context.Background(), tc.rp.ID, func(c storage.Client) (storage.Client, error) {
						c.PKCEExempt = false
						return c, nil
					}); err != nil {
						t.Fatal(err)
					}
					defer func() {
						_ = e.Store.UpdateClient(context.Background(), tc.rp.ID, func(c storage.Client) (storage.Client, error) {
							c.PKCEExempt = true
							return c, nil
						})
					}()
				}
				_, err := tc.rp.Conf.Exchange(tc.rp.Ctx(), c) // no code_verifier
				switch {
				case tc.wantError == "" && err != nil:
					t.Fatalf("exchange: %v", err)
				case tc.wantError != "" && !isOAuthError(err, tc.wantError):
					t.Fatalf("exchange without verifier: %v, want %s", err, tc.wantError)
				}
			})
		}
	})
}
