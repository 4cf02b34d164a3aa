package edge

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"sort"
	"time"

	"github.com/ponte-id/ponte/idp"
)

// Check is one readiness check: the node is unready while it fails.
type Check struct {
	Name string
	Run  func(ctx context.Context) error
}

// Readiness is what /readyz checks and shows.
type Readiness struct {
	// Checks must all pass for the node to be ready (database reachable,
	// signing keys loaded, migrations current).
	Checks []Check
	// Methods reports the login methods' health (idp.HealthReporter). A
	// degraded method is shown and never makes the node unready: the other
	// methods, and the method's own fallbacks, still serve.
	Methods func(ctx context.Context) map[idp.Method]idp.Health
}

// readyTimeout bounds the checks of one /readyz.
const readyTimeout = 2 * time.Second

// Report is the JSON of /readyz.
type Report struct {
	Status  string                  `json:"status"` // "ready" or "not ready"
	Checks  map[string]CheckReport  `json:"checks"`
	Methods map[string]MethodReport `json:"methods,omitempty"`
}

// CheckReport is one check's result; Error only on the admin listener.
type CheckReport struct {
	OK    bool   `json:"ok"`
	Error string `json:"error,omitempty"`
}

// MethodReport is one method's health; Problems only on the admin listener.
type MethodReport struct {
	Status   string   `json:"status"` // "ok" or "degraded"
	Problems []string `json:"problems,omitempty"`
}

// report runs the checks. detail keeps the errors and problems, which name
// internal hosts and files: only operators see them.
func (rd Readiness) report(ctx context.Context, detail bool) (Report, []error) {
	ctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	rep := Report{Status: "ready", Checks: map[string]CheckReport{}}
	var errs []error
	for _, c := range rd.Checks {
		err := c.Run(ctx)
		cr := CheckReport{OK: err == nil}
		if err != nil {
			rep.Status = "not ready"
			errs = append(errs, err)
			if detail {
				cr.Error = err.Error()
			}
		}
		rep.Checks[c.Name] = cr
	}
	if rd.Methods != nil {
		rep.Methods = map[string]MethodReport{}
		for m, h := range rd.Methods(ctx) {
			mr := MethodReport{Status: "ok"}
			if h.Degraded {
				mr.Status = "degraded"
			}
			if detail {
				mr.Problems = h.Problems
				sort.Strings(mr.Problems)
			}
			rep.Methods[string(m)] = mr
		}
	}
	return rep, errs
}

// handler serves the report: 200 when ready, 503 otherwise.
func (rd Readiness) handler(log *slog.Logger, detail bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rep, errs := rd.report(r.Context(), detail)
		status := http.StatusOK
		if len(errs) > 0 {
			status = http.StatusServiceUnavailable
			log.WarnContext(r.Context(), "not ready", "err", errors.Join(errs...))
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(status)
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		_ = enc.Encode(rep)
	})
}
