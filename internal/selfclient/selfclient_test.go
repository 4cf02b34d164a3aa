package selfclient_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/ponte-id/ponte/idp"
	"github.com/ponte-id/ponte/idp/provider"
	"github.com/ponte-id/ponte/internal/oidctest"
	"github.com/ponte-id/ponte/internal/selfclient"
	"github.com/ponte-id/ponte/storage"
	"github.com/ponte-id/ponte/storage/storagetest"
)

const (
	citizenCF = "RSSMRA80A01H501U"
	otherCF   = "VRDGPP75C15F205S"
)

// pages is a provider on a real listener with two sets of pages logged in
// through it: /account (any level) and /console (dispositivo), each a
// self client reaching the provider in process.
type pages struct {
	env              *oidctest.Env
	account, console *selfclient.Client
}

func start(t *testing.T, store storage.Store) *pages {
	t.Helper()
	pg := &pages{}
	pg.env = oidctest.Start(t, store, oidctest.Options{
		Methods: func(string) []idp.Authenticator { return []idp.Authenticator{oidctest.FormLogin{}} },
		Routes: func(e *oidctest.Env) []provider.Route {
			mk := func(id, path string, level idp.Level) *selfclient.Client {
				c, err := selfclient.New(selfclient.Config{
					Issuer: e.Issuer, ClientID: id, Name: id, Path: path, Level: level,
					Scopes: []string{"profile", "fiscal_number"}, Box: e.Box, Sessions: e.Provider,
					HTTPClient: selfclient.InProcess(func() http.Handler { return e.Handler }),
				})
				if err != nil {
					t.Fatal(err)
				}
				if err := c.Register(context.Background(), e.Registry); err != nil {
					t.Fatal(err)
				}
				return c
			}
			pg.account = mk("ponte-account", "/account", idp.LevelConsultazione)
			pg.console = mk("ponte-console", "/console", idp.LevelDispositivo)
			var routes []provider.Route
			for _, c := range []*selfclient.Client{pg.account, pg.console} {
				mux := http.NewServeMux()
				path := strings.TrimSuffix(c.HomeURL()[len(e.Issuer):], "/")
				mux.Handle(path+"/callback", c.Handler())
				mux.Handle(path+"/", c.Require(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					s, _ := selfclient.FromContext(r.Context())
					fmt.Fprintf(w, "page %s sub=%s cf=%s acr=%s sid=%s", r.URL.RequestURI(), s.Subject, s.FiscalNumber, s.ACR, s.SID)
				})))
				routes = append(routes, provider.Route{Path: path, Prefix: true, Handler: mux})
			}
			return routes
		},
	})
	return pg
}

func backends(t *testing.T, f func(t *testing.T, store storage.Store)) {
	for _, b := range storagetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			t.Parallel()
			f(t, b.Open(t))
		})
	}
}

// loginTo opens path in b, logs in as cf at level and returns the page.
func (pg *pages) loginTo(b *oidctest.Browser, path, cf string, level idp.Level) (*http.Response, string) {
	b.T.Helper()
	resp, body := b.Get(pg.env.Issuer + path)
	return b.FormLoginAt(pg.env.Issuer, resp, body, cf, level)
}

func TestSelfClientLogin(t *testing.T) {
	backends(t, func(t *testing.T, store storage.Store) {
		pg := start(t, store)
		b := oidctest.NewBrowser(t)
		resp, body := pg.loginTo(b, "/account/sessions?x=1", citizenCF, idp.LevelConsultazione)
		if resp.StatusCode != http.StatusOK || !strings.HasPrefix(body, "page /account/sessions?x=1 ") ||
			!strings.Contains(body, "cf="+citizenCF) || !strings.Contains(body, "acr="+idp.ACRConsultazione) {
			t.Fatalf("after login: %d %s %q", resp.StatusCode, resp.Request.URL, body)
		}
		subj, err := store.GetSubjectByFiscalNumber(context.Background(), citizenCF)
		if err != nil || !strings.Contains(body, "sub="+subj.ID+" ") {
			t.Fatalf("subject %v %q", err, body)
		}
		// The page session serves the next request without a round trip.
		resp, body = b.Get(pg.env.Issuer + "/account/")
		if resp.Request.URL.Path != "/account/" || !strings.HasPrefix(body, "page /account/") {
			t.Fatalf("second request: %s %q", resp.Request.URL, body)
		}
		// The console demands dispositivo: an ordinary session is sent back to
		// the chooser; cancelling there is refused with the level's page.
		resp, body = b.Get(pg.env.Issuer + "/console/")
		ch := oidctest.Challenge(body)
		if !strings.HasPrefix(resp.Request.URL.Path, "/login") || ch == "" {
			t.Fatalf("console with an ordinary session: %s %.200s", resp.Request.URL, body)
		}
		resp, body = b.Post(pg.env.Issuer+"/login/abort", url.Values{"challenge": {ch}, "action": {"continue"}})
		if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "livello dispositivo") {
			t.Fatalf("continue below an essential level: %d %s %.300s", resp.StatusCode, resp.Request.URL, body)
		}
		// At the dispositivo level the console opens; the account pages too.
		resp, body = pg.loginTo(b, "/console/", citizenCF, idp.LevelDispositivo)
		if resp.StatusCode != http.StatusOK || !strings.Contains(body, "acr="+idp.ACRDispositivo) {
			t.Fatalf("console at dispositivo: %d %q", resp.StatusCode, body)
		}
	})
}

