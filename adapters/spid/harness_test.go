// The tests of package spid_test run Ponte whole (provider, storage, SQLite,
// PostgreSQL): a fuzzing build (-tags fuzzing) leaves them out, so that the
// fuzzer instruments a quarter of the code (see fuzz_test.go).

//go:build !fuzzing

package spid_test

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"html"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/ponte-id/ponte/adapters/pin"
	"github.com/ponte-id/ponte/adapters/spid"
	"github.com/ponte-id/ponte/adapters/spid/testidp"
	"github.com/ponte-id/ponte/idp"
	"github.com/ponte-id/ponte/idp/clients"
	"github.com/ponte-id/ponte/idp/provider"
	"github.com/ponte-id/ponte/internal/config"
	"github.com/ponte-id/ponte/internal/method"
	"github.com/ponte-id/ponte/internal/oidctest"
	"github.com/ponte-id/ponte/internal/seal"
	"github.com/ponte-id/ponte/storage"
	"github.com/ponte-id/ponte/storage/sqlstore"
	"github.com/ponte-id/ponte/storage/storagetest"
)

// mario is the citizen of the tests: a PIN account and a SPID identity.
var mario = testidp.User{FiscalNumber: "RSSMRA80A01H501U", GivenName: "Mario", FamilyName: "Rossi",
	Birthdate: "1980-01-01", Gender: "M", Email: "mario.rossi@example.it", Mobile: "+393330000001"}

// site is Ponte with SPID (and the PIN) on a real listener, and a test
// identity provider on its own listener (another site).
type site struct {
	t      testing.TB
	env    *oidctest.Env
	idp    *testidp.IdP
	idpSrv *httptest.Server
	spid   idp.Authenticator
	pins   *pin.Service
}

// newSite starts Ponte on store with SPID trusting a test identity provider
// and the identity providers of the metadata files extra.
func newSite(t testing.TB, store *sqlstore.Store, extra ...string) *site {
	t.Helper()
	return newSiteWith(t, store, nil, extra...)
}

// newSiteWith is newSite with more PONTE_SPID_* variables.
func newSiteWith(t testing.TB, store *sqlstore.Store, environ []string, extra ...string) *site {
	t.Helper()
	s := &site{t: t}
	mux := http.NewServeMux()
	s.idpSrv = httptest.NewServer(mux)
	t.Cleanup(s.idpSrv.Close)
	var err error
	s.idp, err = testidp.New(testidp.Config{EntityID: s.idpSrv.URL + "/idp", BaseURL: s.idpSrv.URL, Users: []testidp.User{mario}})
	if err != nil {
		t.Fatal(err)
	}
	mux.Handle("/", s.idp.Handler())
	dir := t.TempDir()
	md := filepath.Join(dir, "idp.xml")
	if err := os.WriteFile(md, s.idp.Metadata(), 0o600); err != nil {
		t.Fatal(err)
	}
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	box, _ := seal.New(key)
	s.env = oidctest.Start(t, store, oidctest.Options{MasterKey: key, Methods: func(issuer string) []idp.Authenticator {
		kp, err := spid.NewSPKeypair(spid.SPCertificate{EntityID: issuer + "/login/spid/metadata", IPACode: "inps", Organization: "INPS"}, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		_ = os.WriteFile(filepath.Join(dir, "sp.crt"), kp.CertPEM(), 0o600)
		_ = os.WriteFile(filepath.Join(dir, "sp.key"), kp.KeyPEM(), 0o600)
		env := []string{"PONTE_MASTER_KEY=" + base64.StdEncoding.EncodeToString(key), "PONTE_SPID_ENABLED=true",
			"PONTE_SPID_IDP_METADATA_FILES=" + strings.Join(append([]string{md}, extra...), ","), "PONTE_SPID_CERT_FILE=" + filepath.Join(dir, "sp.crt"),
			"PONTE_SPID_KEY_FILE=" + filepath.Join(dir, "sp.key")}
		env = append(env, environ...)
		cfg, err := config.Load("", env)
		if err != nil {
			t.Fatal(err)
		}
		s.spid, err = spid.Plug.Open(cfg.Section("spid"), method.Deps{Store: store, Box: box, Issuer: issuer, Logger: quietLog()})
		if err != nil {
			t.Fatal(err)
		}
		pcfg := pin.DefaultConfig()
		pcfg.Params = pin.Params{MemoryKiB: 8 * 1024, Time: 1, Threads: 1}
		pcfg.BaseURL = issuer
		s.pins, err = pin.NewService(pcfg, pin.Deps{Store: store, Box: box, Revoker: provider.Revoker{Store: store}})
		if err != nil {
			t.Fatal(err)
		}
		return []idp.Authenticator{s.pins.Authenticator(), s.spid}
	}})
	resp, body := oidctest.NewBrowser(t).Get(s.env.Issuer + "/login/spid/metadata")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("SP metadata: %d", resp.StatusCode)
	}
	if err := s.idp.TrustSP([]byte(body)); err != nil {
		t.Fatal(err)
	}
	return s
}

