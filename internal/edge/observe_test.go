package edge_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/ponte-id/ponte/idp"
	"github.com/ponte-id/ponte/idp/provider"
	"github.com/ponte-id/ponte/internal/edge"
	"github.com/ponte-id/ponte/internal/metrics"
	"github.com/ponte-id/ponte/internal/requestid"
)

// echoID answers with the request ID its context carries, and logs a line
// with that context.
func echoID() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, requestid.From(r.Context()))
	})
}

// TestRequestID: every response carries an ID, the handler's context the
// same one, and the request log line too; an incoming ID is kept only from
// a trusted proxy and only when well-formed.
func TestRequestID(t *testing.T) {
	routes := []provider.Route{{Method: http.MethodGet, Path: "/id", Handler: echoID()}}
	const incoming = "f47ac10b-58cc-4372-a567-0e02b2c3d479"
	for _, tc := range []struct {
		name    string
		proxies []string
		header  string
		kept    bool
	}{
		{"none sent", nil, "", false},
		{"sent by a stranger", nil, incoming, false},
		{"sent by a proxy not trusted", []string{"10.0.0.1"}, incoming, false},
		{"sent by a trusted proxy", []string{"127.0.0.1"}, incoming, true},
		{"sent by a trusted network", []string{"127.0.0.0/8"}, incoming, true},
		{"malformed, from a trusted proxy", []string{"127.0.0.1"}, "x\" injected=\"1", false},
		{"too long, from a trusted proxy", []string{"127.0.0.1"}, strings.Repeat("a", requestid.MaxLen+1), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			url, logs := server(t, routes, edge.Options{TrustedProxies: tc.proxies})
			req := newRequest(t, http.MethodGet, url+"/id", nil)
			if tc.header != "" {
				req.Header.Set(requestid.Header, tc.header)
			}
			resp, body := do(t, req)
			id := resp.Header.Get(requestid.Header)
			if !requestid.WellFormed(id) || body != id {
				t.Fatalf("response ID %q, handler's %q", id, body)
			}
			if (id == tc.header) != tc.kept {
				t.Fatalf("ID %q for incoming %q: kept = %v, want %v", id, tc.header, id == tc.header, tc.kept)
			}
			if !strings.Contains(logs.String(), `"request_id":"`+id+`"`) {
				t.Fatalf("the request log lacks the ID %s: %s", id, logs.String())
			}
		})
	}
	// Refused before any handler (413), a path no route serves (404): still an ID.
	url, _ := server(t, routes, edge.Options{})
	for _, req := range []*http.Request{
		newRequest(t, http.MethodGet, url+"/nowhere", nil),
		newRequest(t, http.MethodPost, url+"/id", strings.NewReader(strings.Repeat("x", edge.DefaultMaxBody+1))),
	} {
		resp, _ := do(t, req)
		if !requestid.WellFormed(resp.Header.Get(requestid.Header)) {
			t.Errorf("%s %s answered %d without an ID", req.Method, req.URL.Path, resp.StatusCode)
		}
	}
}

// scrape returns the registry's metrics in the text format.
func scrape(t *testing.T, m *metrics.Registry) string {
	t.Helper()
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	return rec.Body.String()
}

// TestRequestMetrics: requests are counted by route pattern, never by the
// raw path a stranger chooses (a codice fiscale in a path stays out of the
// metrics), and by a bounded set of methods.
func TestRequestMetrics(t *testing.T) {
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })
	routes := []provider.Route{
		{Method: http.MethodGet, Path: "/token", Handler: ok},
		{Path: "/login/pin", Prefix: true, Handler: ok},
	}
	m := metrics.New()
	url, _ := server(t, routes, edge.Options{Metrics: m})
	for _, r := range []struct{ method, path string }{
		{"GET", "/token"}, {"GET", "/token"}, {"GET", "/login/pin/" + cf}, {"POST", "/login/pin/x/y"},
		{"GET", "/" + cf}, {"BREW", "/token"},
	} {
		do(t, newRequest(t, r.method, url+r.path, nil))
	}
	out := scrape(t, m)
	for _, want := range []string{
		`ponte_http_request_duration_seconds_count{method="GET",route="/token",status="200"} 2`,
		`ponte_http_request_duration_seconds_count{method="GET",route="/login/pin/*rest",status="200"} 1`,
		`ponte_http_request_duration_seconds_count{method="POST",route="/login/pin/*rest",status="200"} 1`,
		`ponte_http_request_duration_seconds_count{method="GET",route="unmatched",status="404"} 1`,
		`ponte_http_request_duration_seconds_count{method="other",route="unmatched",status="405"} 1`,
		`ponte_http_requests_in_flight 0`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	if strings.Contains(out, cf) || strings.Contains(out, "BREW") {
		t.Errorf("a client-chosen path or method reached the metrics:\n%s", out)
	}
}

