package pin_test

import (
	"context"
	"html"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"golang.org/x/oauth2"

	"github.com/ponte-id/ponte/adapters/pin"
	"github.com/ponte-id/ponte/idp"
	"github.com/ponte-id/ponte/idp/clients"
	"github.com/ponte-id/ponte/internal/oidctest"
	"github.com/ponte-id/ponte/storage/sqlstore"
	"github.com/ponte-id/ponte/storage/storagetest"
)

// site is Ponte with the PIN method, on a real listener.
type site struct {
	*fixture
	env *oidctest.Env
}

func newSite(t testing.TB, store *sqlstore.Store, tweaks ...func(*pin.Config)) *site {
	s := &site{}
	s.env = oidctest.Start(t, store, oidctest.Options{Methods: func(issuer string) []idp.Authenticator {
		tweaks = append(tweaks, func(c *pin.Config) { c.BaseURL = issuer })
		s.fixture = newFixture(t, store, before2021, tweaks...)
		return []idp.Authenticator{s.svc.Authenticator()}
	}})
	return s
}

var (
	challengeField = regexp.MustCompile(`name="challenge" value="([^"]*)"`)
	ticketField    = regexp.MustCompile(`name="ticket" value="([^"]*)"`)
)

func field(t testing.TB, re *regexp.Regexp, body string) string {
	t.Helper()
	m := re.FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no %s in %.400s", re, body)
	}
	return html.UnescapeString(m[1])
}

// pinLogin starts an authorization, picks the PIN on the chooser and submits
// the PIN form; it returns the last response.
func (s *site) pinLogin(b *oidctest.Browser, authURL, fiscal, secret string) (*http.Response, string) {
	t := s.t
	resp, body := b.Get(authURL)
	if loc := oidctest.RPRedirect(resp); loc != nil {
		return resp, body
	}
	if !strings.Contains(body, "/login/pin/?challenge=") {
		t.Fatalf("the chooser does not offer the PIN: %.400s", body)
	}
	challenge := field(t, challengeField, body)
	resp, body = b.Get(s.env.Issuer + "/login/pin/?challenge=" + url.QueryEscape(challenge))
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, `name="pin"`) {
		t.Fatalf("PIN form: %d %.300s", resp.StatusCode, body)
	}
	return b.Post(s.env.Issuer+"/login/pin/", url.Values{"challenge": {challenge}, "fiscal_number": {fiscal}, "pin": {secret}})
}

func (s *site) exchange(r *oidctest.RP, loc *url.URL, verifier string) (*oauth2.Token, map[string]any) {
	t := s.t
	if loc == nil || loc.Query().Get("code") == "" {
		t.Fatalf("no code: %v", loc)
	}
	tok, err := r.Conf.Exchange(r.Ctx(), loc.Query().Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatal(err)
	}
	idt, err := r.Verifier.Verify(r.Ctx(), tok.Extra("id_token").(string))
	if err != nil {
		t.Fatal(err)
	}
	var claims map[string]any
	_ = idt.Claims(&claims)
	return tok, claims
}

