package cns

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/ponte-id/ponte/idp"
)

// Status is what an operator sees of the method: the trust it works with,
// the health of its revocation sources, and its counters.
type Status struct {
	Enabled bool   `json:"enabled"`
	CardURL string `json:"card_url,omitempty"`
	// Degraded is true while a revocation source fails or a CRL file is
	// stale, or the last reload failed: logins go on where another source
	// answers (or revocation.fail_open), and are refused otherwise.
	Degraded    bool        `json:"degraded"`
	CAs         []CAStatus  `json:"cas,omitempty"`
	CRLFiles    []CRLStatus `json:"crl_files,omitempty"`
	LoadedAt    time.Time   `json:"loaded_at,omitzero"`
	ReloadError string      `json:"reload_error,omitempty"`
	Sources     []Endpoint  `json:"sources,omitempty"`
	Counters    Counters    `json:"counters"`
}

// CAStatus is one CA of the bundle.
type CAStatus struct {
	Subject  string    `json:"subject"`
	NotAfter time.Time `json:"not_after"`
	SHA256   string    `json:"sha256"`
}

// CRLStatus is one CRL file.
type CRLStatus struct {
	Source     string    `json:"source"`
	Entries    int       `json:"entries"`
	ThisUpdate time.Time `json:"this_update"`
	NextUpdate time.Time `json:"next_update,omitzero"`
	Stale      bool      `json:"stale"`
}

// StatusOf returns the status of a method opened by Open or New.
func StatusOf(a idp.Authenticator) (Status, bool) {
	ca, ok := a.(*authenticator)
	if !ok {
		return Status{}, false
	}
	return ca.status(), true
}

func (a *authenticator) status() Status {
	s := Status{Enabled: bool(a.cfg.Enabled), Counters: a.metrics.snapshot()}
	if !a.cfg.Enabled {
		return s
	}
	now := a.now()
	s.CardURL = a.cardURL
	ts := a.trust.current()
	s.LoadedAt = ts.loadedAt
	if e := a.trust.lastErr.Load(); e != nil {
		s.ReloadError, s.Degraded = *e, true
	}
	for _, c := range ts.cas {
		sum := sha256.Sum256(c.Raw)
		s.CAs = append(s.CAs, CAStatus{Subject: c.Subject.String(), NotAfter: c.NotAfter, SHA256: hex.EncodeToString(sum[:])})
	}
	for _, lists := range ts.crls {
		for _, l := range lists {
			st := CRLStatus{Source: l.source, Entries: len(l.revoked), ThisUpdate: l.thisUpdate, NextUpdate: l.nextUpdate,
				Stale: a.revoker.crlFresh(l, now) != nil}
			s.Degraded = s.Degraded || st.Stale
			s.CRLFiles = append(s.CRLFiles, st)
		}
	}
	slices.SortFunc(s.CRLFiles, func(x, y CRLStatus) int { return strings.Compare(x.Source, y.Source) })
	s.Sources = a.health.snapshot()
	for _, e := range s.Sources {
		s.Degraded = s.Degraded || e.Failing
	}
	return s
}

// OperatorHandler serves, behind the core's operator authentication:
//
//	GET /status   the Status, as JSON
//	GET /metrics  the counters and the sources' health, in the Prometheus text
//	              format: what the node's /metrics shows of the method, from the same book
func (a *authenticator) OperatorHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /status", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		_ = enc.Encode(a.status())
	})
	mux.HandleFunc("GET /metrics", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		var samples []idp.Sample
		a.CollectMetrics(r.Context(), func(s idp.Sample) { samples = append(samples, s) })
		writePrometheus(w, samples)
	})
	return mux
}
