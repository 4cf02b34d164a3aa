package admin_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/ponte-id/ponte/api"
	"github.com/ponte-id/ponte/idp"
	"github.com/ponte-id/ponte/idp/admin"
	"github.com/ponte-id/ponte/idp/provider"
	"github.com/ponte-id/ponte/idp/staff"
	"github.com/ponte-id/ponte/internal/oidctest"
	"github.com/ponte-id/ponte/internal/ratelimit"
	"github.com/ponte-id/ponte/storage"
	"github.com/ponte-id/ponte/storage/storagetest"
)

// TestClientLifecycle: a relying party created, read, listed, replaced,
// moved off and back onto a secret, and deleted through the API, each step
// audited under the token that made it.
func TestClientLifecycle(t *testing.T) {
	for _, b := range storagetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			f := newFixture(t, b.Open(t))
			tok := f.tokens["admin"]
			r := f.call("POST", "/clients", tok, map[string]any{
				"client_id": "cassetto", "client_name": "Cassetto previdenziale",
				"redirect_uris": []string{"https://cassetto.inps.it/cb"}, "post_logout_redirect_uris": []string{"https://cassetto.inps.it/bye"},
				"scopes": []string{"openid", "profile", "fiscal_number", "inps.dispositivo"}, "id_token_signed_response_alg": "RS256",
				"sector_identifier_uri": "https://inps.it/sector", "access_token_ttl": "5m", "refresh_token_ttl": "720h", "id_token_ttl": "15m",
				"backchannel_logout_uri": "https://cassetto.inps.it/logout/backchannel", "backchannel_logout_session_required": true,
			})
			if r.status != 201 || r.header.Get("Location") != admin.Prefix+"/clients/cassetto" || len(r.body["client_secret"].(string)) < 43 ||
				r.body["dispositivo_allowed"] != true || r.body["access_token_ttl"] != "5m0s" || r.body["token_endpoint_auth_method"] != "client_secret_basic" {
				t.Fatalf("create: %d %s", r.status, r.raw)
			}
			r = f.call("GET", "/clients/cassetto", tok, nil)
			if r.status != 200 || r.body["client_secret"] != nil || r.body["sector_identifier_uri"] != "https://inps.it/sector" || r.body["id_token_signed_response_alg"] != "RS256" ||
				r.body["backchannel_logout_uri"] != "https://cassetto.inps.it/logout/backchannel" || r.body["backchannel_logout_session_required"] != true {
				t.Fatalf("read: %s", r.raw)
			}
			if strings.Contains(string(f.call("GET", "/clients", tok, nil).raw), `"client_secret":`) {
				t.Fatal("the list shows something of a secret")
			}
			stored, _ := f.store.GetClient(t.Context(), "cassetto")
			// Off a secret: the secret is dropped.
			jwks := `{"keys":[{"kty":"EC","crv":"P-256","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}]}`
			r = f.call("PUT", "/clients/cassetto", tok, map[string]any{"redirect_uris": []string{"https://cassetto.inps.it/cb"},
				"token_endpoint_auth_method": "private_key_jwt", "jwks": json.RawMessage(jwks)})
			if r.status != 200 || r.body["client_secret"] != nil || r.body["dispositivo_allowed"] != false || r.body["jwks"] == nil {
				t.Fatalf("to private_key_jwt: %s", r.raw)
			}
			after, _ := f.store.GetClient(t.Context(), "cassetto")
			if len(after.SecretHash) != 0 || !after.CreatedAt.Equal(stored.CreatedAt) {
				t.Fatalf("after moving off a secret: hash %x, created %v (was %v)", after.SecretHash, after.CreatedAt, stored.CreatedAt)
			}
			// Back onto a secret: a new one, shown once.
			r = f.call("PUT", "/clients/cassetto", tok, map[string]any{"client_id": "cassetto", "redirect_uris": []string{"https://cassetto.inps.it/cb"}, "token_endpoint_auth_method": "client_secret_post"})
			if r.status != 200 || r.body["client_secret"] == nil {
				t.Fatalf("back to a secret: %s", r.raw)
			}
			// A replacement that keeps a secret method keeps the secret.
			r = f.call("PUT", "/clients/cassetto", tok, map[string]any{"redirect_uris": []string{"https://cassetto.inps.it/cb3"}, "token_endpoint_auth_method": "client_secret_basic"})
			kept, _ := f.store.GetClient(t.Context(), "cassetto")
			if r.status != 200 || r.body["client_secret"] != nil || len(kept.SecretHash) == 0 {
				t.Fatalf("secret method kept: %s", r.raw)
			}
			if r := f.call("DELETE", "/clients/cassetto", tok, nil); r.status != 204 {
				t.Fatalf("delete: %d", r.status)
			}
			if r := f.call("GET", "/clients/cassetto", tok, nil); r.status != 404 {
				t.Fatalf("after delete: %d", r.status)
			}
			r = f.call("GET", "/audit?subject=client:cassetto", f.tokens["auditor"], nil)
			var got []string
			for _, e := range r.body["events"].([]any) {
				ev := e.(map[string]any)
				if ev["actor"] != "token:"+f.ids["admin"] || ev["channel"] != "api" {
					t.Errorf("event %v not under the admin's token", ev)
				}
				got = append(got, ev["action"].(string))
			}
			want := "client.created client.updated client.updated client.updated client.deleted"
			if strings.Join(got, " ") != want {
				t.Fatalf("audit %v, want %s", got, want)
			}
		})
	}
}

