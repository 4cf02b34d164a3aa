package provider

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ory/fosite"
	"github.com/ory/fosite/token/hmac"

	"github.com/ponte-id/ponte/internal/admission"
	"github.com/ponte-id/ponte/internal/ratelimit"
)

// TestCrossSiteReturnsContinue: a method's cross-site return (a SAML
// response posted by the identity provider, which carries no cookie of
// ours) continues a login; a path that only looks like one does not.
func TestCrossSiteReturnsContinue(t *testing.T) {
	p := &Provider{budget: ratelimit.NewLocal(nil, 0)}
	step := p.loginStep(prefixed("/login/spid", map[string]bool{"/acs": true}))
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
// load) when the code carries our HMAC; a made-up code, one signed under
// another secret, and the other grants continue.
func TestTokenClass(t *testing.T) {
	secret := []byte("0123456789abcdef0123456789abcdef")
	ctx := context.Background()
	code := func(secret []byte) string {
		c, _, err := (&hmac.HMACStrategy{Config: &fosite.Config{GlobalSecret: secret}}).Generate(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return codePrefix + c
	}
	p := &Provider{codeMAC: codeMAC(&fosite.Config{GlobalSecret: secret}), budget: ratelimit.NewLocal(nil, 0), cfg: Config{AuthorizeCodeTTL: time.Minute}}
	ours, theirs := code(secret), code([]byte("another secret, 32 bytes long..."))
	for _, tc := range []struct {
		body string
		want admission.Class
	}{
		{url.Values{"grant_type": {"authorization_code"}, "code": {ours}}.Encode(), admission.Finishing},
		{url.Values{"grant_type": {"authorization_code"}, "code": {strings.TrimPrefix(ours, codePrefix)}}.Encode(), admission.Continuing},
		{url.Values{"grant_type": {"authorization_code"}, "code": {"c"}}.Encode(), admission.Continuing},
		{url.Values{"grant_type": {"authorization_code"}, "code": {theirs}}.Encode(), admission.Continuing},
		{url.Values{"grant_type": {"authorization_code"}, "code": {ours[:len(ours)-4] + "AAAA"}}.Encode(), admission.Continuing},
		{url.Values{"grant_type": {"refresh_token"}, "refresh_token": {"r"}}.Encode(), admission.Continuing},
		{url.Values{"grant_type": {"client_credentials"}}.Encode(), admission.Continuing},
		{"", admission.Continuing},
	} {
		r := httptest.NewRequest(http.MethodPost, "/token", strings.NewReader(tc.body))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if got := p.tokenClass(r); got != tc.want {
			t.Errorf("%q: %v, want %v", tc.body, got, tc.want)
		}
		if tc.body != "" && r.PostForm.Get("grant_type") == "" {
			t.Errorf("%q: the form is no longer there for fosite", tc.body)
		}
	}
	// One code ranks as finishing codeBudget times (a client's retries),
	// then as the other grants.
	again := code(secret)
	for i := range codeBudget + 2 {
		r := httptest.NewRequest(http.MethodPost, "/token", strings.NewReader(url.Values{"grant_type": {"authorization_code"}, "code": {again}}.Encode()))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		want := admission.Finishing
		if i >= codeBudget {
			want = admission.Continuing
		}
		if got := p.tokenClass(r); got != want {
			t.Fatalf("the same code, time %d: %v, want %v", i+1, got, want)
		}
	}
}

// TestBrowserCookieAge: a browser cookie ranks only with our MAC and within
// the challenges' lifetime (a minute of skew allowed): not once old, not
// from the future, not with its issue time changed.
func TestBrowserCookieAge(t *testing.T) {
	now := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	p := &Provider{cfg: Config{HMACSecret: []byte("0123456789abcdef0123456789abcdef"), ChallengeTTL: 30 * time.Minute}, now: func() time.Time { return now }}
	random := strings.Repeat("r", 43)
	fresh := p.browserValue(random, now)
	changed := strings.Replace(fresh, strconv.FormatInt(now.Unix(), 10), strconv.FormatInt(now.Unix()+1, 10), 1)
	for _, tc := range []struct {
		name, value string
		want        bool
	}{
		{"issued now", fresh, true},
		{"issued at the end of the lifetime", p.browserValue(random, now.Add(-30*time.Minute-browserRefresh+time.Second)), true},
		{"issued before", p.browserValue(random, now.Add(-30*time.Minute-browserRefresh)), false},
		{"issued in a minute", p.browserValue(random, now.Add(59*time.Second)), true},
		{"issued in two minutes", p.browserValue(random, now.Add(2*time.Minute)), false},
		{"its issue time changed", changed, false},
		{"another secret's", (&Provider{cfg: Config{HMACSecret: []byte("another secret, 32 bytes long...")}}).browserValue(random, now), false},
		{"set before the MAC", random, false},
		{"a short random part", p.browserValue("short", now), false},
	} {
		r := httptest.NewRequest(http.MethodGet, "/login", nil)
		r.AddCookie(&http.Cookie{Name: browserCookie, Value: tc.value})
		if _, got := p.browserCurrent(r); got != tc.want {
			t.Errorf("%s: current %v, want %v", tc.name, got, tc.want)
		}
	}
}
