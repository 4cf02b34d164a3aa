// Package fields collects validation problems by field, so that one check
// serves the admin API (a JSON object of field paths and messages, 400) and
// the command line (one line per field).
package fields

import (
	"fmt"
	"maps"
	"slices"
	"strings"
)

// Errors maps a field path ("redirect_uris[0]", "roles") to what is wrong with it.
type Errors map[string]string

// Add records a problem with field; the first one recorded for a field stays.
func (e Errors) Add(field, format string, a ...any) {
	if _, ok := e[field]; !ok {
		e[field] = fmt.Sprintf(format, a...)
	}
}

// Err returns nil when nothing was recorded, an *Error otherwise.
func (e Errors) Err() error {
	if len(e) == 0 {
		return nil
	}
	return &Error{Fields: maps.Clone(e)}
}

// Error is a request refused for the problems of its fields.
type Error struct {
	Fields Errors
}

// Error lists every field's problem, one a line, sorted by field.
func (e *Error) Error() string {
	var b strings.Builder
	for i, k := range slices.Sorted(maps.Keys(e.Fields)) {
		if i > 0 {
			b.WriteString("\n")
		}
		fmt.Fprintf(&b, "%s: %s", k, e.Fields[k])
	}
	return b.String()
}

// One is an *Error about a single field.
func One(field, format string, a ...any) error {
	e := Errors{}
	e.Add(field, format, a...)
	return e.Err()
}
