// Package console is the back office's pages (/console) for INPS staff,
// server-rendered, in Italian and English. Staff log in through Ponte itself
// (internal/selfclient) at the dispositivo level; what they may do follows
// the roles their codice fiscale holds (idp/staff), looked up at every
// request. Administrators manage the relying parties (list, read, register
// with the secret shown once, rotate the secret, delete); administrators and
// auditors read and export the audit trail. Every change goes through
// idp/admin, as the admin API's do, and is audited under the staff member's
// codice fiscale on the console channel. A login method's own pages
// (idp.ConsolePages, such as the PIN procedures for operators) are mounted
// under Path/<method>/ behind the same login, roles and CSRF checks. Every form is protected by the
// cross-origin check and a token bound to the page session; every answer is
// no-store.
package console

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"html/template"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/ponte-id/ponte/idp"
	"github.com/ponte-id/ponte/idp/admin"
	"github.com/ponte-id/ponte/idp/clients"
	"github.com/ponte-id/ponte/idp/staff"
	"github.com/ponte-id/ponte/internal/fields"
	"github.com/ponte-id/ponte/internal/selfclient"
	"github.com/ponte-id/ponte/internal/ui"
	"github.com/ponte-id/ponte/storage"
)

// Path is where the console is mounted.
const Path = "/console"

// ClientID is the console's self client.
const ClientID = "ponte-console"

// SelfConfig is what the console asks of its self client: the codice fiscale
// (to find the roles) and the dispositivo level.
func SelfConfig() (scopes []string, level idp.Level) {
	return []string{"profile", "fiscal_number"}, idp.LevelDispositivo
}

// Config shapes the console.
type Config struct {
	// Self logs staff in (Path must be Path; level dispositivo, scope fiscal_number).
	Self *selfclient.Client
	// Admin performs and audits the changes.
	Admin *admin.Service
	// CSRFKey keys the forms' tokens (32 bytes, derived from the master key).
	CSRFKey []byte
	// Sections are the login methods' pages (idp.ConsolePages), by method
	// name: each is mounted under Path/<name>/.
	Sections map[string]idp.ConsoleSection
	Logger   *slog.Logger
}

// Console serves the pages.
type Console struct {
	cfg  Config
	log  *slog.Logger
	csrf *http.CrossOriginProtection
}

// New checks cfg and returns the console.
func New(cfg Config) (*Console, error) {
	if cfg.Self == nil || cfg.Admin == nil || len(cfg.CSRFKey) < 32 {
		return nil, errors.New("console: self client, admin service and a 32-byte CSRF key are required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	csrf := http.NewCrossOriginProtection()
	csrf.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cfg.Logger.InfoContext(r.Context(), "console: cross-origin form post refused", "path", r.URL.Path)
		http.Error(w, "Richiesta non valida / Invalid request", http.StatusForbidden)
	}))
	return &Console{cfg: cfg, log: cfg.Logger, csrf: csrf}, nil
}

// Handler serves every page below Path.
func (c *Console) Handler() http.Handler {
	mux := http.NewServeMux()
	self := c.cfg.Self
	page := func(h func(http.ResponseWriter, *http.Request, staffMember), roles ...string) http.Handler {
		return self.Require(c.staffOnly(h, roles))
	}
	form := func(h func(http.ResponseWriter, *http.Request, staffMember), roles ...string) http.Handler {
		return c.csrf.Handler(self.Require(c.staffOnly(c.checked(h), roles)))
	}
	mux.Handle("GET "+Path+"/callback", self.Handler())
	mux.Handle("GET "+Path+"/{$}", page(c.home))
	mux.Handle("GET "+Path+"/clients", page(c.listClients, staff.RoleAdmin))
	mux.Handle("GET "+Path+"/clients/new", page(c.newClient, staff.RoleAdmin))
	mux.Handle("POST "+Path+"/clients", form(c.createClient, staff.RoleAdmin))
	mux.Handle("GET "+Path+"/clients/{id}", page(c.showClient, staff.RoleAdmin))
	mux.Handle("POST "+Path+"/clients/{id}/delete", form(c.deleteClient, staff.RoleAdmin))
	mux.Handle("POST "+Path+"/clients/{id}/secret", form(c.rotateSecret, staff.RoleAdmin))
	mux.Handle("GET "+Path+"/audit", page(c.audit, staff.RoleAdmin, staff.RoleAuditor))
	mux.Handle("POST "+Path+"/audit/export", form(c.exportAudit, staff.RoleAdmin, staff.RoleAuditor))
	for name, sec := range c.cfg.Sections {
		h := c.section(name, sec)
		mux.Handle("GET "+Path+"/"+name+"/", page(h, sec.Roles...))
		mux.Handle("POST "+Path+"/"+name+"/", form(h, sec.Roles...))
	}
	mux.HandleFunc(Path+"/", func(w http.ResponseWriter, r *http.Request) {
		c.message(w, r, http.StatusNotFound, "notfound_title", "notfound_text")
	})
	return mux
}

