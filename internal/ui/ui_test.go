package ui

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"testing/fstest"
)

func TestLocale(t *testing.T) {
	cases := []struct {
		name, target, cookie, accept string
		prefs                        []string
		want                         string
	}{
		{name: "default", target: "/", want: "it"},
		{name: "Accept-Language", target: "/", accept: "en-GB,en;q=0.9", want: "en"},
		{name: "ui_locales before Accept-Language", target: "/", accept: "en", prefs: []string{"it-IT"}, want: "it"},
		{name: "cookie before ui_locales", target: "/", cookie: "en", prefs: []string{"it"}, want: "en"},
		{name: "switch before cookie", target: "/?lang=it", cookie: "en", accept: "en", want: "it"},
		{name: "unknown switch ignored", target: "/?lang=fr", cookie: "en", want: "en"},
		{name: "unknown cookie ignored", target: "/", cookie: "de", accept: "en", want: "en"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, c.target, nil)
			if c.cookie != "" {
				r.AddCookie(&http.Cookie{Name: LangCookie, Value: c.cookie})
			}
			if c.accept != "" {
				r.Header.Set("Accept-Language", c.accept)
			}
			if got := Locale(r, c.prefs...); got != c.want {
				t.Fatalf("Locale = %q, want %q", got, c.want)
			}
		})
	}
}

var testPage = Pages(fstest.MapFS{"p/page.html": {Data: []byte(`{{define "content"}}<h1>{{.Title}}</h1><a href="{{withChallenge "/login/pin/convert" .View}}">x</a>{{end}}`)}}, "p", "page")["page"]

func render(t *testing.T, r *http.Request, d Data) (*http.Response, string) {
	t.Helper()
	w := httptest.NewRecorder()
	Render(w, r, slog.New(slog.DiscardHandler), testPage, http.StatusOK, d)
	resp := w.Result()
	body, _ := io.ReadAll(resp.Body)
	return resp, string(body)
}

// TestSwitch: every page links to itself in the other language; choosing one
// keeps it in a cookie; a page answering a post links to the same path with
// the pending login's challenge, or re-posts the fields it is given.
func TestSwitch(t *testing.T) {
	r := httptest.NewRequest(http.MethodGet, "/login/pin/request?challenge=abc&lang=en", nil)
	resp, body := render(t, r, Data{Lang: "en", Title: "T", View: "abc"})
	if !strings.Contains(body, `<a href="/login/pin/request?challenge=abc&amp;lang=it" lang="it" hreflang="it">Italiano</a>`) ||
		!strings.Contains(body, `<span lang="en" aria-current="true">English</span>`) {
		t.Fatalf("switch: %s", body)
	}
	if !strings.Contains(body, `href="/login/pin/convert?challenge=abc"`) {
		t.Fatalf("withChallenge: %s", body)
	}
	c := resp.Cookies()
	if len(c) != 1 || c[0].Name != LangCookie || c[0].Value != "en" || !c[0].HttpOnly || c[0].MaxAge <= 0 {
		t.Fatalf("the choice is not kept: %v", c)
	}
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "font-src 'self'") || strings.Contains(csp, "script-src") {
		t.Fatalf("CSP: %q", csp)
	}

	post := httptest.NewRequest(http.MethodPost, "/login/pin/", strings.NewReader(url.Values{"challenge": {"abc"}, "pin": {"secret"}}.Encode()))
	post.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, body = render(t, post, Data{Lang: "it", Title: "T", View: ""})
	if !strings.Contains(body, `href="/login/pin/?challenge=abc&amp;lang=en"`) || strings.Contains(body, "secret") || len(resp.Cookies()) != 0 {
		t.Fatalf("switch after a post: %s", body)
	}

	_, body = render(t, post, Data{Lang: "it", Title: "T", View: "", Here: "/login/pin/change", SwitchPost: map[string]string{"ticket": "tk"}})
	if !strings.Contains(body, `<form method="post" action="/login/pin/change"><input type="hidden" name="ticket" value="tk">`) ||
		!strings.Contains(body, `formaction="/login/pin/change?lang=en"`) {
		t.Fatalf("switch by post: %s", body)
	}
}

func TestWithChallenge(t *testing.T) {
	for _, c := range []struct{ in, ch, want string }{
		{"/login/pin/convert", "", "/login/pin/convert"},
		{"/login/pin/convert", "a b", "/login/pin/convert?challenge=a+b"},
		{"/login/pin/?lang=en", "x", "/login/pin/?challenge=x&lang=en"},
		{"https://www.spid.gov.it/", "x", "https://www.spid.gov.it/"},
		{"//evil.example/", "x", "//evil.example/"},
	} {
		if got := WithChallenge(c.in, c.ch); got != c.want {
			t.Errorf("WithChallenge(%q, %q) = %q, want %q", c.in, c.ch, got, c.want)
		}
	}
}

// TestAssets: the fonts come from Ponte; nothing else is listed or served.
func TestAssets(t *testing.T) {
	h := Assets()
	for path, want := range map[string]int{
		"/assets/fonts/titillium-web-latin-400-normal.woff2": http.StatusOK,
		"/assets/fonts/titillium-web-latin-600-normal.woff2": http.StatusOK,
		"/assets/fonts/titillium-web-latin-700-normal.woff2": http.StatusOK,
		"/assets/fonts/":        http.StatusNotFound,
		"/assets/nothing.css":   http.StatusNotFound,
		"/assets/../ui.go":      http.StatusNotFound,
		"/assets/fonts/OFL.txt": http.StatusOK,
	} {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, path, nil))
		if w.Code != want {
			t.Errorf("%s: %d, want %d", path, w.Code, want)
		}
	}
	// Every font the layout names is served.
	layout, _ := layoutFS.ReadFile("layout.html")
	for _, u := range strings.Split(string(layout), "url(")[1:] {
		path, _, _ := strings.Cut(u, ")")
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, path, nil))
		if w.Code != http.StatusOK || !strings.HasPrefix(path, AssetsPath) {
			t.Errorf("the layout's %s: %d", path, w.Code)
		}
	}
}
