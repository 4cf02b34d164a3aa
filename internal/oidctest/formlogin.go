package oidctest

import (
	"fmt"
	"html"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"

	"github.com/ponte-id/ponte/idp"
)

// FormLogin is a login method for tests, mounted at /login/test/: a form
// that asserts a codice fiscale (cf) and a level (level, 1 or 2), and may name
// the session (session_key) as an upstream identity provider's would. A POST
// to /login/test/upstream-logout with session_key ends the sessions so named
// (Host.EndSessions), as an identity provider's logout would. It goes through
// the same Host calls as a real method.
type FormLogin struct{}

var _ idp.Authenticator = FormLogin{}

// Method is "test".
func (FormLogin) Method() idp.Method { return "test" }

// Label names the method on the chooser.
func (FormLogin) Label(string) string { return "Test login" }

// MaxLevel is dispositivo.
func (FormLogin) MaxLevel() idp.Level { return idp.LevelDispositivo }

// Handler serves the form and completes the login it asserts.
func (FormLogin) Handler(h idp.Host) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/upstream-logout" && r.Method == http.MethodPost {
			n, err := h.EndSessions(r.Context(), r.FormValue("session_key"))
			if err != nil {
				http.Error(w, err.Error(), http.StatusInternalServerError)
				return
			}
			fmt.Fprintf(w, "ended %d", n)
			return
		}
		challenge := r.FormValue("challenge")
		if _, err := h.LoginRequest(r, challenge); err != nil {
			http.Error(w, "unknown challenge", http.StatusBadRequest)
			return
		}
		if r.Method == http.MethodGet {
			fmt.Fprintf(w, `<!doctype html><html lang="it"><head><title>Test login</title></head><body><main><h1>Test login</h1>
<form method="post" action="/login/test/"><input type="hidden" name="challenge" value="%s">
<label for="cf">Codice fiscale</label> <input id="cf" name="cf" autocomplete="off">
<label for="level">Livello</label> <input id="level" name="level" value="1">
<button type="submit">Entra</button></form></main></body></html>`, html.EscapeString(challenge))
			return
		}
		level, _ := strconv.Atoi(r.FormValue("level"))
		h.CompleteLogin(w, r, challenge, idp.Identity{
			FiscalNumber: r.FormValue("cf"), GivenName: "Mario", FamilyName: "Rossi", Birthdate: "1980-01-01",
			Gender: "M", Level: idp.Level(level), Method: "test", AMR: []string{"pwd"},
			SessionKey: r.FormValue("session_key"),
		})
	})
}

var challengeRE = regexp.MustCompile(`name="challenge" value="([^"]+)"`)

// Challenge returns the login challenge on a chooser or method page, or "".
func Challenge(body string) string {
	m := challengeRE.FindStringSubmatch(body)
	if m == nil {
		return ""
	}
	return html.UnescapeString(m[1])
}

// FormLoginAt logs the browser in with FormLogin on the chooser page resp
// (the body given), as the citizen cf at level, with extra form fields
// (name, value pairs: "session_key", "k"), and returns where the browser ended.
func (b *Browser) FormLoginAt(issuer string, resp *http.Response, body, cf string, level idp.Level, extra ...string) (*http.Response, string) {
	b.T.Helper()
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Request.URL.Path, "/login") {
		b.T.Fatalf("expected the login page, got %d %s: %.300s", resp.StatusCode, resp.Request.URL, body)
	}
	challenge := Challenge(body)
	if challenge == "" {
		b.T.Fatalf("no challenge on %s: %.500s", resp.Request.URL, body)
	}
	form := url.Values{"challenge": {challenge}, "cf": {cf}, "level": {strconv.Itoa(int(level))}}
	for i := 0; i+1 < len(extra); i += 2 {
		form.Set(extra[i], extra[i+1])
	}
	return b.Post(issuer+"/login/test/", form)
}
