package ui

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// TestComeBack: 503 with Retry-After in whole seconds, a page in the site's
// layout and the person's language for a browser, the OAuth JSON error for
// anyone else, worded by the reason.
func TestComeBack(t *testing.T) {
	for _, tc := range []struct {
		name, accept, lang string
		why                Why
		retry              time.Duration
		wantRetry          string
		wantType, wantText string
	}{
		{"busy browser", "text/html", "it", Busy, 2 * time.Second, "2", "text/html", "Servizio momentaneamente occupato"},
		{"unavailable browser", "text/html,application/xhtml+xml", "it", Unavailable, 5 * time.Second, "5", "text/html", "Servizio momentaneamente non disponibile"},
		{"unavailable browser in English", "text/html", "en", Unavailable, 1500 * time.Millisecond, "2", "text/html", "The service is temporarily unavailable"},
		{"unavailable client", "application/json", "", Unavailable, 0, "1", "application/json", `"temporarily_unavailable"`},
		{"busy client without Accept", "", "", Busy, time.Second, "1", "application/json", "the server is busy"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, "/x", nil)
			if tc.accept != "" {
				r.Header.Set("Accept", tc.accept)
			}
			if tc.lang != "" {
				r.Header.Set("Accept-Language", tc.lang)
			}
			w := httptest.NewRecorder()
			ComeBack(w, r, tc.retry, tc.why)
			resp := w.Result()
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") != tc.wantRetry {
				t.Fatalf("status %d, Retry-After %q; want 503, %q", resp.StatusCode, resp.Header.Get("Retry-After"), tc.wantRetry)
			}
			if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, tc.wantType) || !strings.Contains(string(body), tc.wantText) {
				t.Fatalf("%s:\n%s\nwant %s with %q", ct, body, tc.wantType, tc.wantText)
			}
			if tc.wantType == "text/html" && !strings.Contains(string(body), `class="skip"`) {
				t.Fatalf("the page is not in the site's layout:\n%s", body)
			}
		})
	}
}