// TestStaffAndTokensThroughAPI: a role granted and revoked, a token issued
// (shown once, then working with its roles only) and revoked (then 401).
func TestStaffAndTokensThroughAPI(t *testing.T) {
	f := newFixture(t, storagetest.SQLite(t))
	tok := f.tokens["admin"]
	if r := f.call("POST", "/staff", tok, map[string]any{"fiscal_number": strings.ToLower(otherCF), "role": "operator-contact-center"}); r.status != 201 || r.body["fiscal_number"] != otherCF {
		t.Fatalf("grant: %s", r.raw)
	}
	r := f.call("GET", "/staff", f.tokens["auditor"], nil)
	if !strings.Contains(string(r.raw), `"fiscal_number":"`+otherCF+`","role":"operator-contact-center"`) {
		t.Fatalf("staff: %s", r.raw)
	}
	if r := f.call("DELETE", "/staff/"+otherCF+"/operator-contact-center", tok, nil); r.status != 204 {
		t.Fatalf("revoke: %d %s", r.status, r.raw)
	}
	r = f.call("POST", "/tokens", tok, map[string]any{"name": "audit robot", "roles": []string{"auditor"}, "ttl": "24h"})
	issued, _ := r.body["token"].(string)
	id, _ := r.body["id"].(string)
	if r.status != 201 || !strings.HasPrefix(issued, "pt_"+id+"_") {
		t.Fatalf("token: %s", r.raw)
	}
	if r := f.call("GET", "/tokens", tok, nil); strings.Contains(string(r.raw), issued[len("pt_"+id+"_"):]) || !strings.Contains(string(r.raw), id) {
		t.Fatalf("the list shows the secret or misses the token: %s", r.raw)
	}
	if r := f.call("GET", "/audit", issued, nil); r.status != 200 {
		t.Fatalf("the new token cannot read the trail: %d", r.status)
	}
	if r := f.call("GET", "/clients", issued, nil); r.status != 403 {
		t.Fatalf("an auditor's token lists clients: %d", r.status)
	}
	if r := f.call("DELETE", "/tokens/"+id, tok, nil); r.status != 204 {
		t.Fatalf("revoke token: %d", r.status)
	}
	if r := f.call("GET", "/audit", issued, nil); r.status != 401 {
		t.Fatalf("a revoked token still works: %d", r.status)
	}
}

// TestKeysThroughAPI: a rotation publishes a new key and retires the old of
// its algorithm; no private part is ever shown.
func TestKeysThroughAPI(t *testing.T) {
	f := newFixture(t, storagetest.SQLite(t))
	before := f.call("GET", "/keys", f.tokens["auditor"], nil)
	r := f.call("POST", "/keys", f.tokens["admin"], map[string]any{"alg": "ES256"})
	kid, _ := r.body["kid"].(string)
	if r.status != 201 || r.body["state"] != "active" || r.body["alg"] != "ES256" {
		t.Fatalf("rotate: %s", r.raw)
	}
	after := f.call("GET", "/keys", f.tokens["admin"], nil)
	keys := after.body["keys"].([]any)
	if len(keys) != len(before.body["keys"].([]any))+1 || keys[0].(map[string]any)["kid"] != kid {
		t.Fatalf("keys after rotation: %s", after.raw)
	}
	retired := 0
	for _, k := range keys {
		if k.(map[string]any)["state"] == "retired" {
			retired++
		}
	}
	if retired != 1 || strings.Contains(string(after.raw), "sealed") || strings.Contains(string(after.raw), `"d"`) {
		t.Fatalf("retired %d: %s", retired, after.raw)
	}
}

