package cns

import (
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ponte-id/ponte/idp"
)

// The kinds of revocation source the health book follows.
const (
	sourceOCSP = "ocsp"
	sourceCRL  = "crl"
)

// maxEndpoints bounds the sources the health book follows.
const maxEndpoints = 512

// Endpoint is the health of one OCSP responder or CRL distribution point.
type Endpoint struct {
	Kind        string    `json:"kind"`
	URL         string    `json:"url"`
	LastOK      time.Time `json:"last_ok,omitzero"`
	LastError   string    `json:"last_error,omitempty"`
	LastErrorAt time.Time `json:"last_error_at,omitzero"`
	// Failing is true when the last attempt failed: an outage the status
	// shows, while logins fall to another source or are refused.
	Failing bool `json:"failing"`
	// DownUntil is when a responder that failed is asked again.
	DownUntil time.Time `json:"down_until,omitzero"`
}

// healthBook follows the revocation sources. Its methods are safe for
// concurrent use.
type healthBook struct {
	mu sync.Mutex
	m  map[string]*Endpoint
}

func newHealthBook() *healthBook { return &healthBook{m: map[string]*Endpoint{}} }

func (h *healthBook) entry(kind, url string) *Endpoint {
	e, ok := h.m[kind+" "+url]
	if !ok {
		if len(h.m) >= maxEndpoints {
			return &Endpoint{} // followed no further; the log still tells
		}
		e = &Endpoint{Kind: kind, URL: url}
		h.m[kind+" "+url] = e
	}
	return e
}

// ok records a good answer.
func (h *healthBook) ok(kind, url string, now time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	e := h.entry(kind, url)
	e.LastOK, e.Failing, e.DownUntil = now, false, time.Time{}
}

// fail records a failure; retry > 0 leaves the source alone that long.
func (h *healthBook) fail(kind, url string, err error, now time.Time, retry time.Duration) {
	h.mu.Lock()
	defer h.mu.Unlock()
	e := h.entry(kind, url)
	e.LastError, e.LastErrorAt, e.Failing = err.Error(), now, true
	if retry > 0 {
		e.DownUntil = now.Add(retry)
	}
}

// down reports whether an OCSP responder is being left alone, and until when.
func (h *healthBook) down(url string, now time.Time) (time.Time, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if e, ok := h.m[sourceOCSP+" "+url]; ok && now.Before(e.DownUntil) {
		return e.DownUntil, true
	}
	return time.Time{}, false
}

// snapshot lists the sources, sorted.
func (h *healthBook) snapshot() []Endpoint {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make([]Endpoint, 0, len(h.m))
	for _, e := range h.m {
		out = append(out, *e)
	}
	slices.SortFunc(out, func(a, b Endpoint) int { return strings.Compare(a.Kind+a.URL, b.Kind+b.URL) })
	return out
}

// allReasons are the refusal reasons, in the order the counters list them.
var allReasons = []Reason{
	ReasonNoCertificate, ReasonExpired, ReasonNotYetValid, ReasonUnknownIssuer, ReasonBadChain,
	ReasonKeyUsage, ReasonExtKeyUsage, ReasonPolicy, ReasonMalformedSubject, ReasonFiscalNumber,
	ReasonSubjectMismatch, ReasonRevoked, ReasonOCSPUnknown, ReasonOCSPUnavailable, ReasonOCSPBadResponse,
	ReasonOCSPStale, ReasonCRLUnavailable, ReasonCRLStale, ReasonNoRevocationSource, ReasonUnboundReturn,
	ReasonResumedSession,
}

// metrics are the method's counters, ready for /metrics.
type metrics struct {
	logins, forgiven                          atomic.Uint64
	refusals                                  map[Reason]*atomic.Uint64
	ocspRequests, ocspFailures, ocspCacheHits atomic.Uint64
	crlFetches, crlFailures, reloads          atomic.Uint64
	reloadFailures                            atomic.Uint64
}

func newMetrics() *metrics {
	m := &metrics{refusals: map[Reason]*atomic.Uint64{}}
	for _, r := range allReasons {
		m.refusals[r] = new(atomic.Uint64)
	}
	return m
}

// refused counts a refusal.
func (m *metrics) refused(r Reason) {
	if c, ok := m.refusals[r]; ok {
		c.Add(1)
	}
}

// Counters are the method's counters at one moment.
type Counters struct {
	// Logins are cards accepted; FailOpen those accepted without a
	// revocation status (revocation.fail_open).
	Logins   uint64            `json:"logins"`
	FailOpen uint64            `json:"fail_open"`
	Refusals map[Reason]uint64 `json:"refusals"`
	// OCSP requests sent, failed, and answered from the cache.
	OCSPRequests  uint64 `json:"ocsp_requests"`
	OCSPFailures  uint64 `json:"ocsp_failures"`
	OCSPCacheHits uint64 `json:"ocsp_cache_hits"`
	// CRL downloads, and those that failed.
	CRLFetches  uint64 `json:"crl_fetches"`
	CRLFailures uint64 `json:"crl_failures"`
	// Reloads of the CA bundle and CRL files that changed something, and
	// reloads that failed (the previous files stay in force).
	Reloads        uint64 `json:"reloads"`
	ReloadFailures uint64 `json:"reload_failures"`
}

func (m *metrics) snapshot() Counters {
	c := Counters{
		Logins: m.logins.Load(), FailOpen: m.forgiven.Load(), Refusals: map[Reason]uint64{},
		OCSPRequests: m.ocspRequests.Load(), OCSPFailures: m.ocspFailures.Load(), OCSPCacheHits: m.ocspCacheHits.Load(),
		CRLFetches: m.crlFetches.Load(), CRLFailures: m.crlFailures.Load(),
		Reloads: m.reloads.Load(), ReloadFailures: m.reloadFailures.Load(),
	}
	for r, n := range m.refusals {
		c.Refusals[r] = n.Load()
	}
	return c
}

// writePrometheus writes samples (counters and gauges, as CollectMetrics
// reports them) in the Prometheus text format, each family's HELP and TYPE
// once, before its first sample.
func writePrometheus(w io.Writer, samples []idp.Sample) {
	seen := map[string]bool{}
	for _, s := range samples {
		if !seen[s.Name] {
			seen[s.Name] = true
			kind := "counter"
			if s.Kind == idp.Gauge {
				kind = "gauge"
			}
			if s.Help != "" {
				fmt.Fprintf(w, "# HELP %s %s\n", s.Name, s.Help)
			}
			fmt.Fprintf(w, "# TYPE %s %s\n", s.Name, kind)
		}
		var labels []string
		for _, l := range s.Labels {
			labels = append(labels, fmt.Sprintf("%s=%q", l.Name, l.Value))
		}
		v := strconv.FormatFloat(s.Value, 'f', -1, 64)
		if len(labels) > 0 {
			fmt.Fprintf(w, "%s{%s} %s\n", s.Name, strings.Join(labels, ","), v)
		} else {
			fmt.Fprintf(w, "%s %s\n", s.Name, v)
		}
	}
}