// staffMember is the person logged in and the roles they hold now.
type staffMember struct {
	selfclient.Session
	Roles []string
	CSRF  string
}

func (m staffMember) actor() staff.Actor { return staff.Actor{ID: m.FiscalNumber, Channel: "console"} }

// staffOnly lets through a person holding one of roles (any role when none
// is named), at the dispositivo level; others get a 403 page.
func (c *Console) staffOnly(h func(http.ResponseWriter, *http.Request, staffMember), roles []string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s, _ := selfclient.FromContext(r.Context())
		held, err := c.cfg.Admin.Staff().RolesOf(r.Context(), s.FiscalNumber)
		if err != nil {
			c.failed(w, r, err)
			return
		}
		if s.FiscalNumber == "" || s.Level() < idp.LevelDispositivo || len(held) == 0 ||
			(len(roles) > 0 && !slices.ContainsFunc(roles, func(r string) bool { return slices.Contains(held, r) })) {
			c.log.InfoContext(r.Context(), "console: refused", "subject", s.Subject, "path", r.URL.Path)
			c.message(w, r, http.StatusForbidden, "forbidden_title", "forbidden_text")
			return
		}
		h(w, r, staffMember{Session: s, Roles: held, CSRF: c.token(s)})
	})
}

// token is the forms' CSRF token: bound to the page session.
func (c *Console) token(s selfclient.Session) string {
	m := hmac.New(sha256.New, c.cfg.CSRFKey)
	m.Write([]byte("console-form\x00" + s.Subject + "\x00" + s.SID))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// checked refuses a form without the page session's token.
func (c *Console) checked(h func(http.ResponseWriter, *http.Request, staffMember)) func(http.ResponseWriter, *http.Request, staffMember) {
	return func(w http.ResponseWriter, r *http.Request, m staffMember) {
		if !hmac.Equal([]byte(r.PostFormValue("csrf")), []byte(m.CSRF)) {
			c.message(w, r, http.StatusForbidden, "error_title", "csrf_text")
			return
		}
		h(w, r, m)
	}
}

type homeView struct {
	Name         string
	Roles        []string
	Admin, Audit bool
	// Sections are the methods' sections the staff member may open.
	Sections []menuEntry
	Logout   string
}

// menuEntry is a link of the home page's menu.
type menuEntry struct{ URL, Title string }

func (c *Console) home(w http.ResponseWriter, r *http.Request, m staffMember) {
	v := homeView{Name: strings.TrimSpace(m.GivenName + " " + m.FamilyName),
		Roles: m.Roles, Admin: slices.Contains(m.Roles, staff.RoleAdmin),
		Audit: slices.Contains(m.Roles, staff.RoleAdmin) || slices.Contains(m.Roles, staff.RoleAuditor), Logout: c.cfg.Self.LogoutURL()}
	lang := ui.Locale(r)
	for name, sec := range c.cfg.Sections {
		if len(sec.Roles) == 0 || slices.ContainsFunc(sec.Roles, func(role string) bool { return slices.Contains(m.Roles, role) }) {
			v.Sections = append(v.Sections, menuEntry{URL: Path + "/" + name + "/", Title: sec.Title[lang]})
		}
	}
	slices.SortFunc(v.Sections, func(a, b menuEntry) int { return strings.Compare(a.URL, b.URL) })
	c.render(w, r, http.StatusOK, "home", v)
}

// section serves a method's pages with the staff member as the operator and
// the console's frame in the context; login, roles and (for a POST) the CSRF
// token are checked before.
func (c *Console) section(name string, sec idp.ConsoleSection) func(http.ResponseWriter, *http.Request, staffMember) {
	inner := http.StripPrefix(Path+"/"+name, sec.Handler)
	return func(w http.ResponseWriter, r *http.Request, m staffMember) {
		ctx := idp.WithOperatorRoles(idp.WithOperator(r.Context(), m.FiscalNumber), m.Roles...)
		ctx = idp.WithConsoleFrame(ctx, idp.ConsoleFrame{Lang: ui.Locale(r), CSRF: m.CSRF,
			Render: func(w http.ResponseWriter, r *http.Request, status int, title string, body template.HTML) {
				v := sectionView{Title: title, Body: body}
				if r.Method != http.MethodGet {
					// The answer to a form: the language switch opens the section's first page.
					v.Here = Path + "/" + name + "/"
				}
				c.render(w, r, status, "section", v)
			}})
		inner.ServeHTTP(w, r.WithContext(ctx))
	}
}

// sectionView is a method's page inside the console's layout.
type sectionView struct {
	Title string
	Body  template.HTML
	// Here is where the language switch leads ("": this page).
	Here string
}

func (c *Console) listClients(w http.ResponseWriter, r *http.Request, _ staffMember) {
	list, err := c.cfg.Admin.Clients(r.Context())
	if err != nil {
		c.failed(w, r, err)
		return
	}
	rows := make([]clientRow, len(list))
	for i, cl := range list {
		rows[i] = clientRow{Client: cl, Dispositivo: slices.Contains(cl.Scopes, "inps.dispositivo")}
	}
	c.render(w, r, http.StatusOK, "clients", rows)
}

// clientRow is a relying party in the list.
type clientRow struct {
	storage.Client
	Dispositivo bool
}

// formView is the registration form, with what was typed and what is wrong.
type formView struct {
	CSRF                                          string
	Name, RedirectURIs, PostLogoutURIs, Auth, Alg string
	Scopes                                        map[string]bool
	AllScopes, AuthMethods, Algs                  []string
	Errors                                        map[string]string
}

var (
	authMethods = []string{clients.AuthSecretBasic, clients.AuthSecretPost, clients.AuthNone}
	algs        = []string{"ES256", "RS256"}
)

func (c *Console) newClient(w http.ResponseWriter, r *http.Request, m staffMember) {
	v := formView{CSRF: m.CSRF, Auth: clients.AuthSecretBasic, Alg: "ES256", AllScopes: clients.Scopes, AuthMethods: authMethods, Algs: algs, Scopes: map[string]bool{}}
	for _, s := range clients.DefaultScopes {
		v.Scopes[s] = true
	}
	c.render(w, r, http.StatusOK, "form", v)
}

func lines(s string) []string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	return out
}