// TestAdmin: the admin listener serves the metrics and the detailed
// readiness; a degraded method is shown with its problems and the node
// stays ready, a failing check makes it unready. The public /readyz tells
// the same verdict without the details.
func TestAdmin(t *testing.T) {
	dbErr := errors.New("dial tcp 10.1.2.3:5432: connection refused")
	var dbDown bool
	rd := edge.Readiness{
		Checks: []edge.Check{
			{Name: "database", Run: func(context.Context) error {
				if dbDown {
					return dbErr
				}
				return nil
			}},
			{Name: "signing_keys", Run: func(context.Context) error { return nil }},
		},
		Methods: func(context.Context) map[idp.Method]idp.Health {
			return map[idp.Method]idp.Health{
				idp.MethodCNS: {Degraded: true, Problems: []string{"ocsp http://ocsp.ca.example/ failing: connection refused"}},
				idp.MethodPIN: {},
			}
		},
	}
	m := metrics.New()
	admin := httptest.NewServer(edge.Admin(m, rd, nil))
	t.Cleanup(admin.Close)
	public, _ := server(t, nil, edge.Options{Readiness: rd, Metrics: m})

	if resp, _ := do(t, newRequest(t, http.MethodGet, public+"/metrics", nil)); resp.StatusCode != http.StatusNotFound {
		t.Errorf("/metrics on the public listener: %d, want 404", resp.StatusCode)
	}
	resp, body := do(t, newRequest(t, http.MethodGet, admin.URL+"/metrics", nil))
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, "ponte_http_request_duration_seconds_count") || !strings.Contains(body, "go_goroutines") {
		t.Errorf("admin /metrics: %d\n%s", resp.StatusCode, body)
	}
	for _, tc := range []struct {
		name   string
		url    string
		down   bool
		status int
		detail bool
	}{
		{"admin, degraded method", admin.URL, false, http.StatusOK, true},
		{"public, degraded method", public, false, http.StatusOK, false},
		{"admin, database down", admin.URL, true, http.StatusServiceUnavailable, true},
		{"public, database down", public, true, http.StatusServiceUnavailable, false},
	} {
		dbDown = tc.down
		resp, body := do(t, newRequest(t, http.MethodGet, tc.url+"/readyz", nil))
		var rep edge.Report
		if err := json.Unmarshal([]byte(body), &rep); err != nil || resp.StatusCode != tc.status {
			t.Errorf("%s: %d %s (%v)", tc.name, resp.StatusCode, body, err)
			continue
		}
		cns := rep.Methods["cns"]
		if cns.Status != "degraded" || rep.Methods["pin"].Status != "ok" || rep.Checks["database"].OK == tc.down || !rep.Checks["signing_keys"].OK {
			t.Errorf("%s: %+v", tc.name, rep)
		}
		if got := len(cns.Problems) == 1 && (!tc.down || rep.Checks["database"].Error == dbErr.Error()); got != tc.detail {
			t.Errorf("%s: details shown = %v, want %v: %s", tc.name, got, tc.detail, body)
		}
		if !tc.detail && (strings.Contains(body, "10.1.2.3") || strings.Contains(body, "ocsp.ca.example")) {
			t.Errorf("%s: the public /readyz names internal hosts: %s", tc.name, body)
		}
	}
}

// TestTracing: a request makes a span named after its route pattern, with
// the route as http.route, and a trace context sent by the caller is
// followed.
func TestTracing(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := trace.NewTracerProvider(trace.WithSpanProcessor(rec))
	routes := []provider.Route{{Path: "/login/pin", Prefix: true, Handler: echoID()}}
	url, _ := server(t, routes, edge.Options{Tracer: tp})
	req := newRequest(t, http.MethodGet, url+"/login/pin/"+cf, nil)
	const parent = "0af7651916cd43dd8448eb211c80319c"
	req.Header.Set("traceparent", "00-"+parent+"-b7ad6b7169203331-01")
	do(t, req)
	do(t, newRequest(t, http.MethodGet, url+"/nowhere", nil))
	spans := rec.Ended()
	if len(spans) != 2 {
		t.Fatalf("%d spans, want 2", len(spans))
	}
	s := spans[0]
	var route, id string
	for _, a := range s.Attributes() {
		switch a.Key {
		case "http.route":
			route = a.Value.AsString()
		case "ponte.request_id":
			id = a.Value.AsString()
		}
	}
	if !requestid.WellFormed(id) {
		t.Errorf("the span's request ID %q", id)
	}
	if s.Name() != "GET /login/pin/*rest" || route != "/login/pin/*rest" {
		t.Errorf("span %q with http.route %q, want the route pattern", s.Name(), route)
	}
	if s.SpanContext().TraceID().String() != parent {
		t.Errorf("trace %s, want the caller's %s", s.SpanContext().TraceID(), parent)
	}
	for _, sp := range spans {
		if strings.Contains(sp.Name(), cf) {
			t.Errorf("a span is named after the raw path: %q", sp.Name())
		}
	}
}
