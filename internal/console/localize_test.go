package console

import (
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"
)

// TestItalianFieldMessages: each known message, filled with arguments, comes
// out in Italian with its arguments; the longer of two overlapping formats
// wins; an unknown message stays as it is.
func TestItalianFieldMessages(t *testing.T) {
	for _, tr := range fieldMessages {
		n := len(verb.FindAllString(tr.en, -1))
		args := make([]any, n)
		for i := range args {
			args[i] = fmt.Sprintf("ARG%d", i)
		}
		msg := fmt.Sprintf(verb.ReplaceAllString(tr.en, "%s"), args...)
		got := italian(msg)
		if got == msg || strings.Contains(got, "%") {
			t.Errorf("%q: %q", msg, got)
		}
		for _, a := range args {
			if !strings.Contains(got, a.(string)) {
				t.Errorf("%q lost %s: %q", msg, a, got)
			}
		}
	}
	for msg, want := range map[string]string{
		"at most 200 characters": "al massimo 200 caratteri",
		`redirect URI "http://x.example/cb": http is allowed only on loopback; use https`: `redirect URI "http://x.example/cb" non valido: http è ammesso solo su loopback; usa https`,
		"something new": "something new",
	} {
		if got := italian(msg); got != want {
			t.Errorf("%q: %q, want %q", msg, got, want)
		}
	}
}

// TestEveryFieldMessageTranslated: every message that idp/clients and the
// audit query of idp/admin can give a console form has its Italian here, so
// that a new one cannot slip onto Italian pages in English.
func TestEveryFieldMessageTranslated(t *testing.T) {
	known := map[string]bool{}
	for _, tr := range fieldMessages {
		known[tr.en] = true
	}
	add := regexp.MustCompile(`errs\.Add\([^,]+, "((?:[^"\\]|\\.)*)"`)
	for _, file := range []string{"../../idp/clients/clients.go", "../../idp/admin/api_audit.go"} {
		src, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		found := add.FindAllStringSubmatch(string(src), -1)
		if len(found) == 0 {
			t.Fatalf("%s: no messages found", file)
		}
		for _, m := range found {
			if format := strings.ReplaceAll(m[1], `\"`, `"`); !known[format] {
				t.Errorf("%s: %q has no Italian", file, format)
			}
		}
	}
}