// TestOnlinePathThroughHTTP: the request form → the halves (from the outbox) →
// first access with the 16 characters → the change form → OIDC tokens at the
// consultazione level; then a step-up to dispositivo is refused to this PIN and
// explained; then revocation online kills the tokens.
func TestOnlinePathThroughHTTP(t *testing.T) {
	for _, be := range storagetest.Backends() {
		t.Run(be.Name, func(t *testing.T) {
			s := newSite(t, be.Open(t))
			b := oidctest.NewBrowser(t)
			form := url.Values{
				"fiscal_number": {cf}, "given_name": {"Mario"}, "family_name": {"Rossi"}, "gender": {"M"},
				"birthdate": {"1980-01-01"}, "birth_place": {"Roma"}, "street": {"Via Roma"}, "number": {"1"},
				"postal_code": {"00100"}, "city": {"Roma"}, "province": {"RM"}, "mobile": {"+393331234567"},
				"email": {"mario@example.it"}, "preferred_phone": {"+393331234567"}, "callback_slot": {"09-13"},
				"first_half_via": {"sms"},
			}
			bad := url.Values{}
			for k, v := range form {
				bad[k] = v
			}
			bad.Set("gender", "F")
			resp, body := b.Post(s.env.Issuer+"/login/pin/request", bad)
			if resp.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(body, "gender") || !strings.Contains(body, `value="Mario"`) {
				t.Fatalf("a wrong request must come back with the field named and the data kept: %d %.300s", resp.StatusCode, body)
			}
			if resp, _ = b.Post(s.env.Issuer+"/login/pin/request", form); resp.StatusCode != http.StatusOK {
				t.Fatalf("request: %d", resp.StatusCode)
			}
			halves := s.secrets()
			initial := halves["sms"][0] + halves["post"][0]

			r := s.env.NewRP(clients.Spec{Scopes: []string{"openid", "profile", "inps.consultazione", "inps.dispositivo"}})
			r.Conf.Scopes = []string{"openid", "profile"}
			verifier := oauth2.GenerateVerifier()
			authURL := r.Conf.AuthCodeURL(oidctest.RandomString(), oauth2.S256ChallengeOption(verifier))

			_, body = s.pinLogin(b, authURL, cf, "WRONGPIN")
			if !strings.Contains(body, "non corretti") {
				t.Fatalf("wrong PIN: %.300s", body)
			}
			_, body = s.pinLogin(b, authURL, strings.ToLower(cf), initial)
			ticket := field(t, ticketField, body)
			challenge := field(t, challengeField, body)
			_, body = b.Post(s.env.Issuer+"/login/pin/change", url.Values{"ticket": {ticket}, "challenge": {challenge}, "new_pin": {"Nuovo123"}, "confirm_pin": {"Nuovo124"}})
			if !strings.Contains(body, "non coincidono") {
				t.Fatalf("mismatched confirmation: %.300s", body)
			}
			// The used ticket is spent; the page carries a fresh one.
			if resp, _ := b.Post(s.env.Issuer+"/login/pin/change", url.Values{"ticket": {ticket}, "challenge": {challenge}, "new_pin": {"Nuovo123"}, "confirm_pin": {"Nuovo123"}}); resp.StatusCode != http.StatusBadRequest {
				t.Fatalf("a spent ticket was accepted: %d", resp.StatusCode)
			}
			ticket = field(t, ticketField, body)
			resp, _ = b.Post(s.env.Issuer+"/login/pin/change", url.Values{"ticket": {ticket}, "challenge": {challenge}, "new_pin": {"Nuovo123"}, "confirm_pin": {"Nuovo123"}})
			tok, claims := s.exchange(r, oidctest.RPRedirect(resp), verifier)
			if claims["acr"] != idp.ACRConsultazione || claims["auth_method"] != "pin" || claims["given_name"] != "Mario" {
				t.Fatalf("claims: %v", claims)
			}

			// The elevated scope: an ordinary PIN cannot reach it; the chooser says how to convert.
			r.Conf.Scopes = []string{"openid", "inps.dispositivo"}
			verifier = oauth2.GenerateVerifier()
			resp, body = s.pinLogin(b, r.Conf.AuthCodeURL(oidctest.RandomString(), oauth2.S256ChallengeOption(verifier)), cf, "Nuovo123")
			if !strings.Contains(body, "convertirlo in PIN dispositivo") {
				t.Fatalf("after an ordinary PIN login, the step-up page must explain conversion: %d %.500s", resp.StatusCode, body)
			}

			// An online revoca keeps the tokens until the replacement it sends
			// to the record is used; using it ends them all.
			revoke := url.Values{"fiscal_number": {cf}, "given_name": {"mario"}, "family_name": {"ROSSI"}, "gender": {"M"},
				"birthdate": {"1980-01-01"}, "birth_place": {"roma"}}
			if resp, body = b.Post(s.env.Issuer+"/login/pin/revoke", revoke); resp.StatusCode != http.StatusOK || !strings.Contains(body, "resta valido") {
				t.Fatalf("revoke: %d %.300s", resp.StatusCode, body)
			}
			if _, err := r.Provider.UserInfo(r.Ctx(), oauth2.StaticTokenSource(tok)); err != nil {
				t.Fatalf("a pending revoca ended the access token: %v", err)
			}
			replacement := s.secretBySubject("revoca richiesta, prima parte") + s.secretBySubject("revoca richiesta, seconda parte")
			r.Conf.Scopes = []string{"openid", "profile"}
			_, body = s.pinLogin(oidctest.NewBrowser(t), r.Conf.AuthCodeURL(oidctest.RandomString(), oauth2.S256ChallengeOption(oauth2.GenerateVerifier())), cf, replacement)
			if !strings.Contains(body, `name="ticket"`) {
				t.Fatalf("the replacement leads to the change form: %.300s", body)
			}
			if _, err := r.Conf.TokenSource(r.Ctx(), &oauth2.Token{RefreshToken: tok.RefreshToken}).Token(); err == nil {
				t.Fatal("a refresh token survived the revocation")
			}
			if _, err := r.Provider.UserInfo(r.Ctx(), oauth2.StaticTokenSource(tok)); err == nil {
				t.Fatal("an access token survived the revocation")
			}
		})
	}
}