// TestAuditSearchAndExport: filters, pages, and both exports (the CSV
// keeps a spreadsheet from running a formula); exporting is audited.
func TestAuditSearchAndExport(t *testing.T) {
	for _, b := range storagetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			f := newFixture(t, b.Open(t))
			ctx := t.Context()
			start := f.clock.now()
			for i, e := range []storage.AuditEvent{
				{FiscalNumber: otherCF, Event: "issued", Channel: "sede", Operator: "op-7", Detail: "=HYPERLINK(\"http://evil\")"},
				{FiscalNumber: otherCF, Event: "revoked", Channel: "contact_center", Operator: "op-8"},
				{Event: "client.created", Channel: "api", Operator: "token:x", Target: "client:a", Detail: "+1, \"quoted\"\nline"},
			} {
				e.At = start.Add(time.Duration(i+1) * time.Minute)
				if err := f.store.AppendAudit(ctx, e); err != nil {
					t.Fatal(err)
				}
			}
			aud := f.tokens["auditor"]
			from := url.QueryEscape(start.Add(time.Minute).Format(time.RFC3339))
			to := url.QueryEscape(start.Add(3 * time.Minute).Format(time.RFC3339))
			for q, want := range map[string]string{
				"?subject=" + otherCF:                 "issued revoked",
				"?actor=op-8":                         "revoked",
				"?action=client.created":              "client.created",
				"?subject=client:a":                   "client.created",
				"?from=" + from + "&to=" + to:         "issued revoked",
				"?from=" + from + "&subject=client:a": "client.created",
			} {
				r := f.call("GET", "/audit"+q, aud, nil)
				var got []string
				for _, e := range r.body["events"].([]any) {
					got = append(got, e.(map[string]any)["action"].(string))
				}
				if strings.Join(got, " ") != want {
					t.Errorf("%s: %v, want %s", q, got, want)
				}
			}
			// Pages: all events, two at a time.
			var all []string
			q := "/audit?limit=2"
			for range 20 {
				r := f.call("GET", q, aud, nil)
				for _, e := range r.body["events"].([]any) {
					all = append(all, e.(map[string]any)["action"].(string))
				}
				next, ok := r.body["next_after"].(float64)
				if !ok {
					break
				}
				q = "/audit?limit=2&after=" + strings.TrimSuffix(strings.TrimSuffix(jsonNum(next), ".0"), "e+00")
			}
			var direct []string
			_ = f.store.SearchAudit(ctx, storage.AuditQuery{}, func(e storage.AuditEvent) error { direct = append(direct, e.Event); return nil })
			if strings.Join(all, " ") != strings.Join(direct, " ") {
				t.Fatalf("paged %v, want %v", all, direct)
			}
			// CSV.
			r := f.call("GET", "/audit/export?format=csv&subject="+otherCF, aud, nil)
			rows, err := csv.NewReader(bytes.NewReader(r.raw)).ReadAll()
			if err != nil || r.status != 200 || !strings.HasPrefix(r.header.Get("Content-Type"), "text/csv") || len(rows) != 3 {
				t.Fatalf("csv: %v %d %s", err, r.status, r.raw)
			}
			if strings.Join(rows[0], ",") != "id,at,actor,action,channel,fiscal_number,target,detail" || rows[1][3] != "issued" || rows[1][7] != `'=HYPERLINK("http://evil")` {
				t.Fatalf("csv rows: %q", rows)
			}
			// JSON.
			r = f.call("GET", "/audit/export?subject=client:a", aud, nil)
			var events []map[string]any
			if err := json.Unmarshal(r.raw, &events); err != nil || len(events) != 1 || events[0]["detail"] != "+1, \"quoted\"\nline" {
				t.Fatalf("json export: %v %s", err, r.raw)
			}
			for _, p := range f.doc.validate(map[string]any{"type": "array", "items": map[string]any{"$ref": "#/components/schemas/Event"}}, anyJSON(r.raw), "export") {
				t.Error(p)
			}
			// An empty export is an empty array.
			if r := f.call("GET", "/audit/export?actor=nobody", aud, nil); strings.TrimSpace(string(r.raw)) != "[]" {
				t.Fatalf("empty export: %q", r.raw)
			}
			r = f.call("GET", "/audit?action=audit.exported", aud, nil)
			if events := r.body["events"].([]any); len(events) != 3 || events[0].(map[string]any)["actor"] != "token:"+f.ids["auditor"] {
				t.Fatalf("exports audited: %s", r.raw)
			}
		})
	}
}

