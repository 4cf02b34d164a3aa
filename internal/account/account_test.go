package account_test

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"html"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"golang.org/x/oauth2"

	"github.com/ponte-id/ponte/idp"
	"github.com/ponte-id/ponte/idp/clients"
	"github.com/ponte-id/ponte/idp/provider"
	"github.com/ponte-id/ponte/internal/account"
	"github.com/ponte-id/ponte/internal/oidctest"
	"github.com/ponte-id/ponte/internal/selfclient"
	"github.com/ponte-id/ponte/storage"
	"github.com/ponte-id/ponte/storage/storagetest"
)

const (
	aliceCF = "RSSMRA80A01H501U"
	bobCF   = "VRDGPP75C15F205S"
)

// site is a provider with the account pages mounted, and a relying party
// ("Cassetto previdenziale") that takes back-channel logouts.
type site struct {
	env *oidctest.Env
	rp  *oidctest.RP
}

func newSite(t testing.TB, store storage.Store, tweaks ...func(*provider.Config)) *site {
	s := &site{}
	s.env = oidctest.Start(t, store, oidctest.Options{
		Tweak: func(c *provider.Config) {
			for _, f := range tweaks {
				f(c)
			}
		},
		Methods: func(string) []idp.Authenticator { return []idp.Authenticator{oidctest.FormLogin{}} },
		Routes: func(e *oidctest.Env) []provider.Route {
			self, err := selfclient.New(selfclient.Config{Issuer: e.Issuer, ClientID: account.ClientID, Name: "Area personale",
				Path: account.Path, Scopes: []string{"profile"}, Box: e.Box, Sessions: e.Provider,
				HTTPClient: selfclient.InProcess(func() http.Handler { return e.Handler })})
			if err != nil {
				t.Fatal(err)
			}
			if err := self.Register(context.Background(), e.Registry); err != nil {
				t.Fatal(err)
			}
			pages, err := account.New(account.Config{Self: self, Store: store, Sessions: e.Provider.Sessions(),
				CSRFKey: e.Box.Derive("account-csrf", 32)})
			if err != nil {
				t.Fatal(err)
			}
			return []provider.Route{{Path: account.Path, Prefix: true, Handler: pages.Handler()}}
		},
	})
	s.rp = s.env.NewRP(clients.Spec{ID: "rp-cassetto", Name: "Cassetto previdenziale", BackchannelLogoutURI: "https://cassetto.example.it/bcl"})
	return s
}

// loginRP logs b in to the relying party as cf (a session the account page lists).
func (s *site) loginRP(t testing.TB, b *oidctest.Browser, cf string) {
	t.Helper()
	resp, body := b.Get(s.rp.Conf.AuthCodeURL(oidctest.RandomString(), oauth2.S256ChallengeOption(oauth2.GenerateVerifier())))
	if oidctest.RPRedirect(resp) != nil {
		return
	}
	resp, _ = b.FormLoginAt(s.env.Issuer, resp, body, cf, idp.LevelConsultazione)
	if oidctest.RPRedirect(resp) == nil {
		t.Fatalf("no code: %d %s", resp.StatusCode, resp.Request.URL)
	}
}

// account opens the account pages in b, logging in as cf if needed.
func (s *site) account(t testing.TB, b *oidctest.Browser, cf string) string {
	t.Helper()
	resp, body := b.Get(s.env.Issuer + "/account/")
	if strings.HasPrefix(resp.Request.URL.Path, "/login") {
		resp, body = b.FormLoginAt(s.env.Issuer, resp, body, cf, idp.LevelConsultazione)
	}
	if resp.StatusCode != http.StatusOK || resp.Request.URL.Path != "/account/" {
		t.Fatalf("account page: %d %s %.300s", resp.StatusCode, resp.Request.URL, body)
	}
	if resp.Header.Get("Cache-Control") != "no-store" {
		t.Error("the account page may be cached")
	}
	return body
}

var (
	sidRE  = regexp.MustCompile(`name="sid" value="([^"]+)"`)
	csrfRE = regexp.MustCompile(`name="csrf" value="([^"]+)"`)
)

func field(t testing.TB, re *regexp.Regexp, body string) []string {
	var out []string
	for _, m := range re.FindAllStringSubmatch(body, -1) {
		out = append(out, html.UnescapeString(m[1]))
	}
	if len(out) == 0 {
		t.Fatalf("no %s on the page: %.500s", re, body)
	}
	return out
}

// sids are the sids of a citizen's live sessions, from storage.
func sids(t testing.TB, store storage.Store, cf string) []string {
	t.Helper()
	subj, err := store.GetSubjectByFiscalNumber(context.Background(), cf)
	if err != nil {
		t.Fatal(err)
	}
	ss, err := store.ListSubjectSessions(context.Background(), subj.ID)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, s := range ss {
		out = append(out, provider.SID(s.ID))
	}
	return out
}

