package admin_test

import (
	"net/url"
	"testing"

	"github.com/ponte-id/ponte/idp/admin"
)

// FuzzParseAuditQuery: any query string gives filters or a field error,
// never a panic; what is accepted has a bounded page and a range that is
// not empty, and an export's format is csv or json.
func FuzzParseAuditQuery(f *testing.F) {
	for _, s := range []string{"", "from=2026-01-01T00:00:00Z&to=2026-01-02T00:00:00Z", "limit=1000&after=5", "actor=cli&action=x&subject=client:a",
		"format=csv", "limit=-1", "from=2026-01-02T00:00:00%2B01:00&to=2026-01-01T00:00:00Z", "x=1", "limit=1&limit=2"} {
		f.Add(s, false)
		f.Add(s, true)
	}
	f.Fuzz(func(t *testing.T, raw string, paged bool) {
		v, err := url.ParseQuery(raw)
		if err != nil {
			return
		}
		q, format, err := admin.ParseAuditQuery(v, paged)
		if err != nil {
			return
		}
		if paged && (q.Limit < 1 || q.Limit > admin.MaxAuditPage || q.AfterID < 0) {
			t.Fatalf("%q: limit %d, after %d", raw, q.Limit, q.AfterID)
		}
		if !paged && q.Limit != 0 {
			t.Fatalf("%q: an export with a limit", raw)
		}
		if !paged && format != "csv" && format != "json" {
			t.Fatalf("%q: format %q", raw, format)
		}
		if !q.From.IsZero() && !q.To.IsZero() && !q.From.Before(q.To) {
			t.Fatalf("%q: empty range accepted", raw)
		}
	})
}
