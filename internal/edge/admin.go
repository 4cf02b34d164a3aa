package edge

import (
	"log/slog"
	"net/http"

	"github.com/ponte-id/ponte/internal/metrics"
)

// Admin returns the handler of the admin listener, for operators and their
// monitoring, never for citizens: /metrics (Prometheus), /healthz, and
// /readyz with every check's error and every method's problems. It has no
// authentication: listen on loopback or a private network only.
func Admin(m *metrics.Registry, rd Readiness, log *slog.Logger) http.Handler {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	mux := http.NewServeMux()
	if m != nil {
		mux.Handle("GET /metrics", m.Handler())
	}
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.Handle("GET /readyz", rd.handler(log, true))
	return mux
}
