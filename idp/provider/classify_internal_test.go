package provider

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/ponte-id/ponte/internal/admission"
)

// TestCrossSiteReturnsContinue: a method's cross-site return (a SAML
// response posted by the identity provider, which carries no cookie of
// ours) continues a login; a path that only looks like one does not.
func TestCrossSiteReturnsContinue(t *testing.T) {
	step := loginStep(prefixed("/login/spid", map[string]bool{"/acs": true}))
	for _, tc := range []struct {
		path string
		want bool
	}{
		{"/login/spid/acs", true},
		{"/login/spid/acs/", false},
		{"/login/spid/acsx", false},
		{"/login/pin/acs", false},
		{"/login/spid/", false},
	} {
		if got := step(httptest.NewRequest(http.MethodPost, tc.path, nil)); got != tc.want {
			t.Errorf("POST %s continues: %v, want %v", tc.path, got, tc.want)
		}
	}
	if prefixed("/login/pin", nil) != nil {
		t.Error("a method without cross-site returns has a matcher")
	}
}

// TestTokenClass: a code's redemption finishes a login (never refused for
// load); the other grants continue.
func TestTokenClass(t *testing.T) {
	for _, tc := range []struct {
		body string
		want admission.Class
	}{
		{url.Values{"grant_type": {"authorization_code"}, "code": {"c"}}.Encode(), admission.Finishing},
		{url.Values{"grant_type": {"refresh_token"}, "refresh_token": {"r"}}.Encode(), admission.Continuing},
		{url.Values{"grant_type": {"client_credentials"}}.Encode(), admission.Continuing},
		{"", admission.Continuing},
	} {
		r := httptest.NewRequest(http.MethodPost, "/token", strings.NewReader(tc.body))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if got := tokenClass(r); got != tc.want {
			t.Errorf("%q: %v, want %v", tc.body, got, tc.want)
		}
		if tc.body != "" && r.PostForm.Get("grant_type") == "" {
			t.Errorf("%q: the form is no longer there for fosite", tc.body)
		}
	}
}
