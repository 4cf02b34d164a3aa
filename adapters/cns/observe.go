package cns

import (
	"context"
	"fmt"

	"github.com/ponte-id/ponte/idp"
)

var (
	_ idp.Metered        = (*authenticator)(nil)
	_ idp.HealthReporter = (*authenticator)(nil)
)

// CollectMetrics reports the method's one book of counters (the same the
// operator's /status and /metrics show): refusals by reason, revocation
// traffic, reloads, and each revocation source's health.
func (a *authenticator) CollectMetrics(_ context.Context, emit func(idp.Sample)) {
	c := a.metrics.snapshot()
	counter := func(name, help string, v uint64, labels ...idp.Label) {
		emit(idp.Sample{Name: name, Help: help, Kind: idp.Counter, Labels: labels, Value: float64(v)})
	}
	var refused uint64
	for _, r := range allReasons {
		refused += c.Refusals[r]
		counter("ponte_cns_refusals_total", "CNS cards refused, by reason.", c.Refusals[r], idp.Label{Name: "reason", Value: string(r)})
	}
	counter(idp.MetricLogins, "", refused, idp.Label{Name: "result", Value: "refused"})
	counter("ponte_cns_logins_total", "CNS cards accepted.", c.Logins)
	counter("ponte_cns_fail_open_total", "CNS cards accepted without a revocation status (revocation.fail_open).", c.FailOpen)
	const ocsp, crl, reloads = "OCSP requests sent, by result.", "CRL downloads, by result.", "Reloads of the CA bundle and CRL files, by result."
	counter("ponte_cns_ocsp_requests_total", ocsp, c.OCSPRequests-c.OCSPFailures, idp.Label{Name: "result", Value: "ok"})
	counter("ponte_cns_ocsp_requests_total", ocsp, c.OCSPFailures, idp.Label{Name: "result", Value: "error"})
	counter("ponte_cns_ocsp_cache_hits_total", "OCSP answers served from the cache.", c.OCSPCacheHits)
	counter("ponte_cns_crl_fetches_total", crl, c.CRLFetches-c.CRLFailures, idp.Label{Name: "result", Value: "ok"})
	counter("ponte_cns_crl_fetches_total", crl, c.CRLFailures, idp.Label{Name: "result", Value: "error"})
	counter("ponte_cns_reloads_total", reloads, c.Reloads, idp.Label{Name: "result", Value: "changed"})
	counter("ponte_cns_reloads_total", reloads, c.ReloadFailures, idp.Label{Name: "result", Value: "error"})
	for _, e := range a.health.snapshot() {
		up := 1.0
		if e.Failing {
			up = 0
		}
		emit(idp.Sample{Name: "ponte_cns_source_up", Help: "Whether the last request to a revocation source succeeded.", Kind: idp.Gauge,
			Labels: []idp.Label{{Name: "kind", Value: e.Kind}, {Name: "url", Value: e.URL}}, Value: up})
	}
}

// Health is degraded while a revocation source fails, a CRL file is stale
// or the last reload failed: logins go on where another source answers (or
// revocation.fail_open), so the node stays ready (issue 11).
func (a *authenticator) Health(context.Context) idp.Health {
	s := a.status()
	h := idp.Health{Degraded: s.Degraded}
	if s.ReloadError != "" {
		h.Problems = append(h.Problems, "reload failed: "+s.ReloadError)
	}
	for _, f := range s.CRLFiles {
		if f.Stale {
			h.Problems = append(h.Problems, fmt.Sprintf("CRL file %s is stale (next update %s)", f.Source, f.NextUpdate.Format("2006-01-02T15:04:05Z07:00")))
		}
	}
	for _, e := range s.Sources {
		if e.Failing {
			h.Problems = append(h.Problems, fmt.Sprintf("%s %s failing since %s: %s", e.Kind, e.URL, e.LastErrorAt.Format("2006-01-02T15:04:05Z07:00"), e.LastError))
		}
	}
	return h
}
