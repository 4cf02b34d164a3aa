package main

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestServeMountsConsoleSections: `ponte serve` mounts the console sections
// its methods offer (the PIN's at /console/pin/, behind the console's login:
// a stranger is sent to log in), and nothing at a path no method offers.
func TestServeMountsConsoleSections(t *testing.T) {
	n := startLiveNode(t, "http://127.0.0.1:8080", nil)
	client := &http.Client{Timeout: 20 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for path, want := range map[string]int{"/console/pin/": http.StatusSeeOther, "/console/pin/conversions": http.StatusSeeOther, "/console/nosuch/": http.StatusNotFound} {
		resp, err := client.Get(n.base + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("%s: %d, want %d", path, resp.StatusCode, want)
		}
		if want == http.StatusSeeOther && !strings.Contains(resp.Header.Get("Location"), "client_id=ponte-console") {
			t.Errorf("%s: not sent to log in to the console: %q", path, resp.Header.Get("Location"))
		}
	}
}
