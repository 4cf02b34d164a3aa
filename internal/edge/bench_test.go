package edge_test

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/ponte-id/ponte/idp/provider"
	"github.com/ponte-id/ponte/internal/edge"
	"github.com/ponte-id/ponte/internal/metrics"
	"github.com/ponte-id/ponte/internal/requestid"
)

// BenchmarkEdge is the edge's cost per request around a handler that does
// nothing (the request log to a JSON handler writing to io.Discard): plain
// (request ID and log, as always), with metrics, with metrics and tracing.
func BenchmarkEdge(b *testing.B) {
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) })
	routes := []provider.Route{{Method: http.MethodGet, Path: "/jwks.json", Handler: ok}}
	tp := trace.NewTracerProvider(trace.WithSpanProcessor(tracetest.NewSpanRecorder()))
	for _, bc := range []struct {
		name string
		opts edge.Options
	}{
		{"plain", edge.Options{}},
		{"metrics", edge.Options{Metrics: metrics.New()}},
		{"metrics+tracing", edge.Options{Metrics: metrics.New(), Tracer: tp}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			bc.opts.Logger = slog.New(requestid.NewHandler(slog.NewJSONHandler(io.Discard, nil)))
			h, err := edge.New(routes, bc.opts)
			if err != nil {
				b.Fatal(err)
			}
			req := httptest.NewRequest(http.MethodGet, "/jwks.json", nil)
			b.ReportAllocs()
			for b.Loop() {
				w := httptest.NewRecorder()
				h.ServeHTTP(w, req)
				if w.Code != http.StatusNoContent {
					b.Fatal(w.Code)
				}
			}
		})
	}
}