type createdView struct {
	Client storage.Client
	Secret string
	// OldUntil is when the replaced secret stops working (a rotation with overlap).
	OldUntil string
	Rotated  bool
}

// overlaps are the choices of the rotation form.
var overlaps = map[string]time.Duration{"0": 0, "1h": time.Hour, "24h": 24 * time.Hour, "168h": 168 * time.Hour}

// rotateSecret gives a confidential client a new secret; the old one works
// for the overlap chosen.
func (c *Console) rotateSecret(w http.ResponseWriter, r *http.Request, m staffMember) {
	overlap, ok := overlaps[r.PostFormValue("overlap")]
	if !ok {
		c.message(w, r, http.StatusBadRequest, "error_title", "overlap_text")
		return
	}
	cl, secret, err := c.cfg.Admin.RotateSecret(r.Context(), m.actor(), r.PathValue("id"), overlap)
	var fe *fields.Error
	if errors.As(err, &fe) {
		c.message(w, r, http.StatusBadRequest, "error_title", "no_secret_text")
		return
	}
	if err != nil {
		c.failed(w, r, err)
		return
	}
	v := createdView{Client: cl, Secret: secret, Rotated: true}
	if len(cl.PreviousSecretHash) > 0 {
		v.OldUntil = cl.PreviousSecretExpiresAt.In(rome).Format("02/01/2006 15:04")
	}
	c.render(w, r, http.StatusOK, "created", v)
}

