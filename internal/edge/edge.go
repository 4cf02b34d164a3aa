// Package edge is Ponte's HTTP edge, the only place gin is used: it mounts the
// provider's routes, limits every request body (413 before reading when the
// declared length is too large), logs every request (path only, with any
// codice fiscale masked, never the query, which can carry a codice fiscale or
// a code), turns a panic into a plain 500 with no stack for the client, trusts
// no proxy unless told to, sends HSTS only for an https issuer, hands a login
// method the request's client certificate chain (clientcert) and no forged
// certificate header, gives every request an ID (X-Request-ID, in every log
// line made with its context), counts and times every request by route
// pattern (internal/metrics), traces it when a tracer is given
// (OpenTelemetry), and serves /healthz, /readyz and the pages' files
// (internal/ui.Assets). Admin serves the operators' side: /metrics and the
// detailed /readyz, on a listener of their own.
package edge

import (
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/ponte-id/ponte/idp/provider"
	"github.com/ponte-id/ponte/internal/admission"
	"github.com/ponte-id/ponte/internal/clientcert"
	"github.com/ponte-id/ponte/internal/logmask"
	"github.com/ponte-id/ponte/internal/metrics"
	"github.com/ponte-id/ponte/internal/requestid"
	"github.com/ponte-id/ponte/internal/ui"
)

// DefaultMaxBody is the request-body limit of a route that sets none: OAuth
// and login forms are a few hundred bytes.
const DefaultMaxBody = 64 << 10

// Options configure the edge.
type Options struct {
	// TrustedProxies are the CIDRs or IPs whose X-Forwarded-For is believed; none if empty.
	TrustedProxies []string
	// Readiness are the checks of /readyz: a failing one makes the node
	// unready; the methods' health is shown and never fails it.
	Readiness Readiness
	// Metrics, when set, counts and times every request by route pattern.
	Metrics *metrics.Registry
	// Tracer, when set, makes a span of every request (otelhttp), named by
	// its route pattern; nil traces nothing.
	Tracer trace.TracerProvider
	// Logger receives the request log; nil discards it.
	Logger *slog.Logger
	// Issuer is the provider's public URL. Strict-Transport-Security is sent
	// only when it is https: never on a plain-http deployment (RFC 6797 §7.2).
	Issuer string
	// ClientCerts finds each request's client certificate chain for the
	// login methods (clientcert.From): from the TLS handshake, or from the
	// header of a proxy it trusts for that, judged by the TCP peer before
	// any X-Forwarded-For is believed. Nil reads the TLS handshake only.
	// Either way every certificate header is removed from every request.
	ClientCerts *clientcert.Source
	// Gate, when set, bounds every request but /healthz, /readyz and the
	// pages' files: beyond it, 503 with Retry-After at once (overload.go).
	// A request its route says continues a login (provider.Route.Continues)
	// is admitted as admission.Continuing, any other as admission.Starting.
	Gate *admission.Gate
}

// New returns the HTTP handler serving routes.
func New(routes []provider.Route, opts Options) (http.Handler, error) {
	gin.SetMode(gin.ReleaseMode)
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	certs := opts.ClientCerts
	if certs == nil {
		var err error
		if certs, err = clientcert.New(clientcert.Options{}, log); err != nil {
			return nil, fmt.Errorf("edge: client certificates: %w", err)
		}
	}
	e := gin.New()
	e.HandleMethodNotAllowed = true
	if err := e.SetTrustedProxies(opts.TrustedProxies); err != nil {
		return nil, fmt.Errorf("edge: trusted proxies: %w", err)
	}
	ids, err := newRequestIDs(opts.TrustedProxies)
	if err != nil {
		return nil, err
	}
	e.Use(ids.middleware, requestLog(log, opts.Metrics, opts.Tracer != nil), recovery(log), securityHeaders(strings.HasPrefix(opts.Issuer, "https://")))
	// Before the rewrite below: a certificate header is believed only from
	// the TCP peer, never from an address X-Forwarded-For names.
	e.Use(func(c *gin.Context) { c.Request = certs.Apply(c.Request) })
	if len(opts.TrustedProxies) > 0 {
		// The handlers below are plain net/http: hand them the client address
		// gin derived, which honours X-Forwarded-For from trusted proxies only.
		e.Use(func(c *gin.Context) { c.Request.RemoteAddr = net.JoinHostPort(c.ClientIP(), "0") })
	}
	e.GET("/healthz", limitBody(DefaultMaxBody), func(c *gin.Context) { c.String(http.StatusOK, "ok\n") })
	e.GET("/readyz", limitBody(DefaultMaxBody), gin.WrapH(opts.Readiness.handler(log, false)))
	// The pages' own files (fonts), served by Ponte: no page loads anything
	// from another site.
	e.GET(ui.AssetsPath+"*file", limitBody(DefaultMaxBody), gin.WrapH(ui.Assets()))
	// The routes above answer even when the node is full: a balancer's
	// probe must tell busy from dead. The others go through the node's gate,
	// the requests of logins under way before those starting new ones.
	gate := func(continues func(*http.Request) bool) []gin.HandlerFunc {
		if opts.Gate == nil {
			return nil
		}
		return []gin.HandlerFunc{admit(opts.Gate, continues)}
	}
	for _, r := range routes {
		limit := r.MaxBody
		if limit <= 0 {
			limit = DefaultMaxBody
		}
		h := append(gate(r.Continues), limitBody(limit), gin.WrapH(r.Handler))
		switch {
		case r.Prefix:
			e.Any(r.Path+"/*rest", h...)
		case r.Method == "":
			e.Any(r.Path, h...)
		default:
			e.Handle(r.Method, r.Path, h...)
		}
	}
	e.NoRoute(append(gate(nil), limitBody(DefaultMaxBody), func(c *gin.Context) { c.String(http.StatusNotFound, "404 page not found\n") })...)
	e.NoMethod(append(gate(nil), limitBody(DefaultMaxBody), func(c *gin.Context) { c.String(http.StatusMethodNotAllowed, "405 method not allowed\n") })...)
	if opts.Tracer != nil {
		return otelhttp.NewHandler(e, "ponte", otelhttp.WithTracerProvider(opts.Tracer),
			otelhttp.WithPropagators(propagation.TraceContext{})), nil
	}
	return e, nil
}

