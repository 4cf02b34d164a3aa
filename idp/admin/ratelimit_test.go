package admin_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/ponte-id/ponte/api"
	"github.com/ponte-id/ponte/idp/admin"
	"github.com/ponte-id/ponte/idp/staff"
	"github.com/ponte-id/ponte/internal/ratelimit"
	"github.com/ponte-id/ponte/internal/ratelimit/redistest"
	"github.com/ponte-id/ponte/storage/storagetest"
)

// from is an HTTP client whose connections leave from ip, a loopback address
// (127.0.0.0/8): the server sees distinct clients.
func from(ip string) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
	return &http.Client{Transport: &http.Transport{DialContext: d.DialContext, DisableKeepAlives: true}}
}

// get calls GET Prefix+path on base with token, from c; it returns the
// status, the Retry-After header and the JSON error code.
func get(t *testing.T, c *http.Client, base, path, token string) (int, string, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", base+admin.Prefix+path, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		Error string `json:"error"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&body)
	return resp.StatusCode, resp.Header.Get("Retry-After"), body.Error
}

// TestAdminAuthFailuresLimited replays a stranger guessing API tokens from
// one address: the first DefaultFailures wrong tokens are 401, then every
// call from that address is 429 with Retry-After (the right token included,
// checked or not), while another address is unaffected; when the window
// ends the right token works again. Before the fix every guess was checked.
func TestAdminAuthFailuresLimited(t *testing.T) {
	const attacker, other = "127.0.0.2", "127.0.0.3"
	const bad = "pt_guess_0000000000000000000000"
	for _, b := range storagetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			f := newFixture(t, b.Open(t))
			srv := httptest.NewServer(admin.Handler(f.svc, api.OpenAPI, nil, ratelimit.Failures{Limiter: ratelimit.NewLocal(f.clock.now, 0)}))
			t.Cleanup(srv.Close)
			good := f.tokens["auditor"]
			steps := []struct {
				name     string
				from     string
				token    string
				times    int
				advance  time.Duration
				want     int
				wantCode string
			}{
				{"wrong tokens up to the limit", attacker, bad, ratelimit.DefaultFailures, 0, http.StatusUnauthorized, "unauthorized"},
				{"one more wrong token", attacker, bad, 1, 0, http.StatusTooManyRequests, "too_many_requests"},
				{"the right token from that address", attacker, good, 1, 0, http.StatusTooManyRequests, "too_many_requests"},
				{"no token from that address", attacker, "", 1, 0, http.StatusTooManyRequests, "too_many_requests"},
				{"a wrong token from another address", other, bad, 1, 0, http.StatusUnauthorized, "unauthorized"},
				{"the right token from another address", other, good, 1, 0, http.StatusOK, ""},
				{"the right token just before the window ends", attacker, good, 1, ratelimit.DefaultFailureWindow - time.Second, http.StatusTooManyRequests, "too_many_requests"},
				{"the right token after the window", attacker, good, 1, time.Second, http.StatusOK, ""},
				{"a wrong token after the window counts afresh", attacker, bad, 1, 0, http.StatusUnauthorized, "unauthorized"},
			}
			for _, s := range steps {
				f.clock.add(s.advance)
				for i := range s.times {
					code, retry, errCode := get(t, from(s.from), srv.URL, "/audit", s.token)
					if code != s.want || errCode != s.wantCode {
						t.Fatalf("%s (%d): %d %q, want %d %q", s.name, i+1, code, errCode, s.want, s.wantCode)
					}
					if n, err := strconv.Atoi(retry); code == http.StatusTooManyRequests && (err != nil || n < 1 || n > int(ratelimit.DefaultFailureWindow/time.Second)) {
						t.Fatalf("%s: Retry-After %q", s.name, retry)
					}
				}
			}
		})
	}
}

