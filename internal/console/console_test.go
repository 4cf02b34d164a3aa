package console_test

import (
	"context"
	"encoding/json"
	"html"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/ponte-id/ponte/adapters/pin"
	"github.com/ponte-id/ponte/idp"
	"github.com/ponte-id/ponte/idp/admin"
	"github.com/ponte-id/ponte/idp/keys"
	"github.com/ponte-id/ponte/idp/provider"
	"github.com/ponte-id/ponte/idp/staff"
	"github.com/ponte-id/ponte/internal/codicefiscale"
	"github.com/ponte-id/ponte/internal/console"
	"github.com/ponte-id/ponte/internal/oidctest"
	"github.com/ponte-id/ponte/internal/selfclient"
	"github.com/ponte-id/ponte/storage"
	"github.com/ponte-id/ponte/storage/sqlstore"
	"github.com/ponte-id/ponte/storage/storagetest"
)

const (
	adminCF    = "RSSMRA80A01H501U"
	operatorCF = "BNCLGU70B02F205F"
	ccCF       = "BNCLRA90D55F205C"
	citizenCF  = "VRDGPP75C15F205S"
	auditorCF  = "VRDNNA85M41F205G"
)

// site is Ponte with the console, a test login method, an admin, two
// operators (sede, contact center) and an auditor.
type site struct {
	env   *oidctest.Env
	store *sqlstore.Store
	// pin is the PIN method's service, whose console section is mounted.
	pin *pin.Service
}

func start(t *testing.T, store *sqlstore.Store) *site {
	t.Helper()
	s := &site{store: store}
	s.env = oidctest.Start(t, store, oidctest.Options{
		Methods: func(string) []idp.Authenticator { return []idp.Authenticator{oidctest.FormLogin{}} },
		Routes: func(e *oidctest.Env) []provider.Route {
			scopes, level := console.SelfConfig()
			self, err := selfclient.New(selfclient.Config{Issuer: e.Issuer, ClientID: console.ClientID, Name: "Console",
				Path: console.Path, Scopes: scopes, Level: level, Box: e.Box, Sessions: e.Provider,
				HTTPClient: selfclient.InProcess(func() http.Handler { return e.Handler })})
			if err != nil {
				t.Fatal(err)
			}
			if err := self.Register(context.Background(), e.Registry); err != nil {
				t.Fatal(err)
			}
			st, err := staff.New(store, staff.Options{TokenKey: e.Box.Derive("api-token", 32), ValidFiscalNumber: codicefiscale.Valid})
			if err != nil {
				t.Fatal(err)
			}
			km, err := keys.New(store, e.Box, keys.Options{})
			if err != nil {
				t.Fatal(err)
			}
			svc := admin.New(store, e.Registry, km, st, e.Provider.Sessions(), nil)
			cfg := pin.DefaultConfig()
			cfg.Params = pin.Params{MemoryKiB: 8 * 1024, Time: 1, Threads: 1}
			cfg.BaseURL = e.Issuer
			s.pin, err = pin.NewService(cfg, pin.Deps{Store: store, Box: e.Box, Revoker: provider.Revoker{Store: store}, Citizens: provider.Revoker{Store: store}})
			if err != nil {
				t.Fatal(err)
			}
			for cf, role := range map[string]string{adminCF: staff.RoleAdmin, operatorCF: staff.RoleOperatorSede, ccCF: staff.RoleOperatorContactCenter, auditorCF: staff.RoleAuditor} {
				if _, err := st.Grant(context.Background(), staff.CLI, cf, role); err != nil {
					t.Fatal(err)
				}
			}
			pages, err := console.New(console.Config{Self: self, Admin: svc, CSRFKey: e.Box.Derive("console-csrf", 32),
				Sections: map[string]idp.ConsoleSection{"pin": s.pin.ConsoleSection()}})
			if err != nil {
				t.Fatal(err)
			}
			return []provider.Route{{Path: console.Path, Prefix: true, Handler: pages.Handler()}}
		},
	})
	return s
}

// open opens a console page in b, logging in as cf at level if asked.
func (s *site) open(t *testing.T, b *oidctest.Browser, path, cf string, level idp.Level) (*http.Response, string) {
	t.Helper()
	resp, body := b.Get(s.env.Issuer + path)
	if strings.HasPrefix(resp.Request.URL.Path, "/login") {
		resp, body = b.FormLoginAt(s.env.Issuer, resp, body, cf, level)
	}
	if resp.Header.Get("Content-Type") == "text/html; charset=utf-8" && resp.Header.Get("Cache-Control") != "no-store" {
		t.Errorf("%s may be cached", path)
	}
	return resp, body
}

var csrfRE = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

