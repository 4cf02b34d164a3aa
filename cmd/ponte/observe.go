package main

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/ponte-id/ponte/idp"
	"github.com/ponte-id/ponte/internal/admission"
	"github.com/ponte-id/ponte/internal/edge"
	"github.com/ponte-id/ponte/internal/metrics"
	"github.com/ponte-id/ponte/internal/tracing"
)

// tokenGate is the token endpoint's admission gate, from the configuration
// (zero values pick 8 per core in flight, 64 per core waiting, 2 s).
func (a *app) tokenGate() (*admission.Gate, error) {
	c := a.cfg.Admission
	cores := runtime.GOMAXPROCS(0)
	o := admission.Options{Concurrency: c.TokenConcurrency, Queue: c.TokenQueue, MaxWait: c.TokenMaxWait.D()}
	if o.Concurrency == 0 {
		o.Concurrency = 8 * cores
	}
	if o.Queue == 0 {
		o.Queue = 64 * cores
	}
	if o.MaxWait == 0 {
		o.MaxWait = 2 * time.Second
	}
	return admission.New(o)
}

// nodeGate bounds every request of the node, from the configuration (zero
// values pick 64 per core in flight, 256 per core waiting, 1 s; requests
// starting a login only below an eighth of the slots, without waiting).
func (a *app) nodeGate() (*admission.Gate, error) {
	c := a.cfg.Admission
	cores := runtime.GOMAXPROCS(0)
	o := admission.Options{Concurrency: c.NodeConcurrency, Queue: c.NodeQueue, MaxWait: c.NodeMaxWait.D(),
		StartConcurrency: c.NodeStartConcurrency, StartMaxWait: c.NodeStartMaxWait.D()}
	if o.Concurrency == 0 {
		o.Concurrency = 64 * cores
	}
	if o.Queue == 0 {
		o.Queue = 256 * cores
	}
	if o.MaxWait == 0 {
		o.MaxWait = time.Second
	}
	if o.StartConcurrency == 0 {
		o.StartConcurrency = max(1, o.Concurrency/8)
	}
	if o.StartMaxWait > 0 {
		o.StartQueue = o.Queue
	}
	return admission.New(o)
}

// newMetrics is the node's registry: the methods, the database pools, the
// token gate and the node's.
func (a *app) newMetrics(methods []idp.Authenticator, tokens, node *admission.Gate) (*metrics.Registry, error) {
	m := metrics.New()
	m.AddMethods(methods)
	var errs []error
	for name, pool := range a.store.Pools() {
		errs = append(errs, m.AddDB(name, pool))
	}
	errs = append(errs, m.AddGate("token", tokens), m.AddGate("node", node))
	return m, errors.Join(errs...)
}

// readiness is what /readyz checks: the database answers, the migrations
// this build knows are applied, a signing key signs for the configured
// algorithm; and the methods' health, shown without failing the node.
func (a *app) readiness(methods []idp.Authenticator) edge.Readiness {
	return edge.Readiness{
		Checks: []edge.Check{
			{Name: "database", Run: a.store.Ping},
			{Name: "migrations", Run: a.store.SchemaCurrent},
			{Name: "signing_keys", Run: func(context.Context) error {
				if !slices.Contains(a.keys.Algorithms(), a.cfg.Keys.Algorithm) {
					return fmt.Errorf("no signing key for %s is loaded", a.cfg.Keys.Algorithm)
				}
				return nil
			}},
		},
		Methods: func(ctx context.Context) map[idp.Method]idp.Health {
			out := map[idp.Method]idp.Health{}
			for _, m := range methods {
				if hr, ok := m.(idp.HealthReporter); ok {
					out[m.Method()] = hr.Health(ctx)
				} else {
					out[m.Method()] = idp.Health{}
				}
			}
			return out
		},
	}
}

// tracer returns the tracer provider when tracing is configured (nil
// otherwise), and the function that flushes its spans at shutdown.
func (a *app) tracer(ctx context.Context) (trace.TracerProvider, func(context.Context) error, error) {
	if a.cfg.Tracing.OTLPEndpoint == "" {
		return nil, func(context.Context) error { return nil }, nil
	}
	tp, err := tracing.New(ctx, tracing.Options{Endpoint: a.cfg.Tracing.OTLPEndpoint, SampleRatio: a.cfg.Tracing.SampleRatio})
	if err != nil {
		return nil, nil, err
	}
	return tp, tp.Shutdown, nil
}
