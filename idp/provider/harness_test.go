package provider_test

import (
	"fmt"
	"html"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/ponte-id/ponte/idp"
	"github.com/ponte-id/ponte/idp/provider"
	"github.com/ponte-id/ponte/internal/oidctest"
	"github.com/ponte-id/ponte/storage"
	"github.com/ponte-id/ponte/storage/storagetest"
)

// testAuth is a login method for tests: a form that asserts a codice fiscale
// and a level. It goes through the same Host calls as a real adapter.
type testAuth struct{}

func (testAuth) Method() idp.Method  { return "test" }
func (testAuth) Label(string) string { return "Test login" }
func (testAuth) MaxLevel() idp.Level { return idp.LevelDispositivo }
func (testAuth) Handler(h idp.Host) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		challenge := r.FormValue("challenge")
		req, err := h.LoginRequest(r, challenge)
		if err != nil {
			http.Error(w, "unknown challenge", http.StatusBadRequest)
			return
		}
		if r.Method == http.MethodGet {
			fmt.Fprintf(w, `<form method="post" action="/login/test/"><input name="challenge" value="%s">min=%d hint=%s</form>`,
				html.EscapeString(challenge), req.MinLevel, req.LoginHint)
			return
		}
		level, _ := strconv.Atoi(r.FormValue("level"))
		h.CompleteLogin(w, r, challenge, idp.Identity{
			FiscalNumber: r.FormValue("cf"), GivenName: "Mario", FamilyName: "Rossi", Birthdate: "1980-01-01",
			Gender: "M", Email: "mario.rossi@example.it", Level: idp.Level(level), Method: idp.MethodPIN, AMR: []string{"pwd"},
		})
	})
}

// env, rp and browser are the shared end-to-end harness.
type (
	env     = oidctest.Env
	rp      = oidctest.RP
	browser = oidctest.Browser
)

const (
	citizenCF   = "RSSMRA80A01H501U"
	otherCF     = "VRDGPP75C15F205S"
	redirectURI = oidctest.RedirectURI
)

// newEnv starts a provider with the test login method on store.
func newEnv(t testing.TB, store storage.Store, tweaks ...func(*provider.Config)) *env {
	return newEnvWithKey(t, store, nil, tweaks...)
}

func newEnvWithKey(t testing.TB, store storage.Store, master []byte, tweaks ...func(*provider.Config)) *env {
	opts := oidctest.Options{MasterKey: master, Methods: func(string) []idp.Authenticator { return []idp.Authenticator{testAuth{}} }}
	if len(tweaks) > 0 {
		opts.Tweak = func(c *provider.Config) {
			for _, f := range tweaks {
				f(c)
			}
		}
	}
	return oidctest.Start(t, store, opts)
}

var (
	newBrowser   = oidctest.NewBrowser
	rpRedirect   = oidctest.RPRedirect
	randomString = oidctest.RandomString
)

var challengeRE = regexp.MustCompile(`name="challenge" value="([^"]+)"`)

// login follows an authorization URL, logs in with the test method at level
// (unless the SSO session answers first) and returns the redirect to the RP.
func login(b *browser, issuer, authURL, cf string, level idp.Level) *url.URL {
	b.T.Helper()
	resp, body := b.Get(authURL)
	if loc := rpRedirect(resp); loc != nil {
		return loc
	}
	if resp.StatusCode != http.StatusOK || !strings.Contains(resp.Request.URL.Path, "/login") {
		b.T.Fatalf("expected the login page, got %d %s: %.300s", resp.StatusCode, resp.Request.URL, body)
	}
	m := challengeRE.FindStringSubmatch(body)
	if m == nil {
		b.T.Fatalf("no challenge on %s: %.500s", resp.Request.URL, body)
	}
	challenge := html.UnescapeString(m[1])
	resp, body = b.Get(issuer + "/login/test/?challenge=" + url.QueryEscape(challenge))
	if resp.StatusCode != http.StatusOK {
		b.T.Fatalf("test login page: %d %s", resp.StatusCode, body)
	}
	resp, body = b.Post(issuer+"/login/test/", url.Values{
		"challenge": {challenge}, "cf": {cf}, "level": {strconv.Itoa(int(level))},
	})
	loc := rpRedirect(resp)
	if loc == nil {
		b.T.Fatalf("login did not return to the RP: %d %s %.300s", resp.StatusCode, resp.Request.URL, body)
	}
	return loc
}

// backends runs f once per storage backend, the backends in parallel (each
// has its own provider and database).
func backends(t *testing.T, f func(t *testing.T, store storage.Store)) {
	for _, b := range storagetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			t.Parallel()
			f(t, b.Open(t))
		})
	}
}
