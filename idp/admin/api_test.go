package admin_test

import (
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ponte-id/ponte/idp/admin"
	"github.com/ponte-id/ponte/idp/staff"
	"github.com/ponte-id/ponte/storage/storagetest"
)

// request is one call to prepare against a fixture: its path and body.
type request struct {
	path string
	body any
}

// sample returns, for each route, a valid request (preparing what it needs)
// and the status it answers when allowed.
func sample(f *fixture, rt admin.Route) (request, int) {
	f.t.Helper()
	ctx := f.t.Context()
	switch rt.Method + " " + rt.Path {
	case "GET /openapi.yaml":
		return request{"/openapi.yaml", nil}, 200
	case "GET /clients":
		return request{"/clients", nil}, 200
	case "POST /clients":
		return request{"/clients", map[string]any{"client_id": f.uniq("rp"), "client_name": "Cassetto",
			"redirect_uris": []string{"https://rp.example.it/cb"}, "scopes": []string{"openid", "inps.dispositivo"}}}, 201
	case "GET /clients/{id}":
		return request{"/clients/" + f.newClient().ID, nil}, 200
	case "PUT /clients/{id}":
		return request{"/clients/" + f.newClient().ID, map[string]any{"redirect_uris": []string{"https://rp.example.it/cb2"}}}, 200
	case "DELETE /clients/{id}":
		return request{"/clients/" + f.newClient().ID, nil}, 204
	case "POST /clients/{id}/secret":
		return request{"/clients/" + f.newClient().ID + "/secret", map[string]any{"overlap": "1h"}}, 200
	case "GET /keys":
		return request{"/keys", nil}, 200
	case "POST /keys":
		return request{"/keys", map[string]any{"alg": "RS256"}}, 201
	case "GET /staff":
		return request{"/staff", nil}, 200
	case "POST /staff":
		return request{"/staff", map[string]any{"fiscal_number": otherCF, "role": staff.RoleOperatorSede}}, 201
	case "DELETE /staff/{fiscal_number}/{role}":
		_, _ = f.staff.Grant(ctx, staff.CLI, otherCF, staff.RoleAuditor) // may be held already
		return request{"/staff/" + otherCF + "/" + staff.RoleAuditor, nil}, 204
	case "GET /tokens":
		return request{"/tokens", nil}, 200
	case "POST /tokens":
		return request{"/tokens", map[string]any{"name": "sede Roma", "roles": []string{"operator-sede"}, "ttl": "720h"}}, 201
	case "DELETE /tokens/{id}":
		rec, _, err := f.staff.CreateToken(ctx, staff.CLI, staff.TokenSpec{Name: "x", Roles: []string{"auditor"}, TTL: time.Hour})
		if err != nil {
			f.t.Fatal(err)
		}
		return request{"/tokens/" + rec.ID, nil}, 204
	case "DELETE /citizens/{fiscal_number}/sessions":
		return request{"/citizens/" + otherCF + "/sessions", nil}, 200
	case "GET /audit":
		return request{"/audit?actor=cli&limit=5", nil}, 200
	case "GET /audit/export":
		return request{"/audit/export?format=csv", nil}, 200
	}
	f.t.Fatalf("no sample for %s %s", rt.Method, rt.Path)
	return request{}, 0
}

// TestRoles: every operation, for every role: done for the roles it names,
// 403 for the others with nothing changed; 401 without a valid token
// (none, unknown, revoked, expired, another scheme) with nothing changed.
func TestRoles(t *testing.T) {
	for _, b := range storagetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			f := newFixture(t, b.Open(t))
			for _, rt := range admin.Routes() {
				t.Run(rt.Method+" "+rt.Path, func(t *testing.T) {
					f.t = t
					for _, role := range allRoles {
						req, want := sample(f, rt)
						before := f.snapshot()
						got := f.call(rt.Method, req.path, f.tokens[role], req.body)
						switch {
						case rt.Roles == nil || slices.Contains(rt.Roles, role):
							if got.status != want {
								t.Errorf("%s: %d, want %d: %s", role, got.status, want, got.raw)
							}
						case got.status != http.StatusForbidden || got.body["error"] != "forbidden":
							t.Errorf("%s: %d %s, want 403", role, got.status, got.raw)
						case f.snapshot() != before:
							t.Errorf("%s: refused, but something changed", role)
						}
					}
					if rt.Roles == nil {
						return
					}
					req, _ := sample(f, rt)
					for name, token := range map[string]string{"none": "", "unknown": "pt_0123456789abcdef_" + strings.Repeat("A", 43),
						"revoked": f.tokens["revoked"], "expired": f.tokens["expired"], "malformed": "admin"} {
						before := f.snapshot()
						got := f.call(rt.Method, req.path, token, req.body)
						if got.status != http.StatusUnauthorized || !strings.HasPrefix(got.header.Get("WWW-Authenticate"), "Bearer") {
							t.Errorf("%s token: %d %s, want 401 with WWW-Authenticate", name, got.status, got.raw)
						}
						if f.snapshot() != before {
							t.Errorf("%s token: something changed", name)
						}
					}
				})
			}
		})
	}
}

