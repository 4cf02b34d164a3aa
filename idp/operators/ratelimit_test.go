package operators

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ponte-id/ponte/idp"
	"github.com/ponte-id/ponte/internal/ratelimit"
)

// from is an HTTP client whose connections leave from ip, a loopback address
// (127.0.0.0/8): the server sees distinct clients.
func from(ip string) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
	return &http.Client{Transport: &http.Transport{DialContext: d.DialContext, DisableKeepAlives: true}}
}

// TestRequireFailuresLimited replays a stranger guessing operator tokens
// from one address, in front of the operator APIs (/operator/*): the first
// Limit unknown tokens are 401, then every call from that address is 429
// with Retry-After, before its token is looked up (the right one, of the
// static list or an administrator's, included), while another address is
// unaffected; when the window ends the right token works again. A known token
// without an operator role (403) is no failure. Before the fix every guess
// was looked up.
func TestRequireFailuresLimited(t *testing.T) {
	reg, err := Parse([]string{"op-1=" + HashToken("static-token")})
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	now := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	var lookups int
	tokens := func(_ context.Context, token string) (string, []string, bool, error) {
		mu.Lock()
		lookups++
		mu.Unlock()
		switch token {
		case "staff-token":
			return "RSSMRA80A01H501U", []string{idp.RoleOperatorSede}, true, nil
		case "auditor-token":
			return "BNCLGU70B02F205F", nil, true, nil
		}
		return "", nil, false, nil
	}
	const limit = 3
	h := Require(reg, tokens, nil, ratelimit.Failures{Limiter: ratelimit.NewLocal(clock, 0), Limit: limit, Window: time.Minute})(
		http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte(idp.OperatorFrom(r.Context()))) }))
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)

	const attacker, other = "127.0.0.2", "127.0.0.3"
	steps := []struct {
		name    string
		from    string
		token   string
		times   int
		advance time.Duration
		want    int
		lookup  bool // whether the token reaches the checker
	}{
		{"a known token without an operator role", attacker, "auditor-token", limit + 1, 0, http.StatusForbidden, true},
		{"unknown tokens up to the limit", attacker, "guess", limit, 0, http.StatusUnauthorized, true},
		{"one more unknown token", attacker, "guess", 1, 0, http.StatusTooManyRequests, false},
		{"the static token from that address", attacker, "static-token", 1, 0, http.StatusTooManyRequests, false},
		{"a staff token from that address", attacker, "staff-token", 1, 0, http.StatusTooManyRequests, false},
		{"an unknown token from another address", other, "guess", 1, 0, http.StatusUnauthorized, true},
		{"a staff token from another address", other, "staff-token", 1, 0, http.StatusOK, true},
		{"a staff token after the window", attacker, "staff-token", 1, time.Minute, http.StatusOK, true},
		{"the static token after the window", attacker, "static-token", 1, 0, http.StatusOK, false},
	}
	for _, s := range steps {
		mu.Lock()
		now = now.Add(s.advance)
		before := lookups
		mu.Unlock()
		for i := range s.times {
			req, _ := http.NewRequest("GET", srv.URL+"/", nil)
			req.Header.Set("Authorization", "Bearer "+s.token)
			resp, err := from(s.from).Do(req)
			if err != nil {
				t.Fatal(err)
			}
			var body struct {
				Error string `json:"error"`
			}
			_ = json.NewDecoder(resp.Body).Decode(&body)
			resp.Body.Close()
			if resp.StatusCode != s.want {
				t.Fatalf("%s (%d): %d %q, want %d", s.name, i+1, resp.StatusCode, body.Error, s.want)
			}
			if n, err := strconv.Atoi(resp.Header.Get("Retry-After")); s.want == http.StatusTooManyRequests && (err != nil || n < 1 || n > 60 || body.Error == "") {
				t.Fatalf("%s: Retry-After %q, error %q", s.name, resp.Header.Get("Retry-After"), body.Error)
			}
		}
		mu.Lock()
		looked := lookups > before
		mu.Unlock()
		if looked != s.lookup {
			t.Fatalf("%s: token looked up %v, want %v", s.name, looked, s.lookup)
		}
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

// TestRequireFailuresParallel fires a burst of unknown operator tokens from
// one address at once: at most Limit are looked up (401), the rest are 429
// unlooked. Before the fix every token of the burst was looked up.
func TestRequireFailuresParallel(t *testing.T) {
	const limit, burst = 3, 40
	var lookups atomic.Int32
	tokens := func(_ context.Context, token string) (string, []string, bool, error) {
		lookups.Add(1)
		return "", nil, false, nil
	}
	h := Require(nil, tokens, nil, ratelimit.Failures{Limiter: slowLimiter{ratelimit.NewLocal(nil, 0)}, Limit: limit, Window: time.Minute})(
		http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	codes := make(chan int, burst)
	var wg sync.WaitGroup
	for i := range burst {
		wg.Go(func() {
			req, _ := http.NewRequest("GET", srv.URL+"/", nil)
			req.Header.Set("Authorization", "Bearer guess-"+strconv.Itoa(i))
			resp, err := from("127.0.0.8").Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			resp.Body.Close()
			codes <- resp.StatusCode
		})
	}
	wg.Wait()
	close(codes)
	n := map[int]int{}
	for c := range codes {
		n[c]++
	}
	if got := lookups.Load(); got > limit || n[http.StatusUnauthorized] > limit || n[http.StatusTooManyRequests] != burst-n[http.StatusUnauthorized] {
		t.Fatalf("%d parallel unknown tokens: %v, %d looked up; want at most %d", burst, n, got, limit)
	}
}
