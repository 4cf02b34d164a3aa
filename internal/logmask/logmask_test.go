package logmask_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/ponte-id/ponte/internal/logmask"
)

const (
	cf       = "RSSMRA80A01H501U"
	cfMasked = "RSS************U"
	// omocodia: digits replaced by letters (RSSMRA80A01H501U with 1 → M, 0 → L).
	omocode       = "RSSMRA80A0MH5LMU"
	omocodeMasked = "RSS************U"
)

func TestString(t *testing.T) {
	for _, tc := range []struct{ name, in, want string }{
		{"alone", cf, cfMasked},
		{"in a path", "/operator/pin/audit/" + cf, "/operator/pin/audit/" + cfMasked},
		{"lower case", "/x?cf=" + strings.ToLower(cf), "/x?cf=rss************u"},
		{"omocodia", omocode, omocodeMasked},
		{"glued to other text", "cf:" + cf + "X", "cf:" + cfMasked + "X"},
		{"two", cf + " e " + "VRDGPP75C15F205S", cfMasked + " e VRD************S"},
		{"back to back", cf + cf, cfMasked + cfMasked},
		{"not a code: a digit where the month letter goes", "RSSMRA80101H501U", "RSSMRA80101H501U"},
		{"not a code: too short", "RSSMRA80A01H501", "RSSMRA80A01H501"},
		{"empty", "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := logmask.String(tc.in); got != tc.want {
				t.Errorf("String(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

// citizen is a LogValuer that logs itself as a group holding the codice fiscale.
type citizen struct{ cf string }

func (c citizen) LogValue() slog.Value {
	return slog.GroupValue(slog.String("fiscal_number", c.cf), slog.Int("age", 44))
}

// record is a plain struct logged as Any.
type record struct {
	FiscalNumber string
	Count        int
}

// stringer prints itself with fmt only.
type stringer struct{ cf string }

func (s stringer) String() string { return "citizen " + s.cf }

func TestHandler(t *testing.T) {
	for _, tc := range []struct {
		name string
		log  func(l *slog.Logger)
		want []string // masked forms that must appear
	}{
		{"message", func(l *slog.Logger) { l.Info("login of " + cf) }, []string{"login of " + cfMasked}},
		{"string attribute", func(l *slog.Logger) { l.Info("x", "cf", cf) }, []string{`"cf":"` + cfMasked + `"`}},
		{"key", func(l *slog.Logger) { l.Info("x", cf, 1) }, []string{`"` + cfMasked + `":1`}},
		{"group", func(l *slog.Logger) {
			l.Info("x", slog.Group("req", slog.String("path", "/audit/"+cf), slog.Group("inner", "cf", cf)))
		}, []string{`"path":"/audit/` + cfMasked + `"`, `"inner":{"cf":"` + cfMasked + `"}`}},
		{"error", func(l *slog.Logger) {
			l.Error("x", "err", fmt.Errorf("lookup: %w", errors.New("no account for "+cf)))
		}, []string{`"err":"lookup: no account for ` + cfMasked + `"`}},
		{"LogValuer", func(l *slog.Logger) { l.Info("x", "citizen", citizen{cf}) }, []string{`"citizen":{"fiscal_number":"` + cfMasked + `","age":44}`}},
		{"struct", func(l *slog.Logger) { l.Info("x", "rec", record{cf, 3}) }, []string{cfMasked}},
		{"Stringer", func(l *slog.Logger) { l.Info("x", "who", stringer{cf}) }, []string{cfMasked}},
		{"bytes", func(l *slog.Logger) { l.Info("x", "raw", []byte("cf="+cf)) }, []string{cfMasked}},
		{"slice", func(l *slog.Logger) { l.Info("x", "list", []string{"a", cf}) }, []string{cfMasked}},
		{"WithAttrs", func(l *slog.Logger) { l.With("cf", cf).Info("x") }, []string{`"cf":"` + cfMasked + `"`}},
		{"WithGroup", func(l *slog.Logger) { l.WithGroup("g").Info("x", "cf", cf) }, []string{`"g":{"cf":"` + cfMasked + `"}`}},
		{"group name", func(l *slog.Logger) { l.WithGroup(cf).Info("x", "a", 1) }, []string{`"` + cfMasked + `":{"a":1}`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			l := slog.New(logmask.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})))
			tc.log(l)
			out := buf.String()
			if strings.Contains(out, cf) || strings.Contains(strings.ToLower(out), strings.ToLower(cf)) {
				t.Fatalf("whole codice fiscale logged: %s", out)
			}
			for _, w := range tc.want {
				if !strings.Contains(out, w) {
					t.Errorf("log %s lacks %s", out, w)
				}
			}
		})
	}
}

// TestHandlerKeepsValues checks that what holds no codice fiscale is logged
// unchanged, with its kind.
func TestHandlerKeepsValues(t *testing.T) {
	var buf bytes.Buffer
	l := slog.New(logmask.New(slog.NewJSONHandler(&buf, nil)))
	l.Info("plain", "n", 3, "ok", true, "rec", record{"none", 2}, "err", errors.New("boom"))
	want := `"msg":"plain","n":3,"ok":true,"rec":{"FiscalNumber":"none","Count":2},"err":"boom"}`
	if !strings.HasSuffix(strings.TrimSpace(buf.String()), want) {
		t.Errorf("log %s, want it to end with %s", buf.String(), want)
	}
}

func TestHandlerEnabled(t *testing.T) {
	h := logmask.New(slog.NewJSONHandler(&bytes.Buffer{}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	if h.Enabled(context.Background(), slog.LevelInfo) || !h.Enabled(context.Background(), slog.LevelError) {
		t.Error("Enabled does not follow the wrapped handler")
	}
}

// FuzzString checks that masking leaves nothing codice-fiscale-shaped, only
// ever turns characters into '*', keeps the length in characters and is
// idempotent.
func FuzzString(f *testing.F) {
	for _, s := range []string{"", cf, "x" + cf + cf + "y", strings.ToLower(omocode), "/audit/" + cf + "?cf=" + cf,
		"RSSMRA80A01H501URSSMRA80A01H501", "\u212aSSMRA80A01H501U", "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		out := logmask.String(in)
		if logmask.Contains(out) {
			t.Fatalf("String(%q) = %q still holds a codice fiscale", in, out)
		}
		if logmask.String(out) != out {
			t.Fatalf("String is not idempotent on %q", in)
		}
		if !utf8.ValidString(in) {
			return
		}
		a, b := []rune(in), []rune(out)
		if len(a) != len(b) {
			t.Fatalf("String(%q) = %q: %d runes, want %d", in, out, len(b), len(a))
		}
		for i := range a {
			if a[i] != b[i] && b[i] != '*' {
				t.Fatalf("String(%q) = %q: rune %d changed to %q", in, out, i, b[i])
			}
		}
	})
}