func jsonNum(f float64) string { b, _ := json.Marshal(f); return string(b) }

func anyJSON(b []byte) any {
	var v any
	_ = json.Unmarshal(b, &v)
	return v
}

// TestSecretRotationOverlap: a client created through the API completes a
// login (go-oidc, x/oauth2) on a real provider; after a rotation with an
// overlap, the old and the new secret both redeem codes; once the overlap
// has passed the old one is invalid_client at the token endpoint, the new
// one still authenticates (invalid_grant for a made-up code: fosite checks
// auth_time against the real clock, so no login follows the clock's jump);
// a rotation without overlap ends the old at once.
func TestSecretRotationOverlap(t *testing.T) {
	for _, b := range storagetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			store := b.Open(t)
			clk := &clock{t: time.Now().UTC()}
			var svc *admin.Service
			var st *staff.Service
			env := oidctest.Start(t, store, oidctest.Options{
				Methods: func(string) []idp.Authenticator { return []idp.Authenticator{oidctest.FormLogin{}} },
				Tweak:   func(c *provider.Config) { c.Now = clk.now },
				Routes: func(env *oidctest.Env) []provider.Route {
					svc, st, _ = services(t, store, env.Box, clk.now)
					return []provider.Route{{Path: admin.Prefix, Prefix: true, Handler: admin.Handler(svc, api.OpenAPI, nil, ratelimit.Failures{})}}
				},
			})
			_, token, err := st.CreateToken(t.Context(), staff.CLI, staff.TokenSpec{Name: "ci", Roles: []string{"admin"}, TTL: 24 * time.Hour})
			if err != nil {
				t.Fatal(err)
			}
			f := &fixture{t: t, store: store, svc: svc, staff: st, clock: clk, doc: loadOpenAPI(t), srv: env.Server}
			r := f.call("POST", "/clients", token, map[string]any{"client_name": "Cassetto", "redirect_uris": []string{oidctest.RedirectURI}})
			if r.status != 201 {
				t.Fatalf("create: %s", r.raw)
			}
			id, first := r.body["client_id"].(string), r.body["client_secret"].(string)
			op, err := oidc.NewProvider(oidc.ClientContext(context.Background(), env.Server.Client()), env.Issuer)
			if err != nil {
				t.Fatal(err)
			}
			login := func(secret string) error {
				t.Helper()
				endpoint := op.Endpoint()
				endpoint.AuthStyle = oauth2.AuthStyleInHeader
				conf := oauth2.Config{ClientID: id, ClientSecret: secret, Endpoint: endpoint, RedirectURL: oidctest.RedirectURI, Scopes: []string{oidc.ScopeOpenID}}
				verifier := oauth2.GenerateVerifier()
				br := oidctest.NewBrowser(t)
				resp, body := br.Get(conf.AuthCodeURL(oidctest.RandomString(), oauth2.S256ChallengeOption(verifier), oidc.Nonce(oidctest.RandomString())))
				resp, _ = br.FormLoginAt(env.Issuer, resp, body, adminCF, idp.LevelConsultazione)
				loc := oidctest.RPRedirect(resp)
				if loc == nil || loc.Query().Get("code") == "" {
					t.Fatalf("no code: %d %v", resp.StatusCode, resp.Header.Get("Location"))
				}
				tok, err := conf.Exchange(oidc.ClientContext(context.Background(), env.Server.Client()), loc.Query().Get("code"), oauth2.VerifierOption(verifier))
				if err != nil {
					return err
				}
				raw, _ := tok.Extra("id_token").(string)
				_, err = op.Verifier(&oidc.Config{ClientID: id, Now: clk.now}).Verify(context.Background(), raw)
				return err
			}
			if err := login(first); err != nil {
				t.Fatalf("login with the first secret: %v", err)
			}
			r = f.call("POST", "/clients/"+id+"/secret", token, map[string]any{"overlap": "1h"})
			second := r.body["client_secret"].(string)
			if r.status != 200 || second == first || r.body["previous_secret_expires_at"] == nil {
				t.Fatalf("rotate: %s", r.raw)
			}
			for name, secret := range map[string]string{"old, in the overlap": first, "new": second} {
				if err := login(secret); err != nil {
					t.Fatalf("login with the %s secret: %v", name, err)
				}
			}
			clk.add(time.Hour)
			if got := clientAuth(t, env.Server, id, first); got != "invalid_client" {
				t.Fatalf("old secret after the overlap: %s", got)
			}
			if got := clientAuth(t, env.Server, id, second); got != "invalid_grant" {
				t.Fatalf("new secret after the overlap: %s", got)
			}
			if r := f.call("GET", "/clients/"+id, token, nil); r.body["previous_secret_expires_at"] != nil {
				t.Fatalf("overlap still shown: %s", r.raw)
			}
			r = f.call("POST", "/clients/"+id+"/secret", token, map[string]any{})
			third := r.body["client_secret"].(string)
			if got := clientAuth(t, env.Server, id, second); got != "invalid_client" {
				t.Fatalf("secret replaced without overlap: %s", got)
			}
			if got := clientAuth(t, env.Server, id, third); got != "invalid_grant" {
				t.Fatalf("the third secret: %s", got)
			}
			stored, _ := store.GetClient(t.Context(), id)
			if len(stored.PreviousSecretHash) != 0 {
				t.Fatal("a rotation without overlap kept the old secret")
			}
		})
	}
}

