package edge_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ponte-id/ponte/idp/provider"
	"github.com/ponte-id/ponte/internal/admission"
	"github.com/ponte-id/ponte/internal/edge"
)

// TestNodeGate: with every slot taken and the line full, the next request
// gets 503 with Retry-After at once (a page for a browser, JSON for an
// OAuth client) and its handler never runs; /healthz, /readyz and the fonts
// still answer; once the slots free up, requests are served again.
func TestNodeGate(t *testing.T) {
	const slots, line = 2, 1
	gate, err := admission.New(admission.Options{Concurrency: slots, Queue: line, MaxWait: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	hold := make(chan struct{})
	entered := make(chan struct{}, slots+line)
	var (
		mu   sync.Mutex
		runs int
	)
	slow := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		runs++
		mu.Unlock()
		entered <- struct{}{}
		<-hold
		w.Write([]byte("done"))
	})
	continues := func(*http.Request) bool { return true } // a login's steps wait in line
	base, _ := server(t, []provider.Route{{Path: "/slow", Handler: slow, Continues: continues}}, edge.Options{Gate: gate})

	// Fill the slots, then the line, in parallel.
	var wg sync.WaitGroup
	statuses := make([]int, slots+line)
	for i := range slots + line {
		wg.Go(func() {
			resp, err := http.Get(base + "/slow")
			if err != nil {
				t.Error(err)
				return
			}
			resp.Body.Close()
			statuses[i] = resp.StatusCode
		})
	}
	for range slots {
		<-entered
	}
	for deadline := time.Now().Add(10 * time.Second); gate.Stats().Waiting < line; {
		if time.Now().After(deadline) {
			t.Fatalf("the line never filled: %+v", gate.Stats())
		}
		time.Sleep(5 * time.Millisecond)
	}

	for _, tc := range []struct {
		name, accept, lang string
		wantType, wantText string
	}{
		{"browser", "text/html,application/xhtml+xml", "it", "text/html", "Servizio momentaneamente occupato"},
		{"browser in English", "text/html", "en", "text/html", "The service is busy"},
		{"OAuth client", "application/json", "", "application/json", `"temporarily_unavailable"`},
		{"no Accept", "", "", "application/json", `"temporarily_unavailable"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := newRequest(t, http.MethodGet, base+"/slow", nil)
			if tc.accept != "" {
				req.Header.Set("Accept", tc.accept)
			}
			if tc.lang != "" {
				req.Header.Set("Accept-Language", tc.lang)
			}
			resp, body := do(t, req)
			if resp.StatusCode != http.StatusServiceUnavailable {
				t.Fatalf("status %d, want 503", resp.StatusCode)
			}
			if got := resp.Header.Get("Retry-After"); got != "10" {
				t.Errorf("Retry-After %q, want 10", got)
			}
			if got := resp.Header.Get("Content-Type"); !strings.HasPrefix(got, tc.wantType) {
				t.Errorf("Content-Type %q, want %s", got, tc.wantType)
			}
			if !strings.Contains(body, tc.wantText) {
				t.Errorf("body %q lacks %q", body, tc.wantText)
			}
			if tc.wantType == "application/json" {
				var e struct{ Error string }
				if err := json.Unmarshal([]byte(body), &e); err != nil || e.Error != "temporarily_unavailable" {
					t.Errorf("JSON error %q, %v", e.Error, err)
				}
			}
		})
	}
	for _, path := range []string{"/healthz", "/readyz", "/assets/fonts/titillium-web-latin-400-normal.woff2"} {
		if resp, _ := do(t, newRequest(t, http.MethodGet, base+path, nil)); resp.StatusCode != http.StatusOK {
			t.Errorf("%s answered %d while the node was full, want 200", path, resp.StatusCode)
		}
	}
	mu.Lock()
	if runs != slots {
		t.Errorf("the handler ran %d times while full, want %d", runs, slots)
	}
	mu.Unlock()

	close(hold)
	wg.Wait()
	for i, s := range statuses {
		if s != http.StatusOK {
			t.Errorf("request %d admitted or queued got %d, want 200", i, s)
		}
	}
	if resp, body := do(t, newRequest(t, http.MethodGet, base+"/slow", nil)); resp.StatusCode != http.StatusOK || body != "done" {
		t.Errorf("after the surge: %d %q", resp.StatusCode, body)
	}
	if got := gate.Stats().Refused; got != 4 {
		t.Errorf("the gate refused %d, want 4", got)
	}
}

// TestNodeGateRanks: above the start watermark, a request of a route that
// does not continue a login (or whose Continues says no) is refused at once
// with 503 and Retry-After, while one that continues a login is admitted
// to the slots kept for it, and the 404 of an unknown path counts as new
// work too.
func TestNodeGateRanks(t *testing.T) {
	gate, err := admission.New(admission.Options{Concurrency: 3, Queue: 2, MaxWait: 10 * time.Second, StartConcurrency: 1})
	if err != nil {
		t.Fatal(err)
	}
	hold := make(chan struct{})
	entered := make(chan struct{}, 4)
	slow := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		entered <- struct{}{}
		<-hold
	})
	fast := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("served")) })
	step := func(r *http.Request) bool { return r.URL.Query().Has("challenge") }
	base, _ := server(t, []provider.Route{
		{Path: "/slow", Handler: slow, Continues: func(*http.Request) bool { return true }},
		{Path: "/start", Handler: fast},
		{Path: "/step", Handler: fast, Continues: step},
	}, edge.Options{Gate: gate})

	// Below the watermark, everything passes.
	for _, path := range []string{"/start", "/step", "/step?challenge=x"} {
		if resp, body := do(t, newRequest(t, http.MethodGet, base+path, nil)); resp.StatusCode != http.StatusOK || body != "served" {
			t.Fatalf("%s on an idle node: %d %q", path, resp.StatusCode, body)
		}
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	defer close(hold)
	wg.Go(func() {
		if resp, err := http.Get(base + "/slow"); err == nil {
			resp.Body.Close()
		}
	})
	<-entered // one in flight: at the watermark

	for _, tc := range []struct {
		path string
		want int
	}{
		{"/start", http.StatusServiceUnavailable},
		{"/step", http.StatusServiceUnavailable},
		{"/nowhere", http.StatusServiceUnavailable},
		{"/step?challenge=x", http.StatusOK},
		{"/start", http.StatusServiceUnavailable},
		{"/step?challenge=y", http.StatusOK},
	} {
		req := newRequest(t, http.MethodGet, base+tc.path, nil)
		req.Header.Set("Accept", "text/html")
		start := time.Now()
		resp, body := do(t, req)
		if resp.StatusCode != tc.want {
			t.Fatalf("%s above the watermark: %d, want %d", tc.path, resp.StatusCode, tc.want)
		}
		if tc.want == http.StatusServiceUnavailable {
			if resp.Header.Get("Retry-After") == "" || !strings.Contains(body, "Servizio momentaneamente occupato") {
				t.Errorf("%s: Retry-After %q, body %.200q", tc.path, resp.Header.Get("Retry-After"), body)
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("%s: refused after %v, want at once", tc.path, d)
			}
		}
	}
	if st := gate.Stats(); st.RefusedBy[admission.Starting] != 4 || st.RefusedBy[admission.Continuing] != 0 {
		t.Errorf("refusals %+v, want 4 starting and no continuing", st)
	}
}