// TestBadInput: every refusal names its field (400) or its reason, in the
// document's form, and changes nothing.
func TestBadInput(t *testing.T) {
	for _, b := range storagetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			f := newFixture(t, b.Open(t))
			existing := f.newClient()
			public, _, err := f.svc.CreateClient(t.Context(), staff.CLI, clientSpecPublic(f.uniq("pub")))
			if err != nil {
				t.Fatal(err)
			}
			cb := []string{"https://rp.example.it/cb"}
			cases := []struct {
				name, method, path string
				body               any
				contentType        string
				status             int
				field              string // the field named, for a 400 invalid_request
				code               string // the error code otherwise
			}{
				{"http redirect", "POST", "/clients", map[string]any{"redirect_uris": []string{"http://rp.example.it/cb"}}, "", 400, "redirect_uris[0]", ""},
				{"relative redirect", "POST", "/clients", map[string]any{"redirect_uris": []string{"https://rp.example.it/cb", "/cb"}}, "", 400, "redirect_uris[1]", ""},
				{"redirect with fragment", "POST", "/clients", map[string]any{"redirect_uris": []string{"https://rp.example.it/cb#x"}}, "", 400, "redirect_uris[0]", ""},
				{"custom scheme, confidential", "POST", "/clients", map[string]any{"redirect_uris": []string{"it.inps.app:/cb"}}, "", 400, "redirect_uris[0]", ""},
				{"no redirect", "POST", "/clients", map[string]any{"client_name": "x"}, "", 400, "redirect_uris", ""},
				{"too many redirects", "POST", "/clients", map[string]any{"redirect_uris": slices.Repeat(cb, 51)}, "", 400, "redirect_uris", ""},
				{"http post-logout", "POST", "/clients", map[string]any{"redirect_uris": cb, "post_logout_redirect_uris": []string{"http://evil.example/"}}, "", 400, "post_logout_redirect_uris[0]", ""},
				{"http back-channel logout URI", "POST", "/clients", map[string]any{"redirect_uris": cb, "backchannel_logout_uri": "http://rp.example.it/bcl"}, "", 400, "backchannel_logout_uri", ""},
				{"sid without back-channel URI", "POST", "/clients", map[string]any{"redirect_uris": cb, "backchannel_logout_session_required": true}, "", 400, "backchannel_logout_session_required", ""},
				{"unknown scope", "POST", "/clients", map[string]any{"redirect_uris": cb, "scopes": []string{"openid", "admin"}}, "", 400, "scopes[1]", ""},
				{"no openid", "POST", "/clients", map[string]any{"redirect_uris": cb, "scopes": []string{"profile"}}, "", 400, "scopes", ""},
				{"auth method", "POST", "/clients", map[string]any{"redirect_uris": cb, "token_endpoint_auth_method": "magic"}, "", 400, "token_endpoint_auth_method", ""},
				{"private_key_jwt without keys", "POST", "/clients", map[string]any{"redirect_uris": cb, "token_endpoint_auth_method": "private_key_jwt"}, "", 400, "jwks", ""},
				{"jwks not a key set", "POST", "/clients", map[string]any{"redirect_uris": cb, "token_endpoint_auth_method": "private_key_jwt", "jwks": map[string]any{"keys": []any{}}}, "", 400, "jwks", ""},
				{"alg", "POST", "/clients", map[string]any{"redirect_uris": cb, "id_token_signed_response_alg": "HS256"}, "", 400, "id_token_signed_response_alg", ""},
				{"sector over http", "POST", "/clients", map[string]any{"redirect_uris": cb, "sector_identifier_uri": "http://sector.example.it"}, "", 400, "sector_identifier_uri", ""},
				{"public PKCE exemption", "POST", "/clients", map[string]any{"redirect_uris": cb, "token_endpoint_auth_method": "none", "pkce_exempt": true}, "", 400, "pkce_exempt", ""},
				{"ttl not a duration", "POST", "/clients", map[string]any{"redirect_uris": cb, "access_token_ttl": "forever"}, "", 400, "access_token_ttl", ""},
				{"negative ttl", "POST", "/clients", map[string]any{"redirect_uris": cb, "id_token_ttl": "-1s"}, "", 400, "id_token_ttl", ""},
				{"ttl too long", "POST", "/clients", map[string]any{"redirect_uris": cb, "refresh_token_ttl": "2161h"}, "", 400, "refresh_token_ttl", ""},
				{"client_id with a slash", "POST", "/clients", map[string]any{"client_id": "a/b", "redirect_uris": cb}, "", 400, "client_id", ""},
				{"name too long", "POST", "/clients", map[string]any{"client_name": strings.Repeat("x", 201), "redirect_uris": cb}, "", 400, "client_name", ""},
				{"unknown field", "POST", "/clients", map[string]any{"redirect_uris": cb, "grant_types": []string{"implicit"}}, "", 400, "grant_types", ""},
				{"wrong type", "POST", "/clients", map[string]any{"redirect_uris": "https://rp.example.it/cb"}, "", 400, "redirect_uris", ""},
				{"malformed JSON", "POST", "/clients", `{"redirect_uris": [`, "", 400, "", "invalid_request"},
				{"two JSON values", "POST", "/clients", `{"redirect_uris": ["https://rp.example.it/cb"]} {}`, "", 400, "", "invalid_request"},
				{"not JSON", "POST", "/clients", `redirect_uris=https://rp.example.it/cb`, "application/x-www-form-urlencoded", 415, "", "unsupported_media_type"},
				{"too large", "POST", "/clients", `{"client_name": "` + strings.Repeat("x", admin.MaxBody) + `"}`, "", 413, "", "request_too_large"},
				{"existing client_id", "POST", "/clients", map[string]any{"client_id": existing.ID, "redirect_uris": cb}, "", 409, "", "conflict"},
				{"PUT changes client_id", "PUT", "/clients/" + existing.ID, map[string]any{"client_id": "other", "redirect_uris": cb}, "", 400, "client_id", ""},
				{"PUT http redirect", "PUT", "/clients/" + existing.ID, map[string]any{"redirect_uris": []string{"http://rp.example.it/cb"}}, "", 400, "redirect_uris[0]", ""},
				{"PUT unknown client", "PUT", "/clients/nope", map[string]any{"redirect_uris": cb}, "", 404, "", "not_found"},
				{"GET unknown client", "GET", "/clients/nope", nil, "", 404, "", "not_found"},
				{"DELETE unknown client", "DELETE", "/clients/nope", nil, "", 404, "", "not_found"},
				{"overlap too long", "POST", "/clients/" + existing.ID + "/secret", map[string]any{"overlap": "721h"}, "", 400, "overlap", ""},
				{"negative overlap", "POST", "/clients/" + existing.ID + "/secret", map[string]any{"overlap": "-1h"}, "", 400, "overlap", ""},
				{"overlap not a duration", "POST", "/clients/" + existing.ID + "/secret", map[string]any{"overlap": "soon"}, "", 400, "overlap", ""},
				{"rotate a public client's secret", "POST", "/clients/" + public.ID + "/secret", map[string]any{}, "", 400, "token_endpoint_auth_method", ""},
				{"rotate an unknown client's secret", "POST", "/clients/nope/secret", map[string]any{}, "", 404, "", "not_found"},
				{"key alg", "POST", "/keys", map[string]any{"alg": "HS256"}, "", 400, "alg", ""},
				{"key without alg", "POST", "/keys", map[string]any{}, "", 400, "alg", ""},
				{"grant a bad codice fiscale", "POST", "/staff", map[string]any{"fiscal_number": "RSSMRA80A01H501X", "role": "auditor"}, "", 400, "fiscal_number", ""},
				{"grant an unknown role", "POST", "/staff", map[string]any{"fiscal_number": otherCF, "role": "root"}, "", 400, "role", ""},
				{"grant a role held", "POST", "/staff", map[string]any{"fiscal_number": adminCF, "role": "admin"}, "", 409, "", "conflict"},
				{"revoke the last admin", "DELETE", "/staff/" + adminCF + "/admin", nil, "", 409, "", "conflict"},
				{"revoke an unknown role", "DELETE", "/staff/" + adminCF + "/root", nil, "", 400, "role", ""},
				{"revoke a role not held", "DELETE", "/staff/" + otherCF + "/auditor", nil, "", 404, "", "not_found"},
				{"token without roles", "POST", "/tokens", map[string]any{"name": "x", "roles": []string{}, "ttl": "1h"}, "", 400, "roles", ""},
				{"token with an unknown role", "POST", "/tokens", map[string]any{"name": "x", "roles": []string{"auditor", "root"}, "ttl": "1h"}, "", 400, "roles[1]", ""},
				{"token living too long", "POST", "/tokens", map[string]any{"name": "x", "roles": []string{"auditor"}, "ttl": "8785h"}, "", 400, "ttl", ""},
				{"token ttl not a duration", "POST", "/tokens", map[string]any{"name": "x", "roles": []string{"auditor"}, "ttl": "forever"}, "", 400, "ttl", ""},
				{"token without name", "POST", "/tokens", map[string]any{"name": " ", "roles": []string{"auditor"}, "ttl": "1h"}, "", 400, "name", ""},
				{"revoke an unknown token", "DELETE", "/tokens/nope", nil, "", 404, "", "not_found"},
				{"revoke a revoked token", "DELETE", "/tokens/" + f.ids["revoked"], nil, "", 404, "", "not_found"},
				{"end sessions of a bad codice fiscale", "DELETE", "/citizens/RSSMRA80A01H501X/sessions", nil, "", 400, "fiscal_number", ""},
				{"audit from", "GET", "/audit?from=yesterday", nil, "", 400, "from", ""},
				{"audit to before from", "GET", "/audit?from=2026-01-02T00:00:00Z&to=2026-01-01T00:00:00Z", nil, "", 400, "to", ""},
				{"audit limit 0", "GET", "/audit?limit=0", nil, "", 400, "limit", ""},
				{"audit limit too high", "GET", "/audit?limit=1001", nil, "", 400, "limit", ""},
				{"audit after", "GET", "/audit?after=x", nil, "", 400, "after", ""},
				{"audit unknown filter", "GET", "/audit?actr=cli", nil, "", 400, "actr", ""},
				{"audit filter twice", "GET", "/audit?actor=a&actor=b", nil, "", 400, "actor", ""},
				{"export format", "GET", "/audit/export?format=xml", nil, "", 400, "format", ""},
				{"export unknown filter", "GET", "/audit/export?limit=5", nil, "", 400, "limit", ""},
			}
			for _, c := range cases {
				t.Run(c.name, func(t *testing.T) {
					f.t = t
					before := f.snapshot()
					var got resp
					if c.contentType != "" {
						got = f.call(c.method, c.path, f.tokens["admin"], c.body, c.contentType)
					} else {
						got = f.call(c.method, c.path, f.tokens["admin"], c.body)
					}
					if got.status != c.status {
						t.Fatalf("%d, want %d: %s", got.status, c.status, got.raw)
					}
					if c.field != "" && (got.body["error"] != "invalid_request" || got.field(c.field) == "") {
						t.Errorf("does not name %s: %s", c.field, got.raw)
					}
					if c.code != "" && got.body["error"] != c.code {
						t.Errorf("error %v, want %s", got.body["error"], c.code)
					}
					if f.snapshot() != before {
						t.Error("refused, but something changed")
					}
				})
			}
			f.t = t
			for _, c := range []struct {
				method, path string
				status       int
			}{{"GET", "/nope", 404}, {"PATCH", "/clients", 405}, {"DELETE", "/keys", 405}} {
				got := f.call(c.method, c.path, f.tokens["admin"], nil)
				if got.status != c.status || got.body["error"] == nil {
					t.Errorf("%s %s: %d %s", c.method, c.path, got.status, got.raw)
				}
			}
		})
	}
}

// TestParallelRevocations: of parallel revocations of one token, one
// succeeds; the others are 404; one audit entry.
func TestParallelRevocations(t *testing.T) {
	for _, b := range storagetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			f := newFixture(t, b.Open(t))
			rec, _, err := f.staff.CreateToken(t.Context(), staff.CLI, staff.TokenSpec{Name: "x", Roles: []string{"auditor"}, TTL: time.Hour})
			if err != nil {
				t.Fatal(err)
			}
			var (
				wg    sync.WaitGroup
				mu    sync.Mutex
				codes = map[int]int{}
			)
			for range 8 {
				wg.Go(func() {
					r := f.call("DELETE", "/tokens/"+rec.ID, f.tokens["admin"], nil)
					mu.Lock()
					codes[r.status]++
					mu.Unlock()
				})
			}
			wg.Wait()
			if codes[204] != 1 || codes[404] != 7 {
				t.Fatalf("answers %v, want one 204 and seven 404", codes)
			}
			r := f.call("GET", "/audit?action=token.revoked&subject=token:"+rec.ID, f.tokens["auditor"], nil)
			if events, _ := r.body["events"].([]any); len(events) != 1 {
				t.Fatalf("audit of the revocation: %s", r.raw)
			}
		})
	}
}