func csrf(t *testing.T, body string) string {
	t.Helper()
	m := csrfRE.FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no csrf token: %.400s", body)
	}
	return html.UnescapeString(m[1])
}

// TestAdminRegistersAClient: an admin logs in at the dispositivo level,
// registers a client through the form (a bad redirect URI refused by field,
// nothing stored), and the client then completes a login; the registration
// is audited under the admin's codice fiscale on the console channel.
func TestAdminRegistersAClient(t *testing.T) {
	for _, be := range storagetest.Backends() {
		t.Run(be.Name, func(t *testing.T) {
			s := start(t, be.Open(t))
			b := oidctest.NewBrowser(t)
			resp, body := s.open(t, b, "/console/clients/new", adminCF, idp.LevelDispositivo)
			if resp.StatusCode != 200 || !strings.Contains(body, `name="redirect_uris"`) {
				t.Fatalf("form: %d %.500s", resp.StatusCode, body)
			}
			token := csrf(t, body)
			form := url.Values{"csrf": {token}, "name": {"Cassetto"}, "redirect_uris": {"http://cassetto.example.it/cb"},
				"scope": {"openid", "profile"}, "auth": {"client_secret_basic"}, "alg": {"ES256"}}
			before, _ := s.store.ListClients(t.Context())
			resp, body = b.Post(s.env.Issuer+"/console/clients", form)
			if resp.StatusCode != 400 || !strings.Contains(body, "redirect_uris[0]") || !strings.Contains(body, "http è ammesso solo su loopback; usa https") {
				t.Fatalf("http redirect: %d %.600s", resp.StatusCode, body)
			}
			if after, _ := s.store.ListClients(t.Context()); len(after) != len(before) {
				t.Fatal("a refused form stored a client")
			}
			form.Set("redirect_uris", oidctest.RedirectURI)
			resp, body = b.Post(s.env.Issuer+"/console/clients", form)
			idm := regexp.MustCompile(`id="client-id">([^<]+)<`).FindStringSubmatch(body)
			secm := regexp.MustCompile(`id="client-secret">([^<]+)<`).FindStringSubmatch(body)
			if resp.StatusCode != 201 || idm == nil || secm == nil {
				t.Fatalf("create: %d %.600s", resp.StatusCode, body)
			}
			id, secret := html.UnescapeString(idm[1]), html.UnescapeString(secm[1])
			// The client logs a citizen in.
			op, err := oidc.NewProvider(oidc.ClientContext(context.Background(), s.env.Server.Client()), s.env.Issuer)
			if err != nil {
				t.Fatal(err)
			}
			endpoint := op.Endpoint()
			endpoint.AuthStyle = oauth2.AuthStyleInHeader
			conf := oauth2.Config{ClientID: id, ClientSecret: secret, Endpoint: endpoint, RedirectURL: oidctest.RedirectURI, Scopes: []string{oidc.ScopeOpenID, "profile"}}
			verifier := oauth2.GenerateVerifier()
			citizen := oidctest.NewBrowser(t)
			resp, body = citizen.Get(conf.AuthCodeURL(oidctest.RandomString(), oauth2.S256ChallengeOption(verifier)))
			resp, _ = citizen.FormLoginAt(s.env.Issuer, resp, body, citizenCF, idp.LevelConsultazione)
			loc := oidctest.RPRedirect(resp)
			if loc == nil {
				t.Fatalf("no code for the new client: %d", resp.StatusCode)
			}
			tok, err := conf.Exchange(oidc.ClientContext(context.Background(), s.env.Server.Client()), loc.Query().Get("code"), oauth2.VerifierOption(verifier))
			if err != nil {
				t.Fatal(err)
			}
			raw, _ := tok.Extra("id_token").(string)
			if _, err := op.Verifier(&oidc.Config{ClientID: id}).Verify(context.Background(), raw); err != nil {
				t.Fatal(err)
			}
			var audited []storage.AuditEvent
			_ = s.store.SearchAudit(t.Context(), storage.AuditQuery{Action: "client.created", Subject: "client:" + id}, func(e storage.AuditEvent) error {
				audited = append(audited, e)
				return nil
			})
			if len(audited) != 1 || audited[0].Operator != adminCF || audited[0].Channel != "console" {
				t.Fatalf("audit: %+v", audited)
			}
			// The list shows it; the admin deletes it.
			resp, body = s.open(t, b, "/console/clients/"+id, adminCF, idp.LevelDispositivo)
			if resp.StatusCode != 200 || !strings.Contains(body, oidctest.RedirectURI) {
				t.Fatalf("details: %d", resp.StatusCode)
			}
			resp, _ = b.Post(s.env.Issuer+"/console/clients/"+id+"/delete", url.Values{"csrf": {csrf(t, body)}})
			if resp.StatusCode != 200 || resp.Request.URL.Path != "/console/clients" {
				t.Fatalf("delete: %d %s", resp.StatusCode, resp.Request.URL)
			}
			if _, err := s.store.GetClient(t.Context(), id); err == nil {
				t.Fatal("not deleted")
			}
		})
	}
}