// TestAdminAuthFailuresShared: two nodes sharing their counts through Redis
// (as PONTE_REDIS_URL makes them) block a guesser on both: the failures on
// one node count on the other.
func TestAdminAuthFailuresShared(t *testing.T) {
	srv := redistest.Start(t)
	store := storagetest.SQLite(t)
	svc, st, _ := services(t, store, newBox(t), nil)
	_, good, err := st.CreateToken(t.Context(), staff.CLI, staff.TokenSpec{Name: "auditor", Roles: []string{staff.RoleAuditor}, TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	var nodes []*httptest.Server
	for range 2 {
		// A generous timeout: on a loaded machine the 100 ms default lets
		// a node fall back to its own count, which this test is not about.
		r, err := ratelimit.NewRedis(ratelimit.RedisOptions{URL: srv.URL(), Timeout: 5 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { r.Close() })
		n := httptest.NewServer(admin.Handler(svc, api.OpenAPI, nil, ratelimit.Failures{Limiter: r, Limit: 4, Window: time.Minute}))
		t.Cleanup(n.Close)
		nodes = append(nodes, n)
	}
	c := from("127.0.0.4")
	for i := range 4 {
		if code, _, _ := get(t, c, nodes[i%2].URL, "/audit", "pt_guess_0"); code != http.StatusUnauthorized {
			t.Fatalf("wrong token %d: %d", i+1, code)
		}
	}
	for i, n := range nodes {
		if code, retry, _ := get(t, c, n.URL, "/audit", good); code != http.StatusTooManyRequests || retry == "" {
			t.Fatalf("node %d after 4 failures on the two: %d (Retry-After %q)", i, code, retry)
		}
	}
	if code, _, _ := get(t, from("127.0.0.5"), nodes[0].URL, "/audit", good); code != http.StatusOK {
		t.Fatalf("another address: %d", code)
	}
}

// slowLimiter is a Local limiter whose counts take a while to land, as
// through a distant Redis: the gap between reading a count and adding to it
// that parallel calls can slip through.
type slowLimiter struct{ *ratelimit.Local }

func (l slowLimiter) Allow(ctx context.Context, key string, limit int, window time.Duration) ratelimit.Decision {
	time.Sleep(20 * time.Millisecond)
	return l.Local.Allow(ctx, key, limit, window)
}

// TestAdminAuthFailuresParallel fires a burst of wrong tokens from one
// address at once: no more than DefaultFailures reach the token check (401),
// the rest are 429. Before the fix the count was read before the check and
// added after it, so every guess of a burst was checked before the first
// failure counted (60 × 401 here). Calls with the right token give their
// place back: many in a row are never refused.
func TestAdminAuthFailuresParallel(t *testing.T) {
	const burst = 60
	for _, b := range storagetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			f := newFixture(t, b.Open(t))
			srv := httptest.NewServer(admin.Handler(f.svc, api.OpenAPI, nil, ratelimit.Failures{Limiter: slowLimiter{ratelimit.NewLocal(f.clock.now, 0)}}))
			t.Cleanup(srv.Close)
			good := f.tokens["auditor"]
			for i := range 3 * ratelimit.DefaultFailures {
				if code, _, _ := get(t, from("127.0.0.6"), srv.URL, "/audit", good); code != http.StatusOK {
					t.Fatalf("right token %d: %d", i+1, code)
				}
			}
			codes := make(chan int, burst)
			start := make(chan struct{})
			var wg sync.WaitGroup
			for i := range burst {
				wg.Go(func() {
					<-start
					req, _ := http.NewRequest("GET", srv.URL+admin.Prefix+"/audit", nil)
					req.Header.Set("Authorization", fmt.Sprintf("Bearer pt_guess_%d", i))
					resp, err := from("127.0.0.7").Do(req)
					if err != nil {
						t.Error(err) // not Fatal: this is not the test's goroutine
						return
					}
					resp.Body.Close()
					codes <- resp.StatusCode
				})
			}
			close(start)
			wg.Wait()
			close(codes)
			n := map[int]int{}
			for c := range codes {
				n[c]++
			}
			if n[http.StatusUnauthorized] > ratelimit.DefaultFailures || n[http.StatusUnauthorized]+n[http.StatusTooManyRequests] != burst {
				t.Fatalf("%d parallel wrong tokens: %v, want at most %d checked (401) and the rest 429", burst, n, ratelimit.DefaultFailures)
			}
			if code, _, _ := get(t, from("127.0.0.7"), srv.URL, "/audit", good); code != http.StatusTooManyRequests {
				t.Fatalf("the right token after the burst: %d, want 429", code)
			}
		})
	}
}
