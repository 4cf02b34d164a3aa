package requestid

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"
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

func TestCanonicalHeader(t *testing.T) {
	if got := http.CanonicalHeaderKey(Header); got != CanonicalHeader {
		t.Fatalf("CanonicalHeader = %q, want %q", CanonicalHeader, got)
	}
}

// TestContext: the ID rides on a context that keeps its parent's values,
// deadline and cancellation.
func TestContext(t *testing.T) {
	type other struct{}
	parent, cancel := context.WithCancel(context.WithValue(context.Background(), other{}, "v"))
	ctx := With(parent, "id-1")
	child, cancelChild := context.WithTimeout(ctx, time.Hour)
	defer cancelChild()
	if From(child) != "id-1" || child.Value(other{}) != "v" || HeaderValues(child)[0] != "id-1" {
		t.Fatalf("From %q, parent's value %v, header %v", From(child), child.Value(other{}), HeaderValues(child))
	}
	if HeaderValues(context.Background()) != nil {
		t.Fatal("HeaderValues of a context without an ID")
	}
	cancel()
	select {
	case <-child.Done():
	case <-time.After(time.Second):
		t.Fatal("cancelling the parent did not reach a context derived through With")
	}
}