func (c *Console) createClient(w http.ResponseWriter, r *http.Request, m staffMember) {
	v := formView{CSRF: m.CSRF, Name: r.PostFormValue("name"), RedirectURIs: r.PostFormValue("redirect_uris"),
		PostLogoutURIs: r.PostFormValue("post_logout_redirect_uris"), Auth: r.PostFormValue("auth"), Alg: r.PostFormValue("alg"),
		AllScopes: clients.Scopes, AuthMethods: authMethods, Algs: algs, Scopes: map[string]bool{}}
	for _, s := range r.PostForm["scope"] {
		v.Scopes[s] = true
	}
	spec := clients.Spec{Name: v.Name, RedirectURIs: lines(v.RedirectURIs), PostLogoutRedirectURIs: lines(v.PostLogoutURIs),
		Scopes: r.PostForm["scope"], AuthMethod: v.Auth, SigningAlg: v.Alg}
	if len(spec.Scopes) == 0 {
		spec.Scopes = []string{"none"} // an empty choice is a choice: refused by the scope check, not defaulted
	}
	cl, secret, err := c.cfg.Admin.CreateClient(r.Context(), m.actor(), spec)
	var fe *fields.Error
	if errors.As(err, &fe) {
		v.Errors = localized(ui.Locale(r), fe.Fields)
		c.render(w, r, http.StatusBadRequest, "form", v)
		return
	}
	if err != nil {
		c.failed(w, r, err)
		return
	}
	c.render(w, r, http.StatusCreated, "created", createdView{Client: cl, Secret: secret})
}

type clientView struct {
	CSRF      string
	Client    storage.Client
	HasSecret bool
}

func (c *Console) showClient(w http.ResponseWriter, r *http.Request, m staffMember) {
	cl, err := c.cfg.Admin.Client(r.Context(), r.PathValue("id"))
	if err != nil {
		c.failed(w, r, err)
		return
	}
	c.render(w, r, http.StatusOK, "client", clientView{CSRF: m.CSRF, Client: cl,
		HasSecret: cl.TokenEndpointAuthMethod == clients.AuthSecretBasic || cl.TokenEndpointAuthMethod == clients.AuthSecretPost})
}

func (c *Console) deleteClient(w http.ResponseWriter, r *http.Request, m staffMember) {
	if err := c.cfg.Admin.DeleteClient(r.Context(), m.actor(), r.PathValue("id")); err != nil {
		c.failed(w, r, err)
		return
	}
	http.Redirect(w, r, Path+"/clients", http.StatusSeeOther)
}

// auditFilters are the audit page's filters, as typed: dates (YYYY-MM-DD,
// Italy's calendar; "to" included) and exact actor, action and subject.
type auditFilters struct {
	From, To, Actor, Action, Subject string
}

func filtersOf(get func(string) string) auditFilters {
	return auditFilters{From: strings.TrimSpace(get("from")), To: strings.TrimSpace(get("to")), Actor: strings.TrimSpace(get("actor")),
		Action: strings.TrimSpace(get("action")), Subject: strings.TrimSpace(get("subject"))}
}

// query turns the filters into the admin API's parameters and parses them
// there (one validation for both).
func (f auditFilters) query(paged bool) (storage.AuditQuery, error) {
	v := url.Values{}
	day := func(name, s string, next bool) {
		if s == "" {
			return
		}
		d, err := time.ParseInLocation("2006-01-02", s, rome)
		if err != nil {
			v.Set(name, "not-a-date")
			return
		}
		if next {
			d = d.AddDate(0, 0, 1)
		}
		v.Set(name, d.Format(time.RFC3339))
	}
	day("from", f.From, false)
	day("to", f.To, true)
	for k, val := range map[string]string{"actor": f.Actor, "action": f.Action, "subject": f.Subject} {
		if val != "" {
			v.Set(k, val)
		}
	}
	q, _, err := admin.ParseAuditQuery(v, paged)
	return q, err
}

