package provider_test

import (
	"crypto/sha256"
	"encoding/base64"
	"html"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/ponte-id/ponte/idp"
	"github.com/ponte-id/ponte/idp/clients"
	"github.com/ponte-id/ponte/storage/storagetest"
)

var (
	scriptRE   = regexp.MustCompile(`(?s)<script>(.*?)</script>`)
	scriptSrc  = regexp.MustCompile(`script-src 'sha256-([A-Za-z0-9+/=]+)'`)
	formRE     = regexp.MustCompile(`<form method="post" action="([^"]*)">`)
	hiddenRE   = regexp.MustCompile(`<input type="hidden" name="([^"]*)" value="([^"]*)">`)
	noscriptRE = regexp.MustCompile(`(?s)<noscript>.*<button type="submit">.*</noscript>`)
)

// formPost checks a form_post page's headers and script and returns the URL
// its form posts to and the fields it posts.
func formPost(t *testing.T, resp *http.Response, body string) (string, url.Values) {
	t.Helper()
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("want a form_post page, got %d %s: %.300s", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
	h := resp.Header
	csp := h.Get("Content-Security-Policy")
	for _, want := range []string{"default-src 'none'", "frame-ancestors 'none'", "base-uri 'none'"} {
		if !strings.Contains(csp, want) {
			t.Errorf("Content-Security-Policy %q lacks %s", csp, want)
		}
	}
	if h.Get("Referrer-Policy") != "no-referrer" || h.Get("Cache-Control") != "no-store" || h.Get("X-Frame-Options") != "DENY" {
		t.Errorf("headers %v: want Referrer-Policy no-referrer, Cache-Control no-store, X-Frame-Options DENY", h)
	}
	scripts := scriptRE.FindAllStringSubmatch(body, -1)
	hashes := scriptSrc.FindAllStringSubmatch(csp, -1)
	if len(scripts) != 1 || len(hashes) != 1 {
		t.Fatalf("want one script and one script hash; got %d scripts, CSP %q", len(scripts), csp)
	}
	sum := sha256.Sum256([]byte(scripts[0][1]))
	if got := base64.StdEncoding.EncodeToString(sum[:]); got != hashes[0][1] {
		t.Errorf("the CSP allows sha256-%s, the script %q hashes to sha256-%s", hashes[0][1], scripts[0][1], got)
	}
	if !strings.Contains(scripts[0][1], "submit()") {
		t.Errorf("the script %q does not submit the form", scripts[0][1])
	}
	if !noscriptRE.MatchString(body) {
		t.Error("no submit button for a browser without JavaScript")
	}
	m := formRE.FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no form: %s", body)
	}
	fields := url.Values{}
	for _, in := range hiddenRE.FindAllStringSubmatch(body, -1) {
		fields.Add(html.UnescapeString(in[1]), html.UnescapeString(in[2]))
	}
	return html.UnescapeString(m[1]), fields
}

// TestFormPost: response_mode=form_post answers with Ponte's own page, on
// success and on error, auto-submitted by a script its CSP allows by hash.
func TestFormPost(t *testing.T) {
	e := newEnv(t, storagetest.SQLite(t))
	r := e.NewRP(clients.Spec{})
	b := newBrowser(t)

	verifier, state := oauth2.GenerateVerifier(), randomString()
	authURL := r.Conf.AuthCodeURL(state, oauth2.S256ChallengeOption(verifier), oidc.Nonce(randomString()),
		oauth2.SetAuthURLParam("response_mode", "form_post"))
	resp, body := b.Get(authURL)
	m := challengeRE.FindStringSubmatch(body)
	if resp.StatusCode != http.StatusOK || m == nil {
		t.Fatalf("expected the login page: %d %.300s", resp.StatusCode, body)
	}
	challenge := html.UnescapeString(m[1])
	resp, body = b.Post(e.Issuer+"/login/test/", url.Values{
		"challenge": {challenge}, "cf": {citizenCF}, "level": {strconv.Itoa(int(idp.LevelConsultazione))},
	})
	action, fields := formPost(t, resp, body)
	if action != redirectURI {
		t.Errorf("the form posts to %q, want %q", action, redirectURI)
	}
	if fields.Get("state") != state || fields.Get("iss") != e.Issuer || fields.Get("code") == "" {
		t.Fatalf("fields %v: want code, state %q and iss %q", fields, state, e.Issuer)
	}
	if _, err := r.Conf.Exchange(r.Ctx(), fields.Get("code"), oauth2.VerifierOption(verifier)); err != nil {
		t.Fatalf("the posted code does not exchange: %v", err)
	}

	// An error goes back the same way: prompt=none in a browser with no session.
	state = randomString()
	resp, body = newBrowser(t).Get(r.Conf.AuthCodeURL(state, oauth2.S256ChallengeOption(verifier),
		oauth2.SetAuthURLParam("response_mode", "form_post"), oauth2.SetAuthURLParam("prompt", "none")))
	action, fields = formPost(t, resp, body)
	if action != redirectURI || fields.Get("error") != "login_required" || fields.Get("state") != state || fields.Get("iss") != e.Issuer {
		t.Errorf("error form posts %v to %q: want login_required, state and iss to %q", fields, action, redirectURI)
	}
}