// limitBody refuses a request whose declared body is larger than limit with
// 413 before reading it, and caps what a handler can read of a body sent
// without a length (chunked) at limit: a handler reading more gets an error,
// and nothing a client sends beyond limit is held in memory or spooled to disk.
func limitBody(limit int64) gin.HandlerFunc {
	return func(c *gin.Context) {
		r := c.Request
		if r.ContentLength > limit {
			c.Header("Connection", "close")
			c.String(http.StatusRequestEntityTooLarge, "413 request body too large\n")
			c.Abort()
			return
		}
		if r.Body != nil && r.Body != http.NoBody {
			r.Body = http.MaxBytesReader(c.Writer, r.Body, limit)
		}
		c.Next()
	}
}

// requestLog writes one line per request: method, path (any codice fiscale in
// it masked), status, duration, client IP (the request ID comes with the
// context). With m it also counts and times the request by route pattern;
// with traced it names the request's span after the route pattern.
func requestLog(log *slog.Logger, m *metrics.Registry, traced bool) gin.HandlerFunc {
	return func(c *gin.Context) {
		start := time.Now()
		if traced {
			span := trace.SpanFromContext(c.Request.Context())
			span.SetAttributes(attribute.String("ponte.request_id", requestid.From(c.Request.Context())))
			if route := c.FullPath(); route != "" {
				span.SetName(c.Request.Method + " " + route)
				span.SetAttributes(attribute.String("http.route", route))
			}
		}
		if m != nil {
			m.RequestStarted()
			defer m.RequestDone()
		}
		c.Next()
		d := time.Since(start)
		if m != nil {
			m.ObserveRequest(c.FullPath(), c.Request.Method, c.Writer.Status(), d)
		}
		log.LogAttrs(c.Request.Context(), slog.LevelInfo, "http",
			slog.String("method", c.Request.Method), slog.String("path", logmask.String(c.Request.URL.Path)),
			slog.Int("status", c.Writer.Status()), slog.Duration("duration", d),
			slog.String("ip", c.ClientIP()))
	}
}

// recovery answers a panic with a plain 500 and logs it (without the request's data).
func recovery(log *slog.Logger) gin.HandlerFunc {
	return func(c *gin.Context) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				log.ErrorContext(c.Request.Context(), "panic serving request",
					"path", logmask.String(c.Request.URL.Path), "panic", logmask.String(fmt.Sprint(v)))
				if !c.Writer.Written() {
					c.Header("Content-Type", "text/plain; charset=utf-8")
					c.String(http.StatusInternalServerError, "internal error\n")
				}
				c.Abort()
			}
		}()
		c.Next()
	}
}

// securityHeaders applies to every response; HSTS only when hsts is set (an
// https issuer). RFC 6797 §7.2: an HSTS host must not send the header over
// non-secure transport.
func securityHeaders(hsts bool) gin.HandlerFunc {
	return func(c *gin.Context) {
		h := c.Writer.Header()
		h.Set("X-Content-Type-Options", "nosniff")
		if hsts {
			h.Set("Strict-Transport-Security", "max-age=31536000")
		}
		c.Next()
	}
}
