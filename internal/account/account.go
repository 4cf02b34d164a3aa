// Package account is the citizen's own pages (/account): the SSO sessions
// they have open — how and when each started, from which address and
// browser, which services they used in it — and their recent logins, with a
// form to end one session or all of them (which sends the back-channel
// logouts the sessions owe). The citizen logs in to the pages through Ponte
// itself (internal/selfclient); every form is protected by the cross-origin
// check and by a token bound to the page session, and every answer is
// no-store. A citizen can only ever see and end their own sessions: the
// pages look sessions up by the subject of the page session, never by an
// identifier the browser sends alone.
package account

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/ponte-id/ponte/idp"
	"github.com/ponte-id/ponte/idp/provider"
	"github.com/ponte-id/ponte/internal/selfclient"
	"github.com/ponte-id/ponte/internal/ui"
	"github.com/ponte-id/ponte/storage"
)

// Path is where the pages are mounted.
const Path = "/account"

// ClientID is the self client of the pages.
const ClientID = "ponte-account"

// maxLogins is how many recent logins the page shows.
const maxLogins = 20

// Config shapes the pages.
type Config struct {
	// Self logs the citizen in (its Path must be Path).
	Self *selfclient.Client
	// Store reads sessions, their relying parties, clients and the login history.
	Store storage.Store
	// Sessions ends sessions with their back-channel logouts.
	Sessions provider.SessionEnder
	// CSRFKey keys the forms' tokens (32 bytes, derived from the master key).
	CSRFKey []byte
	Logger  *slog.Logger
	Now     func() time.Time
}

// Pages serves the citizen's pages.
type Pages struct {
	cfg  Config
	log  *slog.Logger
	now  func() time.Time
	csrf *http.CrossOriginProtection
}

// New checks cfg and returns the pages.
func New(cfg Config) (*Pages, error) {
	if cfg.Self == nil || cfg.Store == nil || cfg.Sessions.Store == nil || len(cfg.CSRFKey) < 32 {
		return nil, errors.New("account: self client, store, session ender and a 32-byte CSRF key are required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	csrf := http.NewCrossOriginProtection()
	csrf.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cfg.Logger.InfoContext(r.Context(), "cross-origin form post refused", "path", r.URL.Path)
		http.Error(w, "Richiesta non valida / Invalid request", http.StatusForbidden)
	}))
	return &Pages{cfg: cfg, log: cfg.Logger, now: cfg.Now, csrf: csrf}, nil
}

// Handler serves every page below Path.
func (p *Pages) Handler() http.Handler {
	mux := http.NewServeMux()
	self := p.cfg.Self
	mux.Handle("GET "+Path+"/callback", self.Handler())
	mux.HandleFunc("GET "+Path+"/ended", p.ended)
	mux.Handle("GET "+Path+"/{$}", self.Require(http.HandlerFunc(p.overview)))
	mux.Handle("POST "+Path+"/sessions/end", p.csrf.Handler(self.Require(http.HandlerFunc(p.end))))
	mux.Handle("POST "+Path+"/sessions/end-all", p.csrf.Handler(self.Require(http.HandlerFunc(p.endAll))))
	mux.HandleFunc(Path+"/", func(w http.ResponseWriter, r *http.Request) {
		p.render(w, r, http.StatusNotFound, "message", messageView{Title: "notfound_title", Text: "notfound_text"})
	})
	return mux
}