// clientAuth sends a token request with a made-up code and returns its
// OAuth error: invalid_client when the secret is refused, invalid_grant when
// the client authenticated and only the code was wrong.
func clientAuth(t *testing.T, srv *httptest.Server, id, secret string) string {
	t.Helper()
	form := url.Values{"grant_type": {"authorization_code"}, "code": {"made-up"}, "redirect_uri": {oidctest.RedirectURI}, "code_verifier": {strings.Repeat("v", 43)}}
	req, _ := http.NewRequest("POST", srv.URL+"/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(id), url.QueryEscape(secret))
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct{ Error string }
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatal(errors.New("token endpoint: " + err.Error()))
	}
	return body.Error
}

// TestEndCitizenSessions: an administrator ends a citizen's sessions; the
// citizen's browser must log in again; a citizen Ponte does not know has
// none; both are audited with the citizen as subject.
func TestEndCitizenSessions(t *testing.T) {
	for _, b := range storagetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			store := b.Open(t)
			var svc *admin.Service
			var st *staff.Service
			env := oidctest.Start(t, store, oidctest.Options{
				Methods: func(string) []idp.Authenticator { return []idp.Authenticator{oidctest.FormLogin{}} },
				Routes: func(env *oidctest.Env) []provider.Route {
					svc, st, _ = services(t, store, env.Box, nil)
					return []provider.Route{{Path: admin.Prefix, Prefix: true, Handler: admin.Handler(svc, api.OpenAPI, nil, ratelimit.Failures{})}}
				},
			})
			_, token, err := st.CreateToken(t.Context(), staff.CLI, staff.TokenSpec{Name: "ci", Roles: []string{"admin"}, TTL: time.Hour})
			if err != nil {
				t.Fatal(err)
			}
			f := &fixture{t: t, store: store, svc: svc, staff: st, doc: loadOpenAPI(t), srv: env.Server}
			rp := env.NewRP(clientSpecConfidential())
			br := oidctest.NewBrowser(t)
			authorize := func() (*http.Response, string) {
				return br.Get(rp.Conf.AuthCodeURL(oidctest.RandomString(), oauth2.S256ChallengeOption(oauth2.GenerateVerifier()), oidc.Nonce(oidctest.RandomString())))
			}
			resp, body := authorize()
			if resp, _ = br.FormLoginAt(env.Issuer, resp, body, otherCF, idp.LevelConsultazione); oidctest.RPRedirect(resp) == nil {
				t.Fatal("no login")
			}
			if resp, _ := authorize(); oidctest.RPRedirect(resp) == nil {
				t.Fatal("no single sign-on before the sessions end")
			}
			if r := f.call("DELETE", "/citizens/"+otherCF+"/sessions", token, nil); r.status != 200 || r.body["ended"] != float64(1) {
				t.Fatalf("end: %d %s", r.status, r.raw)
			}
			if resp, _ := authorize(); oidctest.RPRedirect(resp) != nil || !strings.HasPrefix(resp.Request.URL.Path, "/login") {
				t.Fatalf("still signed in after the sessions ended: %d %s", resp.StatusCode, resp.Request.URL)
			}
			if r := f.call("DELETE", "/citizens/"+adminCF+"/sessions", token, nil); r.status != 200 || r.body["ended"] != float64(0) {
				t.Fatalf("a stranger's sessions: %d %s", r.status, r.raw)
			}
			r := f.call("GET", "/audit?action=citizen.sessions_ended&subject="+otherCF, token, nil)
			if events, _ := r.body["events"].([]any); len(events) != 1 || events[0].(map[string]any)["detail"] != "1 sessions" {
				t.Fatalf("audit: %s", r.raw)
			}
		})
	}
}