// TestSelfClientBoundToSSO: the page session ends with the SSO session.
func TestSelfClientBoundToSSO(t *testing.T) {
	backends(t, func(t *testing.T, store storage.Store) {
		pg := start(t, store)
		cases := []struct {
			name string
			end  func(t *testing.T, b *oidctest.Browser)
		}{
			{"RP-initiated logout", func(t *testing.T, b *oidctest.Browser) {
				resp, _ := b.Post(pg.env.Issuer+"/logout", url.Values{"confirm": {"yes"}})
				if resp.StatusCode != http.StatusOK {
					t.Fatalf("logout: %d", resp.StatusCode)
				}
			}},
			{"sessions ended in storage (revocation, admin)", func(t *testing.T, b *oidctest.Browser) {
				subj, _ := store.GetSubjectByFiscalNumber(context.Background(), citizenCF)
				if n, err := store.DeleteSubjectSessions(context.Background(), subj.ID); err != nil || n == 0 {
					t.Fatalf("delete sessions: %d %v", n, err)
				}
			}},
			{"another citizen logs in at the same browser", func(t *testing.T, b *oidctest.Browser) {
				resp, body := b.Get(pg.env.Issuer + "/authorize?" + url.Values{"client_id": {"ponte-account"}, "response_type": {"code"},
					"scope": {"openid"}, "redirect_uri": {pg.account.CallbackURL()}, "prompt": {"login"},
					"code_challenge": {"E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"}, "code_challenge_method": {"S256"},
					"state": {oidctest.RandomString()}}.Encode())
				b.FormLoginAt(pg.env.Issuer, resp, body, otherCF, idp.LevelConsultazione)
			}},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				b := oidctest.NewBrowser(t)
				if _, body := pg.loginTo(b, "/account/", citizenCF, idp.LevelConsultazione); !strings.Contains(body, "cf="+citizenCF) {
					t.Fatalf("login: %q", body)
				}
				tc.end(t, b)
				// A form posted without a live session is refused, never replayed.
				resp, _ := b.Post(pg.env.Issuer+"/account/end", url.Values{"sid": {"x"}})
				if resp.StatusCode != http.StatusUnauthorized {
					t.Fatalf("post without a session: %d", resp.StatusCode)
				}
				resp, body := b.Get(pg.env.Issuer + "/account/")
				if strings.Contains(body, "cf="+citizenCF) {
					t.Fatalf("the page session outlived the SSO session: %s %q", resp.Request.URL, body)
				}
			})
		}
	})
}

// TestSelfClientHostileCallbacks: a callback the browser did not start logs
// nobody in (login CSRF), and cookies cannot be forged or moved.
func TestSelfClientHostileCallbacks(t *testing.T) {
	backends(t, func(t *testing.T, store storage.Store) {
		pg := start(t, store)
		// The attacker logs in and stops before the callback: a code of their own.
		attacker := oidctest.NewBrowser(t)
		attacker.Client.CheckRedirect = func(req *http.Request, _ []*http.Request) error {
			if req.URL.Path == "/account/callback" {
				return http.ErrUseLastResponse
			}
			return nil
		}
		resp, body := attacker.Get(pg.env.Issuer + "/account/")
		resp, _ = attacker.FormLoginAt(pg.env.Issuer, resp, body, otherCF, idp.LevelConsultazione)
		loc, err := resp.Location()
		if err != nil || loc.Path != "/account/callback" || loc.Query().Get("code") == "" {
			t.Fatalf("no code: %d %v", resp.StatusCode, err)
		}
		victim := oidctest.NewBrowser(t)
		cases := []struct{ name, url string }{
			{"attacker's callback in the victim's browser", loc.String()},
			{"no state", pg.env.Issuer + "/account/callback?code=" + url.QueryEscape(loc.Query().Get("code"))},
			{"error without flow", pg.env.Issuer + "/account/callback?error=access_denied&state=x"},
		}
		for _, tc := range cases {
			resp, body := victim.Get(tc.url)
			if resp.StatusCode != http.StatusBadRequest || strings.Contains(body, "page ") {
				t.Errorf("%s: %d %.200s", tc.name, resp.StatusCode, body)
			}
			if resp.Header.Get("Cache-Control") != "no-store" {
				t.Errorf("%s: error page cacheable", tc.name)
			}
		}
		// The victim, logged in as themselves, with a cookie of the console
		// (another client) or a tampered one, gets no page session from it.
		pg.loginTo(victim, "/account/", citizenCF, idp.LevelConsultazione)
		u, _ := url.Parse(pg.env.Issuer + "/account/")
		var sess *http.Cookie
		for _, c := range victim.Client.Jar.Cookies(u) {
			if c.Name == "ponte_self_ponte-account" {
				sess = c
			}
		}
		if sess == nil {
			t.Fatal("no page session cookie")
		}
		tampered := []byte(sess.Value)
		tampered[len(tampered)/2] ^= 1
		for name, value := range map[string]string{"tampered": string(tampered), "truncated": sess.Value[:20], "empty": ""} {
			req, _ := http.NewRequest(http.MethodGet, pg.env.Issuer+"/account/", nil)
			req.AddCookie(&http.Cookie{Name: "ponte_self_ponte-account", Value: value})
			plain := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
			resp, err := plain.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusSeeOther || !strings.Contains(resp.Header.Get("Location"), "/authorize?") {
				t.Errorf("%s cookie: %d %s", name, resp.StatusCode, resp.Header.Get("Location"))
			}
		}
		// The page cookie alone, without the SSO session cookie, is nothing.
		req, _ := http.NewRequest(http.MethodGet, pg.env.Issuer+"/account/", nil)
		req.AddCookie(sess)
		plain := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		resp, err = plain.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusSeeOther {
			t.Errorf("page cookie without the SSO session: %d", resp.StatusCode)
		}
	})
}