// TestConsoleRefusals: a citizen without a role, an operator on the admin's
// pages, a login below dispositivo, a form without its token or posted
// cross-site: each is refused and changes nothing.
func TestConsoleRefusals(t *testing.T) {
	s := start(t, storagetest.SQLite(t))
	count := func() int {
		l, _ := s.store.ListClients(t.Context())
		return len(l)
	}
	// A citizen with no role.
	if resp, body := s.open(t, oidctest.NewBrowser(t), "/console/", citizenCF, idp.LevelDispositivo); resp.StatusCode != 403 || strings.Contains(body, "/console/clients") {
		t.Fatalf("citizen: %d", resp.StatusCode)
	}
	// An operator: the home page, not the relying parties.
	op := oidctest.NewBrowser(t)
	if resp, _ := s.open(t, op, "/console/", operatorCF, idp.LevelDispositivo); resp.StatusCode != 200 {
		t.Fatalf("operator home: %d", resp.StatusCode)
	}
	for _, p := range []string{"/console/clients", "/console/clients/new"} {
		if resp, _ := s.open(t, op, p, operatorCF, idp.LevelDispositivo); resp.StatusCode != 403 {
			t.Fatalf("operator at %s: %d", p, resp.StatusCode)
		}
	}
	// An admin at the base level does not reach the console.
	// (the essential acr is unmet: the browser is sent back to the login page).
	if resp, body := s.open(t, oidctest.NewBrowser(t), "/console/clients", adminCF, idp.LevelConsultazione); strings.HasPrefix(resp.Request.URL.Path, "/console") || strings.Contains(body, "/console/clients/new") {
		t.Fatalf("an admin logged in at the base level reaches the console: %d %s", resp.StatusCode, resp.Request.URL)
	}
	// Forms without the token, with another session's token, or posted cross-site.
	b := oidctest.NewBrowser(t)
	_, body := s.open(t, b, "/console/clients/new", adminCF, idp.LevelDispositivo)
	good := csrf(t, body)
	other := oidctest.NewBrowser(t)
	_, otherBody := s.open(t, other, "/console/clients/new", adminCF, idp.LevelDispositivo)
	form := func(token string) url.Values {
		return url.Values{"csrf": {token}, "redirect_uris": {oidctest.RedirectURI}, "scope": {"openid"}, "auth": {"client_secret_basic"}, "alg": {"ES256"}}
	}
	n := count()
	for name, f := range map[string]url.Values{"no token": form(""), "another session's token": form(csrf(t, otherBody))} {
		if resp, _ := b.Post(s.env.Issuer+"/console/clients", f); resp.StatusCode != 403 {
			t.Errorf("%s: %d", name, resp.StatusCode)
		}
	}
	if code := oidctest.CrossSitePost(t, s.env.Issuer+"/console/clients", form(good)); code != 403 {
		t.Errorf("cross-site: %d", code)
	}
	if count() != n {
		t.Fatal("a refused form created a client")
	}
	if resp, _ := b.Post(s.env.Issuer+"/console/clients", form(good)); resp.StatusCode != 201 {
		t.Fatalf("the good token: %d", resp.StatusCode)
	}
}

