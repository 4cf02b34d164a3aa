// Package metrics is Ponte's Prometheus registry: requests and latencies by
// route pattern, logins by method and result, tokens issued by grant type,
// the database pools, the admission gates, and whatever the login methods
// report through the seam (idp.Metered). Its Handler is served on the admin
// listener only, never to citizens.
package metrics

import (
	"context"
	"database/sql"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/ponte-id/ponte/idp"
	"github.com/ponte-id/ponte/internal/admission"
)

// Registry holds every metric of one process.
type Registry struct {
	reg      *prometheus.Registry
	requests *prometheus.HistogramVec
	inFlight prometheus.Gauge
	tokens   *prometheus.CounterVec
	methods  *methodCollector
	// observers caches requests' observers by route, method and status:
	// the hot path finds one with one map read and no allocation.
	observers sync.Map // obsKey -> prometheus.Observer
}

type obsKey struct {
	route, method string
	status        int
}

// New returns a registry with the Go runtime's and the process's metrics.
func New() *Registry {
	r := &Registry{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "ponte_http_request_duration_seconds",
			Help: "HTTP requests by route pattern, method and status, and their latency.",
			// 1 ms to 10 s: a JWKS read to a login queued behind argon2id.
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"route", "method", "status"}),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "ponte_http_requests_in_flight", Help: "HTTP requests being served.",
		}),
		tokens: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ponte_tokens_issued_total", Help: "Token responses issued by the token endpoint, by grant type.",
		}, []string{"grant_type"}),
		methods: &methodCollector{success: map[idp.Method]*atomic.Uint64{}},
	}
	for _, g := range []string{"authorization_code", "refresh_token"} {
		r.tokens.WithLabelValues(g)
	}
	r.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		r.requests, r.inFlight, r.tokens, r.methods)
	return r
}

// Handler serves the metrics in the Prometheus exposition format. A
// collector that fails leaves the others' metrics served.
func (r *Registry) Handler() http.Handler {
	return promhttp.HandlerFor(r.reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
}

// Register adds a collector (tests, other parts of the process).
func (r *Registry) Register(c prometheus.Collector) error { return r.reg.Register(c) }

// knownMethods bounds the method label: anything else is "other".
var knownMethods = map[string]string{
	http.MethodGet: http.MethodGet, http.MethodHead: http.MethodHead, http.MethodPost: http.MethodPost,
	http.MethodPut: http.MethodPut, http.MethodDelete: http.MethodDelete, http.MethodOptions: http.MethodOptions,
	http.MethodPatch: http.MethodPatch,
}

// RequestStarted counts a request in flight until RequestDone.
func (r *Registry) RequestStarted() { r.inFlight.Inc() }

// RequestDone ends what RequestStarted counted.
func (r *Registry) RequestDone() { r.inFlight.Dec() }

// ObserveRequest records one request: route is the route's pattern (never
// the raw path, which a stranger chooses), "" for a path no route serves.
func (r *Registry) ObserveRequest(route, method string, status int, d time.Duration) {
	m, ok := knownMethods[method]
	if !ok {
		m = "other"
	}
	if route == "" {
		route = "unmatched"
	}
	k := obsKey{route, m, status}
	o, ok := r.observers.Load(k)
	if !ok {
		o, _ = r.observers.LoadOrStore(k, r.requests.WithLabelValues(route, m, strconv.Itoa(status)))
	}
	o.(prometheus.Observer).Observe(d.Seconds())
}

// TokensIssued counts a token response of grantType.
func (r *Registry) TokensIssued(grantType string) {
	switch grantType {
	case "authorization_code", "refresh_token":
	default:
		grantType = "other"
	}
	r.tokens.WithLabelValues(grantType).Inc()
}

// LoginCompleted counts a login that started an SSO session.
func (r *Registry) LoginCompleted(m idp.Method) {
	if c, ok := r.methods.success[m]; ok {
		c.Add(1)
	}
}

// AddMethods has the login methods' metrics collected at every scrape: the
// core's count of their successful logins, and what each reports (idp.Metered).
// Call it once, before serving.
func (r *Registry) AddMethods(methods []idp.Authenticator) {
	r.methods.mu.Lock()
	defer r.methods.mu.Unlock()
	for _, a := range methods {
		r.methods.success[a.Method()] = new(atomic.Uint64)
		r.methods.list = append(r.methods.list, a)
	}
}

// AddDB exposes a connection pool's statistics (database/sql DBStats) under
// the label db=name.
func (r *Registry) AddDB(name string, db *sql.DB) error {
	return r.reg.Register(collectors.NewDBStatsCollector(db, name))
}

// collectTimeout bounds a method's CollectMetrics (a storage count).
const collectTimeout = 2 * time.Second

// methodCollector turns the methods' samples into Prometheus metrics. It is
// unchecked (describes nothing): the families are the methods' own.
type methodCollector struct {
	mu      sync.Mutex
	list    []idp.Authenticator
	success map[idp.Method]*atomic.Uint64
}

func (c *methodCollector) Describe(chan<- *prometheus.Desc) {}

func (c *methodCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	list := c.list
	c.mu.Unlock()
	const loginsHelp = "Login attempts by method and result: success is a login that started an SSO session; the rest are the methods' refusals."
	for _, a := range list {
		m := string(a.Method())
		ch <- prometheus.MustNewConstMetric(prometheus.NewDesc(idp.MetricLogins, loginsHelp, nil,
			prometheus.Labels{"method": m, "result": "success"}), prometheus.CounterValue, float64(c.success[a.Method()].Load()))
		mm, ok := a.(idp.Metered)
		if !ok {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), collectTimeout)
		mm.CollectMetrics(ctx, func(s idp.Sample) {
			help := s.Help
			if s.Name == idp.MetricLogins {
				help = loginsHelp
			}
			if metric, err := sampleMetric(prometheus.Labels{"method": m}, help, s); err != nil {
				ch <- prometheus.NewInvalidMetric(prometheus.NewDesc(s.Name, help, nil, nil), err)
			} else {
				ch <- metric
			}
		})
		cancel()
	}
}