func queued(t testing.TB, store storage.Store) int {
	t.Helper()
	l, err := store.ListLogouts(context.Background(), false, 100)
	if err != nil {
		t.Fatal(err)
	}
	return len(l)
}

func backends(t *testing.T, f func(t *testing.T, store storage.Store)) {
	for _, b := range storagetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			t.Parallel()
			f(t, b.Open(t))
		})
	}
}

// TestSessionsAndLogins: the page lists the citizen's open sessions (how,
// when, from where, with which services) and recent logins; ending another
// session ends it and queues its back-channel logout; ending all ends this
// one too.
func TestSessionsAndLogins(t *testing.T) {
	backends(t, func(t *testing.T, store storage.Store) {
		s := newSite(t, store)
		phone, desk := oidctest.NewBrowser(t), oidctest.NewBrowser(t)
		s.loginRP(t, phone, aliceCF)
		body := s.account(t, desk, aliceCF)
		for _, want := range []string{"I tuoi accessi", "Accessi aperti", "Questo browser", "Cassetto previdenziale", "Area personale",
			"127.0.0.1", "Go-http-client", "consultazione", "Accessi recenti", "Chiudi tutti gli accessi"} {
			if !strings.Contains(body, want) {
				t.Errorf("the page lacks %q", want)
			}
		}
		if n := strings.Count(body, `name="sid"`); n != 2 {
			t.Fatalf("%d sessions listed, want 2", n)
		}
		resp, en := desk.Get(s.env.Issuer + "/account/?lang=en")
		if resp.StatusCode != http.StatusOK || !strings.Contains(en, "Your logins") || !strings.Contains(en, `lang="en"`) {
			t.Errorf("English page: %d", resp.StatusCode)
		}
		desk.Get(s.env.Issuer + "/account/?lang=it")

		// End the phone's session from the desk.
		all := sids(t, store, aliceCF)
		deskSID := ""
		for _, sid := range field(t, sidRE, body) {
			if !strings.Contains(body, `value="`+sid+`">`) {
				t.Fatal("sid not on the page")
			}
		}
		page := field(t, sidRE, body)
		for _, sid := range all {
			if sid != page[0] && sid != page[1] {
				t.Fatalf("listed sids %v are not the citizen's %v", page, all)
			}
		}
		// The current session is marked; the other is the phone's.
		idx := strings.Index(body, "Questo browser")
		phoneSID := page[0]
		if strings.Index(body, `value="`+page[0]+`"`) > idx {
			deskSID = page[0]
			phoneSID = page[1]
		} else {
			deskSID = page[1]
		}
		csrf := field(t, csrfRE, body)[0]
		resp, body = desk.Post(s.env.Issuer+"/account/sessions/end", url.Values{"sid": {phoneSID}, "csrf": {csrf}})
		if resp.Request.URL.RequestURI() != "/account/?done=one" || !strings.Contains(body, "L&#39;accesso è stato chiuso") {
			t.Fatalf("after ending: %s %.300s", resp.Request.URL, body)
		}
		if got := sids(t, store, aliceCF); len(got) != 1 || got[0] != deskSID {
			t.Fatalf("sessions left %v, want the desk's %s", got, deskSID)
		}
		if queued(t, store) != 1 {
			t.Fatalf("%d back-channel logouts queued, want 1 (the phone's relying party)", queued(t, store))
		}
		// The phone is logged out: the relying party's next login asks again.
		resp, _ = phone.Get(s.rp.Conf.AuthCodeURL(oidctest.RandomString(), oauth2.S256ChallengeOption(oauth2.GenerateVerifier())))
		if !strings.HasPrefix(resp.Request.URL.Path, "/login") {
			t.Fatalf("the phone is still logged in: %s", resp.Request.URL)
		}
		if n := strings.Count(body, `name="sid"`); n != 1 {
			t.Fatalf("%d sessions listed after ending one", n)
		}

		// End every session: this one too.
		s.loginRP(t, phone, aliceCF)
		resp, body = desk.Post(s.env.Issuer+"/account/sessions/end-all", url.Values{"csrf": {csrf}})
		if resp.Request.URL.Path != "/account/ended" || !strings.Contains(body, "Accessi chiusi") {
			t.Fatalf("after ending all: %s %.300s", resp.Request.URL, body)
		}
		if got := sids(t, store, aliceCF); len(got) != 0 {
			t.Fatalf("sessions left: %v", got)
		}
		if queued(t, store) != 2 {
			t.Fatalf("%d logouts queued, want 2", queued(t, store))
		}
		// The account page asks for a login again.
		resp, _ = desk.Get(s.env.Issuer + "/account/")
		if !strings.HasPrefix(resp.Request.URL.Path, "/login") {
			t.Fatalf("still logged in to the account page: %s", resp.Request.URL)
		}
	})
}

