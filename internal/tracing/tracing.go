// Package tracing sets up OpenTelemetry tracing: a tracer provider that
// sends spans by OTLP over HTTP, in batches, sampling new traces at a
// configured ratio and following a sampled parent. The edge wraps every
// request in a span (otelhttp) when it is given one.
package tracing

import (
	"context"
	"fmt"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// Options configure the tracer provider.
type Options struct {
	// Endpoint is the OTLP/HTTP traces URL, like http://127.0.0.1:4318/v1/traces.
	Endpoint string
	// SampleRatio is the share of new traces recorded, 0 to 1.
	SampleRatio float64
	// ServiceName names the process in the traces ("ponte").
	ServiceName string
}

// New returns a tracer provider exporting to o.Endpoint; Shutdown it to
// flush the spans still buffered. It does no network I/O until spans are
// exported.
func New(ctx context.Context, o Options) (*sdktrace.TracerProvider, error) {
	exp, err := otlptracehttp.New(ctx, otlptracehttp.WithEndpointURL(o.Endpoint))
	if err != nil {
		return nil, fmt.Errorf("tracing: OTLP exporter: %w", err)
	}
	name := o.ServiceName
	if name == "" {
		name = "ponte"
	}
	return sdktrace.NewTracerProvider(
		sdktrace.WithBatcher(exp),
		sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(o.SampleRatio))),
		sdktrace.WithResource(resource.NewSchemaless(attribute.String("service.name", name))),
	), nil
}
