package flow

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/ponte-id/ponte/adapters/spid/testidp"
)

func TestRetryDelay(t *testing.T) {
	now := time.Date(2026, 12, 1, 22, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		name, header string
		want         time.Duration
	}{
		{"seconds", "2", 2 * time.Second},
		{"zero", "0", 0},
		{"capped", "120", MaxRetryWait},
		{"HTTP date", now.Add(1500 * time.Millisecond).Format(http.TimeFormat), time.Second}, // a date has whole seconds
		{"date past", now.Add(-time.Minute).Format(http.TimeFormat), 0},
		{"absent", "", time.Second},
		{"garbage", "soon", time.Second},
		{"negative", "-3", time.Second},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := RetryDelay(c.header, now, MaxRetryWait); got != c.want {
				t.Errorf("RetryDelay(%q) = %v, want %v", c.header, got, c.want)
			}
		})
	}
}

func TestRetryable(t *testing.T) {
	now := time.Now()
	answer := func(status int, retryAfter string) error {
		h := http.Header{}
		if retryAfter != "" {
			h.Set("Retry-After", retryAfter)
		}
		return &oauth2.RetrieveError{Response: &http.Response{StatusCode: status, Header: h}}
	}
	for _, c := range []struct {
		name  string
		err   error
		want  bool
		delay time.Duration
	}{
		{"503 with Retry-After", answer(503, "2"), true, 2 * time.Second},
		{"502 from the balancer", answer(502, ""), true, time.Second},
		{"400 invalid_grant", answer(400, ""), false, 0},
		{"500", answer(500, ""), false, 0},
		{"wrapped", errors.Join(errors.New("token"), answer(503, "1")), true, time.Second},
		{"transport error", errors.New("connection refused"), false, 0},
		{"no error", nil, false, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			d, ok := retryable(c.err, now)
			if ok != c.want || d != c.delay {
				t.Errorf("retryable = %v, %v; want %v, %v", d, ok, c.delay, c.want)
			}
		})
	}
}

// TestForms reads the pages the SPID login crosses as their own code
// writes them.
func TestForms(t *testing.T) {
	autoPost := func(action string, values map[string]string) string {
		rec := httptest.NewRecorder()
		testidp.AutoPost(rec, action, values)
		return rec.Body.String()
	}
	for _, c := range []struct {
		name, page, field string
		want              Form
		found             bool
	}{
		{"the identity provider's Response (base64 with + and /, a RelayState with &)",
			autoPost("http://127.0.0.1:18600/login/spid/acs", map[string]string{"SAMLResponse": "PD94+bWw/Zz==", "RelayState": "a&b<c>"}),
			"SAMLResponse", Form{Action: "http://127.0.0.1:18600/login/spid/acs", Hidden: url.Values{"SAMLResponse": {"PD94+bWw/Zz=="}, "RelayState": {"a&b<c>"}}}, true},
		{"the second of two forms",
			`<form method="post" action="/lang"><input type="hidden" name="lang" value="en"></form>
<form method="post" action="/x?a=1&amp;b=2"><input type="text" name="user" value="no"><input type="hidden" name="request" value="_ab"></form>`,
			"request", Form{Action: "/x?a=1&b=2", Hidden: url.Values{"request": {"_ab"}}}, true},
		{"no such field", autoPost("/acs", map[string]string{"RelayState": "r"}), "SAMLResponse", Form{}, false},
		{"no form", "<p>busy</p>", "SAMLResponse", Form{}, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, ok := formWith(c.page, c.field)
			if ok != c.found || !reflect.DeepEqual(got, c.want) {
				t.Errorf("formWith = %+v, %v; want %+v, %v", got, ok, c.want, c.found)
			}
		})
	}
}

// TestBrowserHeaders: every request of a browser, redirects included, asks
// for HTML as a browser's navigation does.
func TestBrowserHeaders(t *testing.T) {
	var got []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = append(got, r.URL.Path+" "+r.Header.Get("Accept")+" "+r.Header.Get("Accept-Language"))
		if r.URL.Path == "/a" {
			http.Redirect(w, r, "/b", http.StatusSeeOther)
		}
	}))
	defer srv.Close()
	b := NewBrowser(&RP{Redirect: "http://127.0.0.1:9/cb"})
	if _, _, err := b.do(t.Context(), http.MethodGet, srv.URL+"/a", nil); err != nil {
		t.Fatal(err)
	}
	const h = " text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8 it-IT,it;q=0.9,en;q=0.8"
	if want := []string{"/a" + h, "/b" + h}; !reflect.DeepEqual(got, want) {
		t.Errorf("requests %q, want %q", got, want)
	}
}
