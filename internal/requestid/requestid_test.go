package requestid

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
)

func TestWellFormed(t *testing.T) {
	for _, tc := range []struct {
		id string
		ok bool
	}{
		{"0af7651916cd43dd8448eb211c80319c", true},
		{"f47ac10b-58cc-4372-a567-0e02b2c3d479", true},
		{"lb-1:req.42_x", true},
		{strings.Repeat("a", MaxLen), true},
		{strings.Repeat("a", MaxLen+1), false},
		{"", false},
		{"two words", false},
		{"line\nbreak", false},
		{`quote"`, false},
		{"ümlaut", false},
		{"RSSMRA80A01H501U/../x", false},
		{"<script>", false},
	} {
		if got := WellFormed(tc.id); got != tc.ok {
			t.Errorf("WellFormed(%q) = %v, want %v", tc.id, got, tc.ok)
		}
	}
}

func TestNew(t *testing.T) {
	seen := map[string]bool{}
	for range 1000 {
		id := New()
		if len(id) != 32 || !WellFormed(id) {
			t.Fatalf("New() = %q: want 32 hex digits", id)
		}
		if seen[id] {
			t.Fatalf("New() repeated %q", id)
		}
		seen[id] = true
	}
}

// TestHandler: a record logged with a request's context carries its ID,
// in groups too; one without carries none.
func TestHandler(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(NewHandler(slog.NewJSONHandler(&buf, nil)))
	ctx := With(context.Background(), "abc-123")
	log.InfoContext(ctx, "with", "k", "v")
	log.With("a", 1).WithGroup("g").InfoContext(ctx, "grouped", "k", "v")
	log.InfoContext(context.Background(), "without")
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 3 {
		t.Fatalf("%d lines: %s", len(lines), buf.String())
	}
	for i, want := range []bool{true, true, false} {
		if got := strings.Contains(lines[i], `"request_id":"abc-123"`); got != want {
			t.Errorf("line %d %s: request_id present = %v, want %v", i, lines[i], got, want)
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(lines[i]), &m); err != nil {
			t.Errorf("line %d is not JSON: %v", i, err)
		}
	}
	if From(ctx) != "abc-123" || From(context.Background()) != "" {
		t.Error("From does not return what With put")
	}
}