// rp registers a relying party that may ask for dispositivo.
func (s *site) rp() *oidctest.RP {
	r := s.env.NewRP(clients.Spec{Scopes: []string{"openid", "profile", "inps.consultazione", "inps.dispositivo"}})
	r.Conf.Scopes = []string{"openid", "inps.dispositivo"}
	return r
}

var (
	hiddenRE = regexp.MustCompile(`<input type="hidden" name="([^"]+)" value="([^"]*)">`)
	actionRE = regexp.MustCompile(`<form method="post" action="([^"]+)"`)
)

// form reads a page's form: its action and hidden fields.
func form(t testing.TB, body string) (string, url.Values) {
	t.Helper()
	m := actionRE.FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no form in %.500s", body)
	}
	v := url.Values{}
	for _, h := range hiddenRE.FindAllStringSubmatch(body, -1) {
		v.Set(h[1], html.UnescapeString(h[2]))
	}
	return html.UnescapeString(m[1]), v
}

// toIdP starts an authorization in b that goes straight to the test
// identity provider (idp_hint) and returns the identity provider's login page.
func (s *site) toIdP(b *oidctest.Browser, r *oidctest.RP, verifier string) string {
	s.t.Helper()
	u := r.Conf.AuthCodeURL(oidctest.RandomString(), oauth2.S256ChallengeOption(verifier),
		oauth2.SetAuthURLParam("idp_hint", "spid:"+s.idp.EntityID()))
	resp, body := b.Get(u)
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Request.URL.String(), s.idpSrv.URL+"/sso?SAMLRequest=") {
		s.t.Fatalf("idp_hint did not lead straight to the identity provider: %d %s %.300s", resp.StatusCode, resp.Request.URL, body)
	}
	return body
}

// idpLogin logs in at the test identity provider as the user and returns
// the page that posts the response to Ponte's ACS.
func (s *site) idpLogin(b *oidctest.Browser, page, fiscal string) string {
	s.t.Helper()
	action, v := form(s.t, page)
	v.Set("user", fiscal)
	v.Set("action", "login")
	resp, body := b.Post(action, v)
	if resp.StatusCode != http.StatusOK {
		s.t.Fatalf("identity provider login: %d %.300s", resp.StatusCode, body)
	}
	return body
}

// post posts a form cross-site, as the identity provider's page does, in b.
func post(t testing.TB, b *oidctest.Browser, u string, v url.Values) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, u, strings.NewReader(v.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", "null")
	req.Header.Set("Sec-Fetch-Site", "cross-site")
	resp, err := b.Client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, string(body)
}

// exchange redeems the code of loc and returns the ID token's claims.
func exchange(t testing.TB, r *oidctest.RP, loc *url.URL, verifier string) map[string]any {
	t.Helper()
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
	return claims
}

// spidLogin is the whole SPID login in b: RP → Ponte → identity provider →
// ACS → resume → RP; it returns the ID token's claims.
func (s *site) spidLogin(b *oidctest.Browser, r *oidctest.RP) map[string]any {
	s.t.Helper()
	verifier := oauth2.GenerateVerifier()
	page := s.idpLogin(b, s.toIdP(b, r, verifier), mario.FiscalNumber)
	action, v := form(s.t, page)
	resp, body := post(s.t, b, action, v)
	loc := oidctest.RPRedirect(resp)
	if loc == nil {
		// The ACS answered with the redirect to the resume: follow it in b.
		resp, body = b.Get(resp.Request.URL.String())
		loc = oidctest.RPRedirect(resp)
	}
	if loc == nil {
		s.t.Fatalf("SPID login did not return to the RP: %d %.500s", resp.StatusCode, body)
	}
	return exchange(s.t, r, loc, verifier)
}

func backends(t *testing.T, f func(t *testing.T, store *sqlstore.Store)) {
	for _, be := range storagetest.Backends() {
		t.Run(be.Name, func(t *testing.T) { f(t, be.Open(t)) })
	}
}

var _ = context.Background

func pinAccount() storage.PINAccount {
	return storage.PINAccount{FiscalNumber: mario.FiscalNumber, GivenName: "Mario", FamilyName: "Rossi", Gender: "M", Birthdate: "1980-01-01",
		BirthPlace: "Roma", Residence: storage.Address{Street: "Via Roma", Number: "1", PostalCode: "00100", City: "Roma", Province: "RM"},
		Mobile: "+393330000001", Email: "mario.rossi@example.it"}
}
