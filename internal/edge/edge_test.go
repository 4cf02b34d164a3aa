package edge_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/ponte-id/ponte/idp/provider"
	"github.com/ponte-id/ponte/internal/edge"
	"github.com/ponte-id/ponte/internal/requestid"
)

const cf = "RSSMRA80A01H501U"

// syncBuffer is a log destination shared by the server's goroutines and the test.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// server runs the edge over routes on a loopback listener and returns its URL
// and its log.
func server(t *testing.T, routes []provider.Route, opts edge.Options) (string, *syncBuffer) {
	t.Helper()
	logs := &syncBuffer{}
	// As cmd/ponte builds it: records made with a request's context carry its ID.
	opts.Logger = slog.New(requestid.NewHandler(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	h, err := edge.New(routes, opts)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.URL, logs
}

func do(t *testing.T, req *http.Request) (*http.Response, string) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, string(body)
}

func newRequest(t *testing.T, method, url string, body io.Reader) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	return req
}

// reader is a handler that reads the whole body and answers how many bytes
// it got, or 400 with the error; calls counts the requests it saw.
func reader(calls *atomic.Int32) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		n, err := io.Copy(io.Discard, r.Body)
		var tooLarge *http.MaxBytesError
		switch {
		case errors.As(err, &tooLarge):
			http.Error(w, "limit "+strconv.FormatInt(tooLarge.Limit, 10), http.StatusBadRequest)
		case err != nil:
			http.Error(w, err.Error(), http.StatusBadRequest)
		default:
			io.WriteString(w, strconv.FormatInt(n, 10))
		}
	})
}

// onlyReader hides the length of a body, so that it is sent chunked.
type onlyReader struct{ io.Reader }

func TestBodyLimit(t *testing.T) {
	var small, big atomic.Int32
	url, _ := server(t, []provider.Route{
		{Method: http.MethodPost, Path: "/small", Handler: reader(&small)},
		{Path: "/big", Prefix: true, Handler: reader(&big), MaxBody: 1 << 20},
	}, edge.Options{})
	const def = edge.DefaultMaxBody

	for _, tc := range []struct {
		name    string
		path    string
		n       int64
		chunked bool
		status  int
		body    string
		calls   *atomic.Int32
		reached bool
	}{
		{"default limit, at it", "/small", def, false, http.StatusOK, strconv.Itoa(def), &small, true},
		{"default limit, declared over it: 413 unread", "/small", def + 1, false, http.StatusRequestEntityTooLarge, "", &small, false},
		{"default limit, chunked over it: the read fails", "/small", def + 1, true, http.StatusBadRequest, "limit " + strconv.Itoa(def), &small, true},
		{"route's own limit, above the default", "/big/upload", 1 << 20, false, http.StatusOK, strconv.Itoa(1 << 20), &big, true},
		{"route's own limit, declared over it", "/big/upload", 1<<20 + 1, false, http.StatusRequestEntityTooLarge, "", &big, false},
		{"route's own limit, chunked over it", "/big/upload", 1<<20 + 1, true, http.StatusBadRequest, "limit " + strconv.Itoa(1<<20), &big, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := tc.calls.Load()
			var body io.Reader = bytes.NewReader(make([]byte, tc.n))
			if tc.chunked {
				body = onlyReader{body}
			}
			req := newRequest(t, http.MethodPost, url+tc.path, body)
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			resp, got := do(t, req)
			if resp.StatusCode != tc.status || !strings.HasPrefix(got, tc.body) {
				t.Fatalf("status %d %q, want %d %q", resp.StatusCode, got, tc.status, tc.body)
			}
			if reached := tc.calls.Load() > before; reached != tc.reached {
				t.Errorf("handler reached: %v, want %v", reached, tc.reached)
			}
		})
	}
}

func TestHSTS(t *testing.T) {
	routes := []provider.Route{{Method: http.MethodGet, Path: "/x", Handler: http.NotFoundHandler()}}
	for _, tc := range []struct {
		issuer string
		want   string
	}{
		{"https://login.inps.it", "max-age=31536000"},
		{"http://127.0.0.1:8080", ""},
		{"", ""},
	} {
		t.Run(tc.issuer, func(t *testing.T) {
			url, _ := server(t, routes, edge.Options{Issuer: tc.issuer})
			for _, path := range []string{"/x", "/healthz", "/nowhere"} {
				resp, _ := do(t, newRequest(t, http.MethodGet, url+path, nil))
				if got := resp.Header.Get("Strict-Transport-Security"); got != tc.want {
					t.Errorf("%s: Strict-Transport-Security %q, want %q", path, got, tc.want)
				}
				if resp.Header.Get("X-Content-Type-Options") != "nosniff" {
					t.Errorf("%s: no X-Content-Type-Options", path)
				}
			}
		})
	}
}

func TestPanic(t *testing.T) {
	url, logs := server(t, []provider.Route{{Method: http.MethodGet, Path: "/audit/:cf", Handler: http.HandlerFunc(
		func(http.ResponseWriter, *http.Request) { panic("no account for " + cf) })}}, edge.Options{})
	resp, body := do(t, newRequest(t, http.MethodGet, url+"/audit/"+cf, nil))
	if resp.StatusCode != http.StatusInternalServerError || body != "internal error\n" {
		t.Fatalf("status %d %q, want a plain 500", resp.StatusCode, body)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Errorf("Content-Type %q", ct)
	}
	out := logs.String()
	if !strings.Contains(out, "panic serving request") || !strings.Contains(out, "RSS************U") {
		t.Errorf("panic not logged, masked: %s", out)
	}
	if strings.Contains(out, cf) || strings.Contains(out, "goroutine") {
		t.Errorf("log holds the codice fiscale or a stack: %s", out)
	}
	// The server lives on.
	if resp, _ := do(t, newRequest(t, http.MethodGet, url+"/healthz", nil)); resp.StatusCode != http.StatusOK {
		t.Errorf("after a panic /healthz answered %d", resp.StatusCode)
	}
}