// sampleMetric makes a sample a Prometheus metric, with the labels given
// (the method's) beside its own.
func sampleMetric(labels prometheus.Labels, help string, s idp.Sample) (prometheus.Metric, error) {
	if !strings.HasPrefix(s.Name, "ponte_") {
		return nil, fmt.Errorf("metrics: %q is not a ponte_ metric", s.Name)
	}
	if labels == nil {
		labels = prometheus.Labels{}
	}
	for _, l := range s.Labels {
		labels[l.Name] = l.Value
	}
	d := prometheus.NewDesc(s.Name, help, nil, labels)
	switch s.Kind {
	case idp.Counter:
		return prometheus.NewConstMetric(d, prometheus.CounterValue, s.Value)
	case idp.Gauge:
		return prometheus.NewConstMetric(d, prometheus.GaugeValue, s.Value)
	default:
		b := make(map[float64]uint64, len(s.Buckets))
		for _, x := range s.Buckets {
			b[x.UpperBound] = x.Count
		}
		return prometheus.NewConstHistogram(d, s.Count, s.Sum, b)
	}
}

// AddGate exposes an admission gate of the core (the token endpoint's) under
// the label gate=name; a method reports its own gates itself (idp.Metered).
func (r *Registry) AddGate(name string, g *admission.Gate) error {
	return r.reg.Register(gateCollector{name: name, g: g})
}

// gateCollector reports one gate; unchecked, like methodCollector, since the
// methods report the same families.
type gateCollector struct {
	name string
	g    *admission.Gate
}

func (c gateCollector) Describe(chan<- *prometheus.Desc) {}

func (c gateCollector) Collect(ch chan<- prometheus.Metric) {
	c.g.Samples(c.name, func(s idp.Sample) {
		if m, err := sampleMetric(nil, s.Help, s); err != nil {
			ch <- prometheus.NewInvalidMetric(prometheus.NewDesc(s.Name, s.Help, nil, nil), err)
		} else {
			ch <- m
		}
	})
}
