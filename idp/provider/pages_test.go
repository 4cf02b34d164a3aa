package provider_test

import (
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/ponte-id/ponte/internal/ui"
	"github.com/ponte-id/ponte/storage/storagetest"
)

// TestCrossSitePostPage: a cross-site form post is refused with 403 on a page
// with the layout, in the person's language (the switch's cookie, or
// Accept-Language), never net/http's plain English text.
func TestCrossSitePostPage(t *testing.T) {
	e := newEnv(t, storagetest.SQLite(t))
	for _, c := range []struct {
		name, cookie, accept, want string
	}{
		{name: "Italian by default", want: "Per la tua sicurezza la richiesta non è stata eseguita"},
		{name: "English by Accept-Language", accept: "en-US,en;q=0.8", want: "For your security the request was not carried out"},
		{name: "the switch's choice", cookie: "en", accept: "it", want: "For your security the request was not carried out"},
	} {
		t.Run(c.name, func(t *testing.T) {
			for _, path := range []string{"/login/abort", "/logout", "/login/test/"} {
				req, _ := http.NewRequest(http.MethodPost, e.Issuer+path, strings.NewReader(url.Values{"challenge": {"x"}}.Encode()))
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				req.Header.Set("Sec-Fetch-Site", "cross-site")
				if c.accept != "" {
					req.Header.Set("Accept-Language", c.accept)
				}
				if c.cookie != "" {
					req.AddCookie(&http.Cookie{Name: ui.LangCookie, Value: c.cookie})
				}
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				page := string(body)
				if resp.StatusCode != http.StatusForbidden || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") ||
					!strings.Contains(page, c.want) || !strings.Contains(page, `<main id="main"`) || strings.Contains(page, "cross-origin") {
					t.Fatalf("POST %s: %d %q %.600s", path, resp.StatusCode, resp.Header.Get("Content-Type"), page)
				}
			}
		})
	}
}
