package provider_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"golang.org/x/oauth2"

	"github.com/ponte-id/ponte/idp"
	"github.com/ponte-id/ponte/idp/clients"
	"github.com/ponte-id/ponte/idp/provider"
	"github.com/ponte-id/ponte/storage/storagetest"
)

// route finds the route that serves method and path, as the edge mounts them.
func route(routes []provider.Route, method, path string) (provider.Route, bool) {
	for _, r := range routes {
		if r.Method != "" && r.Method != method {
			continue
		}
		if r.Path == path || r.Prefix && strings.HasPrefix(path, r.Path+"/") {
			return r, true
		}
	}
	return provider.Route{}, false
}

// TestRoutesContinue: under load the edge ranks each request by its route's
// Continues: the steps of a login under way before new logins.
func TestRoutesContinue(t *testing.T) {
	// The ranking reads the request only; one backend is enough.
	e := newEnv(t, storagetest.Backends()[0].Open(t))
	routes := e.Provider.Routes()
	bound := browserCookie(t, e)
	tampered := &http.Cookie{Name: bound.Name, Value: bound.Value[:len(bound.Value)-2] + "AA"}
	if tampered.Value == bound.Value {
		tampered.Value = bound.Value[:len(bound.Value)-2] + "BA"
	}
	for _, tc := range []struct {
		name, method, target string
		cookie               *http.Cookie
		want                 bool
	}{
		{"a new login", http.MethodGet, "/authorize?client_id=rp&response_type=code", nil, false},
		{"a new login from a browser seen before", http.MethodGet, "/authorize?client_id=rp", bound, false},
		{"a new login by form post", http.MethodPost, "/authorize", nil, false},
		{"a pushed request", http.MethodPost, "/par", nil, false},
		{"the resume", http.MethodGet, "/authorize/resume?challenge=c", bound, true},
		{"the resume from a browser without the cookie", http.MethodGet, "/authorize/resume?challenge=c", nil, false},
		{"the chooser of a login", http.MethodGet, "/login?challenge=c", bound, true},
		{"a challenge alone", http.MethodGet, "/login?challenge=c", nil, false},
		{"the chooser with nothing", http.MethodGet, "/login", nil, false},
		{"a method's form", http.MethodGet, "/login/test/?challenge=c", bound, true},
		{"a method's form post from the bound browser", http.MethodPost, "/login/test/", bound, true},
		{"a method's form post with a made-up cookie", http.MethodPost, "/login/test/", &http.Cookie{Name: "ponte_browser", Value: "short"}, false},
		{"a made-up cookie of the right length", http.MethodPost, "/login/test/", &http.Cookie{Name: "ponte_browser", Value: strings.Repeat("b", 43) + "." + strings.Repeat("c", 22)}, false},
		{"a cookie set before the MAC", http.MethodPost, "/login/test/", &http.Cookie{Name: "ponte_browser", Value: strings.Repeat("b", 43)}, false},
		{"a tampered cookie", http.MethodPost, "/login/test/", tampered, false},
		{"a method's page from a new browser", http.MethodPost, "/login/test/recover", nil, false},
		{"aborting a login", http.MethodPost, "/login/abort", nil, true},
		{"a code's redemption", http.MethodPost, "/token", nil, true},
		{"userinfo", http.MethodGet, "/userinfo", nil, true},
		{"revocation", http.MethodPost, "/revoke", nil, true},
		{"introspection", http.MethodPost, "/introspect", nil, true},
		{"logout", http.MethodGet, "/logout", nil, true},
		{"discovery", http.MethodGet, "/.well-known/openid-configuration", nil, true},
		{"the keys", http.MethodGet, "/jwks.json", nil, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, ok := route(routes, tc.method, strings.SplitN(tc.target, "?", 2)[0])
			if !ok {
				t.Fatalf("no route for %s %s", tc.method, tc.target)
			}
			req := httptest.NewRequest(tc.method, tc.target, nil)
			if tc.cookie != nil {
				req.AddCookie(tc.cookie)
			}
			got := r.Continues != nil && r.Continues(req)
			if got != tc.want {
				t.Errorf("%s %s continues a login: %v, want %v", tc.method, tc.target, got, tc.want)
			}
		})
	}
}

// browserCookie starts a login in a new browser and returns the browser
// cookie /authorize set.
func browserCookie(t *testing.T, e *env) *http.Cookie {
	t.Helper()
	rp := e.NewRP(clients.Spec{Name: "classify"})
	once := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := once.Get(rp.Conf.AuthCodeURL(randomString(), oauth2.S256ChallengeOption(oauth2.GenerateVerifier())))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	for _, c := range resp.Cookies() {
		if c.Name == "ponte_browser" {
			return c
		}
	}
	t.Fatalf("/authorize set no browser cookie (%d)", resp.StatusCode)
	return nil
}

// TestBrowserBudget: a browser cookie ranks its requests as continuing up
// to its budget; beyond, as new ones, while another browser's still rank.
func TestBrowserBudget(t *testing.T) {
	e := newEnv(t, storagetest.Backends()[0].Open(t))
	r, _ := route(e.Provider.Routes(), http.MethodPost, "/login/test/")
	one, other := browserCookie(t, e), browserCookie(t, e)
	continues := func(c *http.Cookie) bool {
		req := httptest.NewRequest(http.MethodPost, "/login/test/", nil)
		req.AddCookie(c)
		return r.Continues(req)
	}
	n := 0
	for continues(one) {
		if n++; n > 1000 {
			t.Fatal("no budget")
		}
	}
	if n < 20 || n > 100 {
		t.Fatalf("a browser ranked %d requests as continuing", n)
	}
	if !continues(other) {
		t.Fatal("another browser lost its rank")
	}
}

// cardAuth is the test method with a page on another host, as the CNS card
// page is.
type cardAuth struct{ testAuth }

func (cardAuth) Method() idp.Method     { return "card" }
func (cardAuth) OffHostPaths() []string { return []string{"/card"} }

// TestOffHostStepsContinue: a method's page on another host (which the
// browser cookie does not reach) continues a login without the cookie; the
// method's other pages do not.
func TestOffHostStepsContinue(t *testing.T) {
	e := newEnv(t, storagetest.Backends()[0].Open(t), func(c *provider.Config) {
		c.Authenticators = append(c.Authenticators, cardAuth{})
	})
	for _, tc := range []struct {
		path string
		want bool
	}{
		{"/login/card/card", true},
		{"/login/card/", false},
		{"/login/card/cardx", false},
		{"/login/test/card", false},
	} {
		r, ok := route(e.Provider.Routes(), http.MethodGet, tc.path)
		if !ok {
			t.Fatalf("no route for %s", tc.path)
		}
		if got := r.Continues(httptest.NewRequest(http.MethodGet, tc.path+"?challenge=c", nil)); got != tc.want {
			t.Errorf("GET %s continues: %v, want %v", tc.path, got, tc.want)
		}
	}
}