// TestAuditPages: the audit trail for admins and auditors (not operators):
// filters, a bad date refused, an export (a form with the session's token)
// streamed as CSV and itself audited under the staff member.
func TestAuditPages(t *testing.T) {
	s := start(t, storagetest.SQLite(t))
	ctx := t.Context()
	for _, e := range []storage.AuditEvent{
		{FiscalNumber: citizenCF, Event: "issued", Channel: "sede", Operator: "op-7"},
		{Event: "client.created", Channel: "api", Operator: "token:x", Target: "client:a", Detail: "=cmd()"},
	} {
		if err := s.store.AppendAudit(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	b := oidctest.NewBrowser(t)
	resp, body := s.open(t, b, "/console/audit?action=client.created", adminCF, idp.LevelDispositivo)
	if resp.StatusCode != 200 || !strings.Contains(body, "client:a") || strings.Contains(body, "op-7") {
		t.Fatalf("filtered: %d %.600s", resp.StatusCode, body)
	}
	if resp, _ := s.open(t, b, "/console/audit?from=yesterday", adminCF, idp.LevelDispositivo); resp.StatusCode != 400 {
		t.Fatalf("bad date: %d", resp.StatusCode)
	}
	token := csrf(t, body)
	resp, csvBody := b.Post(s.env.Issuer+"/console/audit/export", url.Values{"csrf": {token}, "format": {"csv"}, "subject": {citizenCF}})
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/csv") ||
		!strings.HasPrefix(csvBody, "id,at,actor,action,channel,fiscal_number,target,detail\n") || !strings.Contains(csvBody, ",issued,") || strings.Contains(csvBody, "client:a") {
		t.Fatalf("export: %d %q", resp.StatusCode, csvBody)
	}
	if resp, _ := b.Post(s.env.Issuer+"/console/audit/export", url.Values{"format": {"csv"}}); resp.StatusCode != 403 {
		t.Fatalf("export without the token: %d", resp.StatusCode)
	}
	var exported []storage.AuditEvent
	_ = s.store.SearchAudit(ctx, storage.AuditQuery{Action: "audit.exported"}, func(e storage.AuditEvent) error { exported = append(exported, e); return nil })
	if len(exported) != 1 || exported[0].Operator != adminCF || exported[0].Channel != "console" {
		t.Fatalf("exports audited: %+v", exported)
	}
	if resp, _ := s.open(t, oidctest.NewBrowser(t), "/console/audit", operatorCF, idp.LevelDispositivo); resp.StatusCode != 403 {
		t.Fatalf("operator at the audit page: %d", resp.StatusCode)
	}
}

// TestRotateSecretInConsole: a new secret from the client's page; with an
// overlap the old one still authenticates at the token endpoint, without
// one it stops at once; a bad overlap or a public client is refused.
func TestRotateSecretInConsole(t *testing.T) {
	s := start(t, storagetest.SQLite(t))
	b := oidctest.NewBrowser(t)
	_, body := s.open(t, b, "/console/clients/new", adminCF, idp.LevelDispositivo)
	_, body = b.Post(s.env.Issuer+"/console/clients", url.Values{"csrf": {csrf(t, body)}, "redirect_uris": {oidctest.RedirectURI},
		"scope": {"openid"}, "auth": {"client_secret_basic"}, "alg": {"ES256"}})
	id := html.UnescapeString(regexp.MustCompile(`id="client-id">([^<]+)<`).FindStringSubmatch(body)[1])
	first := html.UnescapeString(regexp.MustCompile(`id="client-secret">([^<]+)<`).FindStringSubmatch(body)[1])
	rotate := func(overlap string) (*http.Response, string) {
		_, page := s.open(t, b, "/console/clients/"+id, adminCF, idp.LevelDispositivo)
		return b.Post(s.env.Issuer+"/console/clients/"+id+"/secret", url.Values{"csrf": {csrf(t, page)}, "overlap": {overlap}})
	}
	if resp, _ := rotate("forever"); resp.StatusCode != 400 {
		t.Fatalf("bad overlap: %d", resp.StatusCode)
	}
	resp, body := rotate("24h")
	m := regexp.MustCompile(`id="client-secret">([^<]+)<`).FindStringSubmatch(body)
	if resp.StatusCode != 200 || m == nil || !strings.Contains(body, "Nuovo segreto") {
		t.Fatalf("rotate: %d %.500s", resp.StatusCode, body)
	}
	second := html.UnescapeString(m[1])
	for name, secret := range map[string]string{"old": first, "new": second} {
		if got := tokenError(t, s, id, secret); got != "invalid_grant" {
			t.Errorf("%s secret in the overlap: %s", name, got)
		}
	}
	resp, body = rotate("0")
	third := html.UnescapeString(regexp.MustCompile(`id="client-secret">([^<]+)<`).FindStringSubmatch(body)[1])
	if resp.StatusCode != 200 || tokenError(t, s, id, second) != "invalid_client" || tokenError(t, s, id, third) != "invalid_grant" {
		t.Fatalf("rotation without overlap: %d", resp.StatusCode)
	}
	var events []storage.AuditEvent
	_ = s.store.SearchAudit(t.Context(), storage.AuditQuery{Action: "client.secret_rotated", Actor: adminCF}, func(e storage.AuditEvent) error { events = append(events, e); return nil })
	if len(events) != 2 {
		t.Fatalf("rotations audited: %+v", events)
	}
}

// tokenError is the OAuth error of a token request with a made-up code:
// invalid_client when the secret is refused, invalid_grant when it is not.
func tokenError(t *testing.T, s *site, id, secret string) string {
	t.Helper()
	form := url.Values{"grant_type": {"authorization_code"}, "code": {"made-up"}, "redirect_uri": {oidctest.RedirectURI}, "code_verifier": {strings.Repeat("v", 43)}}
	req, _ := http.NewRequest("POST", s.env.Issuer+"/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(id), url.QueryEscape(secret))
	resp, err := s.env.Server.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct{ Error string }
	_ = json.NewDecoder(resp.Body).Decode(&body)
	return body.Error
}