type auditView struct {
	CSRF    string
	Filters auditFilters
	Events  []eventRow
	Errors  map[string]string
	More    bool
}

type eventRow struct {
	When string
	storage.AuditEvent
}

// audit shows the first events the filters select, oldest first.
func (c *Console) audit(w http.ResponseWriter, r *http.Request, m staffMember) {
	v := auditView{CSRF: m.CSRF, Filters: filtersOf(r.URL.Query().Get)}
	q, err := v.Filters.query(true)
	var fe *fields.Error
	if errors.As(err, &fe) {
		v.Errors = localized(ui.Locale(r), fe.Fields)
		c.render(w, r, http.StatusBadRequest, "audit", v)
		return
	}
	err = c.cfg.Admin.SearchAudit(r.Context(), q, func(e storage.AuditEvent) error {
		v.Events = append(v.Events, eventRow{When: e.At.In(rome).Format("02/01/2006 15:04:05"), AuditEvent: e})
		return nil
	})
	if err != nil {
		c.failed(w, r, err)
		return
	}
	v.More = len(v.Events) == q.Limit
	c.render(w, r, http.StatusOK, "audit", v)
}

// exportAudit streams what the filters select as CSV or JSON (a form, so
// that a page elsewhere cannot make a browser export, which is audited).
func (c *Console) exportAudit(w http.ResponseWriter, r *http.Request, m staffMember) {
	f := filtersOf(r.PostFormValue)
	q, err := f.query(false)
	format := r.PostFormValue("format")
	if err != nil || (format != "csv" && format != "json") {
		c.message(w, r, http.StatusBadRequest, "error_title", "filters_text")
		return
	}
	if err := c.cfg.Admin.RecordExport(r.Context(), m.actor(), format, q); err != nil {
		c.failed(w, r, err)
		return
	}
	admin.ExportAudit(w, r, c.cfg.Admin, c.log, format, q)
}

var rome = func() *time.Location {
	l, err := time.LoadLocation("Europe/Rome")
	if err != nil {
		return time.FixedZone("CET", 3600)
	}
	return l
}()

func (c *Console) failed(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, storage.ErrNotFound) {
		c.message(w, r, http.StatusNotFound, "notfound_title", "notfound_text")
		return
	}
	if errors.Is(err, storage.ErrUnavailable) {
		c.log.WarnContext(r.Context(), "console: database unavailable", "path", r.URL.Path, "err", err)
		ui.ComeBack(w, r, storage.RetryAfter, ui.Unavailable)
		return
	}
	c.log.ErrorContext(r.Context(), "console failed", "path", r.URL.Path, "err", err)
	c.message(w, r, http.StatusInternalServerError, "error_title", "error_text")
}

type messageView struct{ Title, Text string }

func (c *Console) message(w http.ResponseWriter, r *http.Request, status int, title, text string) {
	c.render(w, r, status, "message", messageView{Title: title, Text: text})
}

// render writes a page in the staff member's language, never cached.
func (c *Console) render(w http.ResponseWriter, r *http.Request, status int, page string, v any) {
	lang := ui.Locale(r)
	t := text[lang]
	title := t["title_"+page]
	if cv, ok := v.(createdView); ok && cv.Rotated {
		title = t["title_rotated"]
	}
	if mv, ok := v.(messageView); ok {
		title = t[mv.Title]
	}
	here := ""
	if sv, ok := v.(sectionView); ok {
		title, here = sv.Title, sv.Here
	}
	w.Header().Set("Cache-Control", "no-store")
	ui.Render(w, r, c.log, pages[page], status, ui.Data{Lang: lang, Title: title, T: t, View: v, Here: here})
}