// token is the forms' CSRF token: bound to the page session's sid and subject.
func (p *Pages) token(s selfclient.Session) string {
	m := hmac.New(sha256.New, p.cfg.CSRFKey)
	m.Write([]byte("account-form\x00" + s.Subject + "\x00" + s.SID))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// checkToken reports whether the posted token is the page session's.
func (p *Pages) checkToken(r *http.Request, s selfclient.Session) bool {
	return hmac.Equal([]byte(r.PostFormValue("csrf")), []byte(p.token(s)))
}

// sessionView is one open session on the page.
type sessionView struct {
	SID, Method, Level, Started, Expires, IP, Browser string
	Services                                          []string
	Current                                           bool
}

// loginView is one recent login.
type loginView struct {
	When, Method, Level, Service, IP, Browser string
}

type overviewView struct {
	Name     string
	Sessions []sessionView
	Logins   []loginView
	CSRF     string
	Notice   string
	Logout   string
}

// overview lists the citizen's open sessions and recent logins.
func (p *Pages) overview(w http.ResponseWriter, r *http.Request) {
	s, _ := selfclient.FromContext(r.Context())
	lang := ui.Locale(r)
	v, err := p.view(r.Context(), s, lang)
	if err != nil {
		if errors.Is(err, storage.ErrUnavailable) {
			p.log.WarnContext(r.Context(), "account: reading sessions: database unavailable", "err", err)
			ui.ComeBack(w, r, storage.RetryAfter, ui.Unavailable)
			return
		}
		p.log.ErrorContext(r.Context(), "account: reading sessions failed", "err", err)
		p.render(w, r, http.StatusInternalServerError, "message", messageView{Title: "error_title", Text: "error_text"})
		return
	}
	switch r.URL.Query().Get("done") {
	case "one":
		v.Notice = "ended_one"
	case "none":
		v.Notice = "ended_none"
	}
	p.render(w, r, http.StatusOK, "overview", v)
}

func (p *Pages) view(ctx context.Context, s selfclient.Session, lang string) (overviewView, error) {
	v := overviewView{Name: strings.TrimSpace(s.GivenName + " " + s.FamilyName), CSRF: p.token(s), Logout: p.cfg.Self.LogoutURL()}
	logins, err := p.cfg.Store.ListLogins(ctx, s.Subject, 50)
	if err != nil {
		return v, err
	}
	bySession := map[string]storage.LoginEvent{}
	for _, l := range logins {
		if _, seen := bySession[l.SessionID]; !seen {
			bySession[l.SessionID] = l
		}
	}
	names := map[string]string{}
	name := func(id string) string {
		if n, ok := names[id]; ok {
			return n
		}
		n := id
		if c, err := p.cfg.Store.GetClient(ctx, id); err == nil && c.Name != "" {
			n = c.Name
		}
		names[id] = n
		return n
	}
	sessions, err := p.cfg.Store.ListSubjectSessions(ctx, s.Subject)
	if err != nil {
		return v, err
	}
	now := p.now()
	for _, ss := range sessions {
		if !now.Before(ss.ExpiresAt) {
			continue
		}
		sid := provider.SID(ss.ID)
		sv := sessionView{SID: sid, Method: methodLabel(ss.Method, lang), Level: levelLabel(ss.Level, lang),
			Started: when(ss.CreatedAt), Expires: when(ss.ExpiresAt), Current: sid == s.SID}
		if l, ok := bySession[ss.ID]; ok {
			sv.IP, sv.Browser = l.IP, browser(l.UserAgent, lang)
		}
		rps, err := p.cfg.Store.SessionClients(ctx, ss.ID)
		if err != nil {
			return v, err
		}
		for _, rp := range rps {
			sv.Services = append(sv.Services, name(rp.ClientID))
		}
		v.Sessions = append(v.Sessions, sv)
	}
	for i, l := range logins {
		if i == maxLogins {
			break
		}
		v.Logins = append(v.Logins, loginView{When: when(l.CreatedAt), Method: methodLabel(l.Method, lang),
			Level: levelLabel(l.Level, lang), Service: name(l.ClientID), IP: l.IP, Browser: browser(l.UserAgent, lang)})
	}
	return v, nil
}

// end ends one of the citizen's sessions, named by its sid. The session is
// looked up among the citizen's own: another citizen's sid ends nothing and
// says nothing of it.
func (p *Pages) end(w http.ResponseWriter, r *http.Request) {
	s, _ := selfclient.FromContext(r.Context())
	if !p.checkToken(r, s) {
		p.render(w, r, http.StatusForbidden, "message", messageView{Title: "error_title", Text: "csrf_text"})
		return
	}
	sid := r.PostFormValue("sid")
	err := p.cfg.Sessions.EndSubjectSession(r.Context(), s.Subject, sid)
	switch {
	case errors.Is(err, provider.ErrNoSession):
		p.log.InfoContext(r.Context(), "account: end of an unknown session refused", "subject", s.Subject)
		http.Redirect(w, r, Path+"/?done=none", http.StatusSeeOther)
	case err != nil:
		if errors.Is(err, storage.ErrUnavailable) {
			p.log.WarnContext(r.Context(), "account: ending a session: database unavailable", "err", err)
			ui.ComeBack(w, r, storage.RetryAfter, ui.Unavailable)
			return
		}
		p.log.ErrorContext(r.Context(), "account: ending a session failed", "err", err)
		p.render(w, r, http.StatusInternalServerError, "message", messageView{Title: "error_title", Text: "error_text"})
	case sid == s.SID:
		p.log.InfoContext(r.Context(), "account: the citizen ended this session", "subject", s.Subject)
		p.cfg.Self.EndPageSession(w)
		http.Redirect(w, r, Path+"/ended", http.StatusSeeOther)
	default:
		p.log.InfoContext(r.Context(), "account: the citizen ended a session", "subject", s.Subject)
		http.Redirect(w, r, Path+"/?done=one", http.StatusSeeOther)
	}
}

// endAll ends every session of the citizen, this one included.
func (p *Pages) endAll(w http.ResponseWriter, r *http.Request) {
	s, _ := selfclient.FromContext(r.Context())
	if !p.checkToken(r, s) {
		p.render(w, r, http.StatusForbidden, "message", messageView{Title: "error_title", Text: "csrf_text"})
		return
	}
	n, err := p.cfg.Sessions.EndSubjectSessions(r.Context(), s.Subject)
	if err != nil {
		if errors.Is(err, storage.ErrUnavailable) {
			p.log.WarnContext(r.Context(), "account: ending every session: database unavailable", "err", err)
			ui.ComeBack(w, r, storage.RetryAfter, ui.Unavailable)
			return
		}
		p.log.ErrorContext(r.Context(), "account: ending every session failed", "err", err)
		p.render(w, r, http.StatusInternalServerError, "message", messageView{Title: "error_title", Text: "error_text"})
		return
	}
	p.log.InfoContext(r.Context(), "account: the citizen ended every session", "subject", s.Subject, "sessions", n)
	p.cfg.Self.EndPageSession(w)
	http.Redirect(w, r, Path+"/ended", http.StatusSeeOther)
}

// ended says that the sessions are over (no login needed to see it).
func (p *Pages) ended(w http.ResponseWriter, r *http.Request) {
	p.render(w, r, http.StatusOK, "message", messageView{Title: "ended_title", Text: "ended_text", Again: Path + "/"})
}

type messageView struct {
	Title, Text, Again string
}

// render writes a page in the citizen's language.
func (p *Pages) render(w http.ResponseWriter, r *http.Request, status int, page string, v any) {
	lang := ui.Locale(r)
	t := text[lang]
	title := t["title"]
	if mv, ok := v.(messageView); ok {
		title = t[mv.Title]
	}
	ui.Render(w, r, p.log, pages[page], status, ui.Data{Lang: lang, Title: title, T: t, View: v})
}

// when formats a time in Italy's zone.
func when(t time.Time) string { return t.In(rome).Format("02/01/2006 15:04") }

var rome = func() *time.Location {
	if l, err := time.LoadLocation("Europe/Rome"); err == nil {
		return l
	}
	return time.FixedZone("CET", 3600)
}()

func methodLabel(m, lang string) string {
	switch idp.Method(m) {
	case idp.MethodPIN:
		return "PIN INPS"
	case idp.MethodSPID:
		return "SPID"
	case idp.MethodCNS:
		return map[string]string{ui.Italian: "CNS (Carta Nazionale dei Servizi)", ui.English: "CNS (national services card)"}[lang]
	}
	return m
}

func levelLabel(acr, lang string) string {
	l, _ := idp.ParseACR(acr)
	switch l {
	case idp.LevelDispositivo:
		return text[lang]["level_dispositivo"]
	case idp.LevelConsultazione:
		return text[lang]["level_consultazione"]
	}
	return acr
}

// browser says in a few words what a User-Agent names ("Firefox, Linux").
func browser(ua, lang string) string {
	if ua == "" {
		return text[lang]["unknown"]
	}
	var name, os string
	for _, b := range []struct{ token, name string }{
		{"Edg/", "Edge"}, {"OPR/", "Opera"}, {"Firefox/", "Firefox"}, {"Chromium/", "Chromium"},
		{"HeadlessChrome/", "Chrome"}, {"Chrome/", "Chrome"}, {"Safari/", "Safari"},
	} {
		if strings.Contains(ua, b.token) {
			name = b.name
			break
		}
	}
	for _, o := range []struct{ token, name string }{
		{"Android", "Android"}, {"iPhone", "iOS"}, {"iPad", "iPadOS"}, {"Windows", "Windows"},
		{"Mac OS X", "macOS"}, {"CrOS", "ChromeOS"}, {"Linux", "Linux"},
	} {
		if strings.Contains(ua, o.token) {
			os = o.name
			break
		}
	}
	switch {
	case name != "" && os != "":
		return fmt.Sprintf("%s, %s", name, os)
	case name != "" || os != "":
		return name + os
	}
	if len(ua) > 60 {
		ua = strings.ToValidUTF8(ua[:60], "") + "…"
	}
	return ua
}
