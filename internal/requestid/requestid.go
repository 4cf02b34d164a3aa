// Package requestid gives every request an ID: taken from a trusted proxy's
// X-Request-ID header when it is well-formed, generated otherwise, carried in
// the request's context, sent back in the response, and added to every log
// record made with that context (Handler).
package requestid

import (
	"context"
	"encoding/hex"
	"log/slog"
	"math/rand/v2"
)

// Header is the request and response header that carries the ID.
const Header = "X-Request-ID"

// CanonicalHeader is Header as net/http keys it (textproto's canonical form),
// for setting it without canonicalizing it on every request.
const CanonicalHeader = "X-Request-Id"

// MaxLen is the longest incoming ID accepted.
const MaxLen = 64

// idContext carries an ID, and the response header's value for it, in one
// allocation (the edge makes one for every request).
type idContext struct {
	context.Context
	id     string
	header [1]string
}

// key is what Value answers to with the idContext itself.
type key struct{}

func (c *idContext) Value(k any) any {
	if k == (key{}) {
		return c
	}
	return c.Context.Value(k)
}

// With returns ctx carrying id.
func With(ctx context.Context, id string) context.Context {
	c := &idContext{Context: ctx, id: id}
	c.header[0] = id
	return c
}

// From returns the ID ctx carries, or "".
func From(ctx context.Context) string {
	if c, ok := ctx.Value(key{}).(*idContext); ok {
		return c.id
	}
	return ""
}

// HeaderValues returns the ID ctx carries as a header's values ([]string{id}),
// without allocating; nil if it carries none. The slice must not be changed.
func HeaderValues(ctx context.Context) []string {
	if c, ok := ctx.Value(key{}).(*idContext); ok {
		return c.header[:]
	}
	return nil
}

// New returns a fresh ID: 128 random bits in hex. The IDs need to be unique,
// not secret; math/rand/v2's generator is seeded from the system's and
// costs no system call.
func New() string {
	var b [16]byte
	u, v := rand.Uint64(), rand.Uint64()
	for i := range 8 {
		b[i], b[8+i] = byte(u>>(8*i)), byte(v>>(8*i))
	}
	var s [32]byte
	hex.Encode(s[:], b[:])
	return string(s[:])
}

// WellFormed reports whether an incoming ID may be kept: 1 to MaxLen
// characters among letters, digits and "-_.:" (a UUID, a W3C trace ID, a
// proxy's own format), nothing that could forge a log line or a header.
func WellFormed(id string) bool {
	if id == "" || len(id) > MaxLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '-', c == '_', c == '.', c == ':':
		default:
			return false
		}
	}
	return true
}

// Handler adds a request_id attribute to every record logged with a
// context that carries an ID.
type Handler struct{ next slog.Handler }

// NewHandler wraps next.
func NewHandler(next slog.Handler) *Handler { return &Handler{next: next} }

// Enabled implements slog.Handler.
func (h *Handler) Enabled(ctx context.Context, l slog.Level) bool { return h.next.Enabled(ctx, l) }

// Handle implements slog.Handler.
func (h *Handler) Handle(ctx context.Context, r slog.Record) error {
	if id := From(ctx); id != "" {
		r.AddAttrs(slog.String("request_id", id))
	}
	return h.next.Handle(ctx, r)
}

// WithAttrs implements slog.Handler.
func (h *Handler) WithAttrs(as []slog.Attr) slog.Handler { return &Handler{next: h.next.WithAttrs(as)} }

// WithGroup implements slog.Handler.
func (h *Handler) WithGroup(name string) slog.Handler { return &Handler{next: h.next.WithGroup(name)} }
