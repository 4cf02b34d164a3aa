package admin

import (
	"encoding/csv"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/ponte-id/ponte/idp/staff"
	"github.com/ponte-id/ponte/internal/fields"
	"github.com/ponte-id/ponte/storage"
)

// Audit search limits.
const (
	// DefaultAuditPage is how many events a search returns without limit.
	DefaultAuditPage = 100
	// MaxAuditPage is the most one search returns; export has no limit.
	MaxAuditPage = 1000
)

// eventOut is an audit event as the API shows it.
type eventOut struct {
	ID           int64     `json:"id"`
	At           time.Time `json:"at"`
	Actor        string    `json:"actor"`
	Action       string    `json:"action"`
	Channel      string    `json:"channel"`
	FiscalNumber string    `json:"fiscal_number"`
	Target       string    `json:"target"`
	Detail       string    `json:"detail"`
}

func eventView(e storage.AuditEvent) eventOut {
	return eventOut{ID: e.ID, At: e.At, Actor: e.Operator, Action: e.Event, Channel: e.Channel,
		FiscalNumber: e.FiscalNumber, Target: e.Target, Detail: e.Detail}
}

func auditQuery(r *http.Request, paged bool) (storage.AuditQuery, string, error) {
	return ParseAuditQuery(r.URL.Query(), paged)
}

// ParseAuditQuery reads the filters of a search or an export: from and to
// (RFC 3339), actor, action, subject (a codice fiscale or a target such as
// client:ID), and for a search (paged) after (an event ID) and limit, for an
// export format (csv or json, the default). Any other parameter is refused,
// so that a misspelt filter never widens an export; empty values are none.
func ParseAuditQuery(v url.Values, paged bool) (storage.AuditQuery, string, error) {
	errs := fields.Errors{}
	q := storage.AuditQuery{}
	allowed := map[string]bool{"from": true, "to": true, "actor": true, "action": true, "subject": true}
	if paged {
		allowed["after"], allowed["limit"] = true, true
		q.Limit = DefaultAuditPage
	} else {
		allowed["format"] = true
	}
	for k, vals := range v {
		if !allowed[k] {
			errs.Add(k, "unknown parameter")
		} else if len(vals) > 1 {
			errs.Add(k, "given more than once")
		}
	}
	when := func(name string) time.Time {
		s := v.Get(name)
		if s == "" {
			return time.Time{}
		}
		t, err := time.Parse(time.RFC3339, s)
		if err != nil {
			errs.Add(name, "not an RFC 3339 time such as 2026-01-31T23:00:00Z")
		}
		return t
	}
	q.From, q.To = when("from"), when("to")
	if !q.From.IsZero() && !q.To.IsZero() && !q.From.Before(q.To) {
		errs.Add("to", "must be after from")
	}
	q.Actor, q.Action, q.Subject = v.Get("actor"), v.Get("action"), v.Get("subject")
	if s := v.Get("after"); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n < 1 {
			errs.Add("after", "must be an event ID (a positive integer)")
		}
		q.AfterID = n
	}
	if s := v.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > MaxAuditPage {
			errs.Add("limit", "must be between 1 and %d", MaxAuditPage)
		}
		q.Limit = n
	}
	format := v.Get("format")
	if !paged {
		switch format {
		case "":
			format = "json"
		case "json", "csv":
		default:
			errs.Add("format", "must be csv or json")
		}
	}
	return q, format, errs.Err()
}

// searchAudit answers a page of events, oldest first, and where the next starts.
func (a *api) searchAudit(w http.ResponseWriter, r *http.Request, _ staff.Principal) {
	q, _, err := auditQuery(r, true)
	if err != nil {
		a.failed(w, r, err)
		return
	}
	out := []eventOut{}
	err = a.svc.SearchAudit(r.Context(), q, func(e storage.AuditEvent) error {
		out = append(out, eventView(e))
		return nil
	})
	if err != nil {
		a.failed(w, r, err)
		return
	}
	body := map[string]any{"events": out}
	if len(out) == q.Limit {
		body["next_after"] = out[len(out)-1].ID
	}
	writeJSON(w, http.StatusOK, body)
}

// exportAudit streams every event the filters select, as CSV or as a JSON
// array, row by row from the database: nothing is built in memory. The export
// itself is written to the audit trail first. A failure once the answer has
// begun cuts the connection, so that a partial export never looks complete.
func (a *api) exportAudit(w http.ResponseWriter, r *http.Request, p staff.Principal) {
	q, format, err := auditQuery(r, false)
	if err != nil {
		a.failed(w, r, err)
		return
	}
	if err := a.svc.RecordExport(r.Context(), p.Actor, format, q); err != nil {
		a.failed(w, r, err)
		return
	}
	ExportAudit(w, r, a.svc, a.log, format, q)
}

// ExportAudit streams the events q selects to w as CSV or as a JSON array,
// row by row from the database: nothing is built in memory. A failure once
// the answer has begun cuts the connection (panic(http.ErrAbortHandler)), so
// that a partial export never looks complete. The caller has checked the
// caller's role and audited the export (Service.RecordExport).
func ExportAudit(w http.ResponseWriter, r *http.Request, svc *Service, log *slog.Logger, format string, q storage.AuditQuery) {
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Disposition", `attachment; filename="ponte-audit.`+format+`"`)
	var (
		write  func(storage.AuditEvent) error
		finish func() error
	)
	if format == "csv" {
		h.Set("Content-Type", "text/csv; charset=utf-8")
		cw := csv.NewWriter(w)
		_ = cw.Write([]string{"id", "at", "actor", "action", "channel", "fiscal_number", "target", "detail"})
		write = func(e storage.AuditEvent) error {
			return cw.Write([]string{strconv.FormatInt(e.ID, 10), e.At.UTC().Format(time.RFC3339Nano), csvSafe(e.Operator), csvSafe(e.Event),
				csvSafe(e.Channel), csvSafe(e.FiscalNumber), csvSafe(e.Target), csvSafe(e.Detail)})
		}
		finish = func() error { cw.Flush(); return cw.Error() }
	} else {
		h.Set("Content-Type", "application/json")
		_, _ = w.Write([]byte("["))
		enc := json.NewEncoder(w)
		first := true
		write = func(e storage.AuditEvent) error {
			if !first {
				if _, err := w.Write([]byte(",")); err != nil {
					return err
				}
			}
			first = false
			return enc.Encode(eventView(e))
		}
		finish = func() error { _, err := w.Write([]byte("]\n")); return err }
	}
	err := svc.SearchAudit(r.Context(), q, write)
	if err == nil {
		err = finish()
	}
	if err != nil {
		log.ErrorContext(r.Context(), "audit export failed mid-stream", "err", err)
		panic(http.ErrAbortHandler)
	}
}

// csvSafe keeps a spreadsheet from reading a field as a formula (CWE-1236):
// a value starting with = + - @ or a control character gets a leading quote.
func csvSafe(s string) string {
	if s != "" && (s[0] == '=' || s[0] == '+' || s[0] == '-' || s[0] == '@' || s[0] == '\t' || s[0] == '\r') {
		return "'" + s
	}
	return s
}