func TestHealth(t *testing.T) {
	var ready atomic.Bool
	url, logs := server(t, nil, edge.Options{Readiness: edge.Readiness{Checks: []edge.Check{{Name: "database", Run: func(ctx context.Context) error {
		if !ready.Load() {
			return errors.New("database unreachable")
		}
		return nil
	}}}}})
	for _, tc := range []struct {
		path   string
		ready  bool
		status int
		body   string
	}{
		{"/healthz", false, http.StatusOK, "ok\n"},
		{"/readyz", false, http.StatusServiceUnavailable, `"status": "not ready"`},
		{"/readyz", true, http.StatusOK, `"status": "ready"`},
	} {
		ready.Store(tc.ready)
		resp, body := do(t, newRequest(t, http.MethodGet, url+tc.path, nil))
		if resp.StatusCode != tc.status || !strings.Contains(body, tc.body) {
			t.Errorf("%s (ready=%v): %d %q, want %d %q", tc.path, tc.ready, resp.StatusCode, body, tc.status, tc.body)
		}
		if strings.Contains(body, "unreachable") {
			t.Errorf("%s on the public listener tells the check's error: %s", tc.path, body)
		}
	}
	if !strings.Contains(logs.String(), "database unreachable") {
		t.Errorf("the reason for not ready is not logged: %s", logs.String())
	}
	// Without a readiness check the node is ready.
	url, _ = server(t, nil, edge.Options{})
	if resp, _ := do(t, newRequest(t, http.MethodGet, url+"/readyz", nil)); resp.StatusCode != http.StatusOK {
		t.Errorf("/readyz without a check: %d", resp.StatusCode)
	}
}

func TestTrustedProxies(t *testing.T) {
	// The handler answers with the client address it was given.
	routes := []provider.Route{{Method: http.MethodGet, Path: "/ip", Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host, _, _ := net.SplitHostPort(r.RemoteAddr)
		io.WriteString(w, host)
	})}}
	for _, tc := range []struct {
		name    string
		trusted []string
		want    string
	}{
		{"no proxy trusted", nil, "127.0.0.1"},
		{"another proxy trusted", []string{"10.0.0.0/8"}, "127.0.0.1"},
		{"the peer is a trusted proxy", []string{"127.0.0.1/32"}, "203.0.113.7"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			url, logs := server(t, routes, edge.Options{TrustedProxies: tc.trusted})
			req := newRequest(t, http.MethodGet, url+"/ip", nil)
			req.Header.Set("X-Forwarded-For", "203.0.113.7")
			resp, body := do(t, req)
			if resp.StatusCode != http.StatusOK || body != tc.want {
				t.Errorf("client address %d %q, want %q", resp.StatusCode, body, tc.want)
			}
			if !strings.Contains(logs.String(), `"ip":"`+tc.want+`"`) {
				t.Errorf("request log: %s, want ip %s", logs.String(), tc.want)
			}
		})
	}
	if _, err := edge.New(nil, edge.Options{TrustedProxies: []string{"not an address"}}); err == nil {
		t.Error("a bad trusted proxy was accepted")
	}
}

func TestNotFoundAndMethodNotAllowed(t *testing.T) {
	url, _ := server(t, []provider.Route{{Method: http.MethodPost, Path: "/token", Handler: http.NotFoundHandler()}}, edge.Options{})
	for _, tc := range []struct {
		method, path string
		status       int
		body         string
	}{
		{http.MethodGet, "/nowhere", http.StatusNotFound, "404 page not found\n"},
		{http.MethodGet, "/token", http.StatusMethodNotAllowed, "405 method not allowed\n"},
		{http.MethodPost, "/healthz", http.StatusMethodNotAllowed, "405 method not allowed\n"},
	} {
		resp, body := do(t, newRequest(t, tc.method, url+tc.path, nil))
		if resp.StatusCode != tc.status || body != tc.body {
			t.Errorf("%s %s: %d %q, want %d %q", tc.method, tc.path, resp.StatusCode, body, tc.status, tc.body)
		}
	}
}

// TestRequestLog checks the one line per request: the path with any codice
// fiscale masked, never the query.
func TestRequestLog(t *testing.T) {
	url, logs := server(t, []provider.Route{{Path: "/operator/pin", Prefix: true, Handler: http.NotFoundHandler()}}, edge.Options{})
	for _, path := range []string{
		"/operator/pin/audit/" + cf,
		"/operator/pin/audit/" + strings.ToLower(cf),
		"/operator/pin/x?fiscal_number=" + cf + "&code=secret-code",
		"/nowhere/" + cf,
	} {
		do(t, newRequest(t, http.MethodGet, url+path, nil))
	}
	out := logs.String()
	for _, want := range []string{`"path":"/operator/pin/audit/RSS************U"`, `"path":"/operator/pin/audit/rss************u"`,
		`"path":"/operator/pin/x"`, `"path":"/nowhere/RSS************U"`, `"status":404`, `"method":"GET"`} {
		if !strings.Contains(out, want) {
			t.Errorf("request log lacks %s:\n%s", want, out)
		}
	}
	if strings.Contains(strings.ToUpper(out), cf) || strings.Contains(out, "secret-code") {
		t.Errorf("request log holds a whole codice fiscale or the query:\n%s", out)
	}
}
