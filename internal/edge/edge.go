// Package edge is Ponte's HTTP edge, the only place gin is used: it mounts the
// provider's routes, limits every request body (413 before reading when the
// declared length is too large), logs every request (path only, with any
// codice fiscale masked, never the query, which can carry a codice fiscale or
// a code), turns a panic into a plain 500 with no stack for the client, trusts
// no proxy unless told to, sends HSTS only for an https issuer, hands a login
// method the request's client certificate chain (clientcert) and no forged
// certificate header, and serves /healthz, /readyz and the pages' files
// (internal/ui.Assets).
package edge

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/ponte-id/ponte/idp/provider"
	"github.com/ponte-id/ponte/internal/clientcert"
	"github.com/ponte-id/ponte/internal/logmask"
	"github.com/ponte-id/ponte/internal/ui"
)

// DefaultMaxBody is the request-body limit of a route that sets none: OAuth
// and login forms are a few hundred bytes.
const DefaultMaxBody = 64 << 10

// Options configure the edge.
type Options struct {
	// TrustedProxies are the CIDRs or IPs whose X-Forwarded-For is believed; none if empty.
	TrustedProxies []string
	// Ready reports whether the node can serve (storage reachable).
	Ready func(ctx context.Context) error
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
	e.Use(requestLog(log), recovery(log), securityHeaders(strings.HasPrefix(opts.Issuer, "https://")))
	// Before the rewrite below: a certificate header is believed only from
	// the TCP peer, never from an address X-Forwarded-For names.
	e.Use(func(c *gin.Context) { c.Request = certs.Apply(c.Request) })
	if len(opts.TrustedProxies) > 0 {
		// The handlers below are plain net/http: hand them the client address
		// gin derived, which honours X-Forwarded-For from trusted proxies only.
		e.Use(func(c *gin.Context) { c.Request.RemoteAddr = net.JoinHostPort(c.ClientIP(), "0") })
	}
	e.GET("/healthz", limitBody(DefaultMaxBody), func(c *gin.Context) { c.String(http.StatusOK, "ok\n") })
	e.GET("/readyz", limitBody(DefaultMaxBody), func(c *gin.Context) {
		if opts.Ready != nil {
			ctx, cancel := context.WithTimeout(c.Request.Context(), 2*time.Second)
			defer cancel()
			if err := opts.Ready(ctx); err != nil {
				log.WarnContext(ctx, "not ready", "err", err)
				c.String(http.StatusServiceUnavailable, "not ready\n")
				return
			}
		}
		c.String(http.StatusOK, "ready\n")
	})
	// The pages' own files (fonts), served by Ponte: no page loads anything
	// from another site.
	e.GET(ui.AssetsPath+"*file", limitBody(DefaultMaxBody), gin.WrapH(ui.Assets()))
	for _, r := range routes {
		limit := r.MaxBody
		if limit <= 0 {
			limit = DefaultMaxBody
		}
		h := []gin.HandlerFunc{limitBody(limit), gin.WrapH(r.Handler)}
		switch {
		case r.Prefix:
			e.Any(r.Path+"/*rest", h...)
		case r.Method == "":
			e.Any(r.Path, h...)
		default:
			e.Handle(r.Method, r.Path, h...)
		}
	}
	e.NoRoute(limitBody(DefaultMaxBody), func(c *gin.Context) { c.String(http.StatusNotFound, "404 page not found\n") })
	e.NoMethod(limitBody(DefaultMaxBody), func(c *gin.Context) { c.String(http.StatusMethodNotAllowed, "405 method not allowed\n") })
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
// it masked), status, duration, client IP.
func requestLog(log *slog.Logger) gin.HandlerFunc {
	return func(c *gin.Context) {
		start := time.Now()
		c.Next()
		log.LogAttrs(c.Request.Context(), slog.LevelInfo, "http",
			slog.String("method", c.Request.Method), slog.String("path", logmask.String(c.Request.URL.Path)),
			slog.Int("status", c.Writer.Status()), slog.Duration("duration", time.Since(start)),
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
