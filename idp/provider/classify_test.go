package provider_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

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
	bound := &http.Cookie{Name: "ponte_browser", Value: strings.Repeat("b", 43)}
	for _, tc := range []struct {
		name, method, target string
		cookie               *http.Cookie
		want                 bool
	}{
		{"a new login", http.MethodGet, "/authorize?client_id=rp&response_type=code", nil, false},
		{"a new login from a browser seen before", http.MethodGet, "/authorize?client_id=rp", bound, false},
		{"a new login by form post", http.MethodPost, "/authorize", nil, false},
		{"a pushed request", http.MethodPost, "/par", nil, false},
		{"the resume", http.MethodGet, "/authorize/resume?challenge=c", nil, true},
		{"the chooser of a login", http.MethodGet, "/login?challenge=c", nil, true},
		{"the chooser with nothing", http.MethodGet, "/login", nil, false},
		{"a method's form", http.MethodGet, "/login/test/?challenge=c", nil, true},
		{"a method's form post from the bound browser", http.MethodPost, "/login/test/", bound, true},
		{"a method's form post with a made-up cookie", http.MethodPost, "/login/test/", &http.Cookie{Name: "ponte_browser", Value: "short"}, false},
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
