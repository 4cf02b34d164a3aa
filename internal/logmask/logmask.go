// Package logmask keeps whole codici fiscali out of Ponte's logs. String masks
// every codice-fiscale-shaped substring of a text, keeping the first three and
// the last character (RSS************U, as pin.Mask does for one code); Handler
// wraps a slog.Handler and masks the message, every string attribute, group
// and error, and whatever a LogValuer resolves to, before the record reaches
// the wrapped handler. cmd/ponte wraps the process logger with it, so that a
// codice fiscale logged anywhere (a path, an error, a SQL statement) is masked.
package logmask

import (
	"context"
	"encoding"
	"encoding/json"
	"fmt"
	"log/slog"
	"regexp"
	"strings"
	"unicode/utf8"
)

// cf matches a codice fiscale: six letters for surname and name, the year, the
// month letter, the day, the place (a letter and three digits) and the check
// letter. Digits may be replaced by the omocodia letters LMNPQRSTUV. Case is
// ignored: paths and query strings carry lower-case codes too.
var cf = regexp.MustCompile(`(?i)[A-Z]{6}[0-9LMNPQRSTUV]{2}[A-EHLMPRST][0-9LMNPQRSTUV]{2}[A-Z][0-9LMNPQRSTUV]{3}[A-Z]`)

// cfLen is the length of a codice fiscale in characters.
const cfLen = 16

// String returns s with every codice-fiscale-shaped substring masked: the
// first three and the last character remain, the twelve between become '*'.
// Masking is repeated until nothing codice-fiscale-shaped remains (characters
// left between two codes could otherwise form a third).
func String(s string) string {
	if len(s) < cfLen {
		return s
	}
	for cf.MatchString(s) {
		s = cf.ReplaceAllStringFunc(s, maskOne)
	}
	return s
}

// Contains reports whether s holds a codice-fiscale-shaped substring.
func Contains(s string) bool { return len(s) >= cfLen && cf.MatchString(s) }

// maskOne masks one match. Case folding lets a few multi-byte runes match
// (the Kelvin sign folds to k), so it counts runes, not bytes.
func maskOne(m string) string {
	var b strings.Builder
	b.Grow(len(m))
	n := utf8.RuneCountInString(m)
	i := 0
	for _, r := range m {
		if i < 3 || i == n-1 {
			b.WriteRune(r)
		} else {
			b.WriteByte('*')
		}
		i++
	}
	return b.String()
}

// Handler is a slog.Handler that masks codici fiscali before passing each
// record to the handler it wraps.
type Handler struct{ next slog.Handler }

var _ slog.Handler = (*Handler)(nil)

// New wraps next.
func New(next slog.Handler) *Handler { return &Handler{next: next} }

// Enabled implements slog.Handler.
func (h *Handler) Enabled(ctx context.Context, l slog.Level) bool { return h.next.Enabled(ctx, l) }

// Handle implements slog.Handler: the message and every attribute are masked.
func (h *Handler) Handle(ctx context.Context, r slog.Record) error {
	out := slog.NewRecord(r.Time, r.Level, String(r.Message), r.PC)
	r.Attrs(func(a slog.Attr) bool {
		out.AddAttrs(Attr(a))
		return true
	})
	return h.next.Handle(ctx, out)
}

// WithAttrs implements slog.Handler.
func (h *Handler) WithAttrs(attrs []slog.Attr) slog.Handler {
	masked := make([]slog.Attr, len(attrs))
	for i, a := range attrs {
		masked[i] = Attr(a)
	}
	return &Handler{next: h.next.WithAttrs(masked)}
}

// WithGroup implements slog.Handler.
func (h *Handler) WithGroup(name string) slog.Handler {
	return &Handler{next: h.next.WithGroup(String(name))}
}

// Attr returns a with its key and value masked. A LogValuer is resolved
// first; a group is masked member by member; an error becomes its masked
// message; any other value that prints a codice fiscale (through fmt, its
// text or its JSON form) becomes its masked printed form.
func Attr(a slog.Attr) slog.Attr {
	return slog.Attr{Key: String(a.Key), Value: value(a.Value.Resolve())}
}

func value(v slog.Value) slog.Value {
	switch v.Kind() {
	case slog.KindString:
		return slog.StringValue(String(v.String()))
	case slog.KindGroup:
		g := v.Group()
		masked := make([]slog.Attr, len(g))
		for i, a := range g {
			masked[i] = Attr(a)
		}
		return slog.GroupValue(masked...)
	case slog.KindAny:
		return anyValue(v)
	default: // numbers, bools, durations and times print no codice fiscale
		return v
	}
}

// anyValue masks a value of kind Any. An error is logged as its message, as
// slog's own handlers do. Any other value is left alone unless one of the ways
// a handler may print it (JSON, text, fmt) shows a codice fiscale; then it
// becomes that printed form, masked.
func anyValue(v slog.Value) slog.Value {
	x := v.Any()
	if err, ok := x.(error); ok {
		return slog.StringValue(String(err.Error()))
	}
	for _, s := range printed(x) {
		if Contains(s) {
			return slog.StringValue(String(s))
		}
	}
	return v
}

// printed lists the forms in which slog's text and JSON handlers may print x.
func printed(x any) []string {
	var out []string
	switch t := x.(type) {
	case []byte:
		out = append(out, string(t))
	case encoding.TextMarshaler:
		if b, err := t.MarshalText(); err == nil {
			out = append(out, string(b))
		}
	}
	if b, err := json.Marshal(x); err == nil {
		out = append(out, string(b))
	}
	return append(out, fmt.Sprintf("%+v", x))
}