// TestBranchPINReachesDispositivo: an MV35 PIN logs in at the dispositivo
// level and is granted the elevated scope.
func TestBranchPINReachesDispositivo(t *testing.T) {
	s := newSite(t, storagetest.SQLite(t))
	pin16, err := s.svc.IssueAtBranch(context.Background(), mario(), "op-3", "CI AB1234567")
	if err != nil {
		t.Fatal(err)
	}
	r := s.env.NewRP(clients.Spec{Scopes: []string{"openid", "inps.dispositivo"}})
	r.Conf.Scopes = []string{"openid", "inps.dispositivo"}
	b := oidctest.NewBrowser(t)
	verifier := oauth2.GenerateVerifier()
	_, body := s.pinLogin(b, r.Conf.AuthCodeURL(oidctest.RandomString(), oauth2.S256ChallengeOption(verifier)), cf, pin16)
	resp, _ := b.Post(s.env.Issuer+"/login/pin/change", url.Values{"ticket": {field(t, ticketField, body)}, "challenge": {field(t, challengeField, body)}, "new_pin": {"Sede2024"}, "confirm_pin": {"Sede2024"}})
	tok, claims := s.exchange(r, oidctest.RPRedirect(resp), verifier)
	if claims["acr"] != idp.ACRDispositivo || !strings.Contains(tok.Extra("scope").(string), "inps.dispositivo") {
		t.Fatalf("branch PIN: acr %v scope %v", claims["acr"], tok.Extra("scope"))
	}
}

// TestPINPagesRefuseCrossSitePosts: every PIN form is CSRF-protected.
func TestPINPagesRefuseCrossSitePosts(t *testing.T) {
	s := newSite(t, storagetest.SQLite(t))
	for _, path := range []string{"/login/pin/", "/login/pin/change", "/login/pin/request", "/login/pin/recover", "/login/pin/revoke", "/login/pin/activate", "/login/pin/convert"} {
		if got := oidctest.CrossSitePost(t, s.env.Issuer+path, url.Values{"fiscal_number": {cf}}); got != http.StatusForbidden {
			t.Errorf("cross-site POST %s: %d, want 403", path, got)
		}
	}
}

// TestRecoveryAnswersAlike: the recovery page answers the same for a match and
// for nothing, and queues a link only for the match.
func TestRecoveryAnswersAlike(t *testing.T) {
	s := newSite(t, storagetest.SQLite(t))
	ctx := context.Background()
	if err := s.svc.Seed(ctx, mario2Account(), "Abcd1234"); err != nil {
		t.Fatal(err)
	}
	b := oidctest.NewBrowser(t)
	_, matched := b.Post(s.env.Issuer+"/login/pin/recover", url.Values{"fiscal_number": {cf}, "email": {"mario@example.it"}, "mobile": {"+393331234567"}})
	_, unknown := b.Post(s.env.Issuer+"/login/pin/recover", url.Values{"fiscal_number": {"BNCLRA90D55F205C"}, "email": {"x@example.it"}, "mobile": {"+390"}})
	if matched != unknown {
		t.Fatal("the recovery page answers differently for a match")
	}
	links := s.secrets()["email"]
	if len(links) != 1 {
		t.Fatalf("want one link, got %v", links)
	}
	code := links[0][strings.Index(links[0], "code=")+5:]
	// Fetching the link (as a mail scanner would) does not spend it.
	link, _ := url.Parse(links[0])
	resp, _ := b.Get(s.env.Issuer + link.Path + "?" + link.RawQuery)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Referrer-Policy") != "no-referrer" {
		t.Fatalf("confirm page: %d %q", resp.StatusCode, resp.Header.Get("Referrer-Policy"))
	}
	code, _ = url.QueryUnescape(code)
	resp, _ = b.Post(s.env.Issuer+"/login/pin"+pin.RecoverConfirmPath, url.Values{"code": {code}})
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("confirm: %d", resp.StatusCode)
	}
	resp, _ = b.Post(s.env.Issuer+"/login/pin"+pin.RecoverConfirmPath, url.Values{"code": {code}})
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("a replayed recovery link: %d", resp.StatusCode)
	}
}
