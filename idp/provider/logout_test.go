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

// TestLogoutHintOfAnotherClient: an id_token_hint issued to client A, sent
// with client_id B, is refused on a page, and the session stays: B cannot
// borrow A's hint to log the citizen out without confirmation, or to reach B's
// post-logout URI.
func TestLogoutHintOfAnotherClient(t *testing.T) {
	backends(t, func(t *testing.T, store storage.Store) {
		e := newEnv(t, store)
		a, b := e.NewRP(clients.Spec{}), e.NewRP(clients.Spec{})
		for _, tc := range []struct {
			name   string
			params func(hint string) url.Values
		}{
			{"client_id of another client", func(h string) url.Values { return url.Values{"id_token_hint": {h}, "client_id": {b.ID}} }},
			{"and its post-logout URI", func(h string) url.Values {
				return url.Values{"id_token_hint": {h}, "client_id": {b.ID}, "post_logout_redirect_uri": {"http://127.0.0.1:9/bye"}}
			}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				br := newBrowser(t)
				tok, _, _ := codeFlow(a, br, citizenCF, idp.LevelConsultazione)
				resp, body := br.Get(e.Issuer + "/logout?" + tc.params(tok.Extra("id_token").(string)).Encode())
				if resp.StatusCode != http.StatusBadRequest || rpRedirect(resp) != nil || strings.Contains(body, `name="confirm"`) {
					t.Fatalf("got %d %s, want the 400 page", resp.StatusCode, resp.Request.URL.Path)
				}
				resp, _ = br.Get(a.Conf.AuthCodeURL(randomString(), oauth2.SetAuthURLParam("prompt", "none"), oauth2.S256ChallengeOption(oauth2.GenerateVerifier())))
				if loc := rpRedirect(resp); loc == nil || loc.Query().Get("code") == "" {
					t.Fatalf("the session ended: prompt=none got %v", loc)
				}
			})
		}
	})
}