// TestAnotherCitizensSession: a citizen can never see or end another
// citizen's session, whether its sid is copied or guessed, nor post with
// another citizen's form token or from another site.
func TestAnotherCitizensSession(t *testing.T) {
	backends(t, func(t *testing.T, store storage.Store) {
		s := newSite(t, store)
		alice, bob := oidctest.NewBrowser(t), oidctest.NewBrowser(t)
		aliceBody := s.account(t, alice, aliceCF)
		bobBody := s.account(t, bob, bobCF)
		s.loginRP(t, oidctest.NewBrowser(t), bobCF)
		bobSIDs := sids(t, store, bobCF)
		if len(bobSIDs) != 2 {
			t.Fatalf("bob has %d sessions", len(bobSIDs))
		}
		for _, sid := range bobSIDs {
			if strings.Contains(aliceBody, sid) || strings.Contains(s.account(t, alice, aliceCF), sid) {
				t.Fatal("alice's page shows bob's session")
			}
		}
		if strings.Contains(s.account(t, alice, aliceCF), "VRDGPP") {
			t.Fatal("alice's page shows bob's codice fiscale")
		}
		aliceCSRF := field(t, csrfRE, aliceBody)[0]
		bobCSRF := field(t, csrfRE, bobBody)[0]
		guess := make([]byte, 16)
		_, _ = rand.Read(guess)
		cases := []struct {
			name       string
			form       url.Values
			path       string
			wantStatus int
			wantPath   string
		}{
			{"bob's sid, copied", url.Values{"sid": {bobSIDs[0]}, "csrf": {aliceCSRF}}, "/account/sessions/end", http.StatusOK, "/account/"},
			{"a guessed sid", url.Values{"sid": {base64.RawURLEncoding.EncodeToString(guess)}, "csrf": {aliceCSRF}}, "/account/sessions/end", http.StatusOK, "/account/"},
			{"an empty sid", url.Values{"sid": {""}, "csrf": {aliceCSRF}}, "/account/sessions/end", http.StatusOK, "/account/"},
			{"bob's form token", url.Values{"sid": {bobSIDs[0]}, "csrf": {bobCSRF}}, "/account/sessions/end", http.StatusForbidden, ""},
			{"no form token", url.Values{"sid": {bobSIDs[0]}}, "/account/sessions/end", http.StatusForbidden, ""},
			{"end all with bob's token", url.Values{"csrf": {bobCSRF}}, "/account/sessions/end-all", http.StatusForbidden, ""},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				resp, body := alice.Post(s.env.Issuer+tc.path, tc.form)
				if resp.StatusCode != tc.wantStatus || tc.wantPath != "" && resp.Request.URL.Path != tc.wantPath {
					t.Fatalf("%d %s %.200s", resp.StatusCode, resp.Request.URL, body)
				}
				if tc.wantStatus == http.StatusOK && !strings.Contains(body, "non è più aperto") {
					t.Errorf("no notice: %.300s", body)
				}
				if got := sids(t, store, bobCF); len(got) != 2 {
					t.Fatalf("bob's sessions: %d", len(got))
				}
				if len(sids(t, store, aliceCF)) != 1 {
					t.Fatal("alice's own session ended")
				}
				if queued(t, store) != 0 {
					t.Fatal("a logout was queued")
				}
			})
		}
		// Bob's own cookies in another site's form: refused by the cross-origin check.
		for _, path := range []string{"/account/sessions/end", "/account/sessions/end-all"} {
			if code := oidctest.CrossSitePost(t, s.env.Issuer+path, url.Values{"sid": {bobSIDs[0]}, "csrf": {bobCSRF}}); code != http.StatusForbidden {
				t.Errorf("cross-site post to %s: %d", path, code)
			}
		}
		// Without a login, nothing is shown or done.
		stranger := oidctest.NewBrowser(t)
		resp, _ := stranger.Post(s.env.Issuer+"/account/sessions/end-all", url.Values{"csrf": {bobCSRF}})
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("a stranger's post: %d", resp.StatusCode)
		}
		if len(sids(t, store, bobCF)) != 2 {
			t.Fatal("a stranger ended bob's sessions")
		}
	})
}

// TestHistoryBounded: the login history keeps the provider's bound per
// citizen, and the page shows at most 20.
func TestHistoryBounded(t *testing.T) {
	store := storagetest.SQLite(t)
	s := newSite(t, store, func(c *provider.Config) { c.LoginHistoryKeep = 22 })
	for range 25 {
		s.loginRP(t, oidctest.NewBrowser(t), aliceCF)
	}
	body := s.account(t, oidctest.NewBrowser(t), aliceCF)
	if n := strings.Count(body, "<tr><td>"); n != 20 {
		t.Errorf("%d logins shown, want 20", n)
	}
	subj, _ := store.GetSubjectByFiscalNumber(context.Background(), aliceCF)
	if l, _ := store.ListLogins(context.Background(), subj.ID, 1000); len(l) != 22 {
		t.Errorf("%d logins kept, want the bound of 22", len(l))
	}
}
