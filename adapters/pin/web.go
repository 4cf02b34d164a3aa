package pin

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"strconv"
	"time"

	"github.com/ponte-id/ponte/idp"
	"github.com/ponte-id/ponte/internal/clientaddr"
	"github.com/ponte-id/ponte/internal/ui"
	"github.com/ponte-id/ponte/storage"
)

//go:embed templates/*.html
var templateFS embed.FS

var pages = withPartials(ui.Pages(templateFS, "templates", "login", "change", "notice", "form"))

// withPartials adds the pieces every PIN page shares (templates/partials.html).
func withPartials(m map[string]*template.Template) map[string]*template.Template {
	for _, t := range m {
		template.Must(t.ParseFS(templateFS, "templates/partials.html"))
	}
	return m
}

// envelope is the sheet printed at a branch office for the sealed envelope
// (MV35): a page of its own, without the site's layout.
var envelope = template.Must(template.ParseFS(templateFS, "templates/envelope.html"))

// noEnumerationFloor is how long recovery and revocation always take, so that
// the answer's timing does not tell whether anything matched.
const noEnumerationFloor = 750 * time.Millisecond

// web holds the handlers of the PIN pages.
type web struct {
	s    *Service
	host idp.Host
}

// handler serves the PIN pages; host gives their paths. Every page keeps the
// pending login (its challenge, in links and forms) and its language (ui's
// switch and cookie), so a citizen who detours through any of them comes
// back to the login they started; a form that succeeds redirects to its
// outcome's page (/done/...), which a language switch can show again.
func (s *Service) handler(host idp.Host) http.Handler {
	w := &web{s: s, host: host}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", w.loginForm)
	mux.HandleFunc("POST /{$}", w.login)
	mux.HandleFunc("POST /change", w.change)
	mux.HandleFunc("GET /request", w.requestForm)
	mux.HandleFunc("POST /request", w.request)
	mux.HandleFunc("GET /activate", w.activateForm)
	mux.HandleFunc("POST /activate", w.activate)
	mux.HandleFunc("GET /recover", w.recoverForm)
	mux.HandleFunc("POST /recover", w.recover)
	mux.HandleFunc("GET "+RecoverConfirmPath, w.recoverConfirmForm)
	mux.HandleFunc("POST "+RecoverConfirmPath, w.recoverConfirm)
	mux.HandleFunc("GET /revoke", w.revokeForm)
	mux.HandleFunc("POST /revoke", w.revoke)
	mux.HandleFunc("GET /convert", w.convertForm)
	mux.HandleFunc("POST /convert", w.convert)
	mux.HandleFunc("GET /convert/form", w.conversionModule)
	mux.HandleFunc("GET /done/{what}", w.done)
	mux.HandleFunc("/", w.notFound)
	return limitBodies(mux, s.maxBody())
}

// formBodyLimit bounds the body of every PIN page but the conversion upload:
// a form needs far less.
const formBodyLimit = 64 << 10

// limitBodies lets only the conversion upload carry upload bodies (up to
// upload); every other page takes formBodyLimit.
func limitBodies(next http.Handler, upload int64) http.Handler {
	return http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		limit := int64(formBodyLimit)
		if r.URL.Path == "/convert" {
			limit = upload
		}
		if r.ContentLength > limit {
			http.Error(rw, http.StatusText(http.StatusRequestEntityTooLarge), http.StatusRequestEntityTooLarge)
			return
		}
		r.Body = http.MaxBytesReader(rw, r.Body, limit)
		next.ServeHTTP(rw, r)
	})
}

// url is the path of one of the PIN's pages.
func (w *web) url(page string) string { return w.host.MethodURL(page) }

// visit is what a PIN page knows of the citizen's visit: the language of the
// page and, when they came from a login that is still pending in this
// browser, its challenge and what it asks; down is the error of a login
// request the database's outage left unread (wrapping storage.ErrUnavailable).
type visit struct {
	loc       string
	down      error
	challenge string
	client    string
	hint      string
}

// visit reads the visit of r: the challenge named (in the query or the
// posted form) is kept only if it is live for this browser, and then the
// login request gives the language; otherwise the request does.
func (w *web) visit(r *http.Request, challenge string) visit {
	v := visit{loc: ui.Locale(r)}
	if challenge == "" {
		return v
	}
	lr, err := w.host.LoginRequest(r, challenge)
	if errors.Is(err, storage.ErrUnavailable) {
		v.down = err
		return v
	}
	if err != nil {
		return v
	}
	return visit{loc: lr.Locale, challenge: challenge, client: lr.ClientName, hint: lr.LoginHint}
}

// getVisit and postVisit read the challenge from the query or the form.
func (w *web) getVisit(r *http.Request) visit  { return w.visit(r, r.URL.Query().Get("challenge")) }
func (w *web) postVisit(r *http.Request) visit { return w.visit(r, r.PostFormValue("challenge")) }

// ctx is r's context with what the service needs to write to the citizen:
// their language, and their pending login for a link back to it.
func (v visit) ctx(r *http.Request) context.Context {
	return withChallenge(WithLocale(r.Context(), v.loc), v.challenge)
}

// t is the wording of the visit's language.
func (v visit) t() map[string]string { return text[v.loc] }

// nav are the links every PIN page may show, each keeping the pending login.
type nav struct {
	// Challenge is the pending login ("" without one), for the forms.
	Challenge string
	// Login is the PIN login page of the pending login, Chooser the method
	// chooser; both "" without one.
	Login, Chooser                                           string
	Recover, Revoke, Request, Activate, Convert, ConvertForm string
}

func (w *web) nav(v visit) nav {
	l := func(page string) string { return ui.WithChallenge(w.url(page), v.challenge) }
	n := nav{Challenge: v.challenge, Recover: l("/recover"), Revoke: l("/revoke"), Request: l("/request"),
		Activate: l("/activate"), Convert: l("/convert"), ConvertForm: l("/convert/form")}
	if v.challenge != "" {
		n.Login, n.Chooser = l("/"), w.host.LoginURL(v.challenge)
	}
	return n
}

// link and para are a sentence with links, box a highlighted group of them.
type (
	link struct{ URL, Text, Lang string }
	para struct {
		Text  string
		Links []link
		Class string
	}
	box struct {
		// Kind is notice, success, warning or error.
		Kind  string
		Paras []para
	}
)

func errorBox(text string, links ...link) box {
	return box{Kind: "error", Paras: []para{{Text: text, Links: links}}}
}

// render writes a page of the visit, titled with the wording of titleKey.
func (w *web) render(rw http.ResponseWriter, r *http.Request, v visit, status int, page, titleKey string, view any) {
	w.renderData(rw, r, status, page, ui.Data{Lang: v.loc, Title: v.t()[titleKey], View: view})
}

func (w *web) renderData(rw http.ResponseWriter, r *http.Request, status int, page string, d ui.Data) {
	d.T = text[d.Lang]
	if d.T == nil {
		d.Lang, d.T = "it", text["it"]
	}
	ui.Render(rw, r, w.s.log, pages[page], status, d)
}

// noticeView is a page that tells the outcome of something, with the way on.
type noticeView struct {
	Nav    nav
	Boxes  []box
	Paras  []para
	Action string
	Button string
	Hidden map[string]string
}

func (w *web) notice(rw http.ResponseWriter, r *http.Request, v visit, status int, titleKey string, view noticeView) {
	view.Nav = w.nav(v)
	w.render(rw, r, v, status, "notice", titleKey, view)
}

// fail answers with an error notice.
func (w *web) fail(rw http.ResponseWriter, r *http.Request, v visit, status int, titleKey, text string, links ...link) {
	w.notice(rw, r, v, status, titleKey, noticeView{Boxes: []box{errorBox(text, links...)}})
}

// outcomes are the pages a form that succeeded redirects to: the title, the
// wording, and the box's kind.
var outcomes = map[string]struct{ title, text, kind string }{
	"requested":       {"request_done_t", "request_done", "success"},
	"activated":       {"activated_t", "activated", "success"},
	"recovery_sent":   {"recover_sent_t", "recover_sent", "notice"},
	"recovered":       {"recovered_t", "recovered", "success"},
	"revoke_started":  {"revoke_done_t", "revoke_done", "notice"},
	"conversion_sent": {"convert_done_t", "convert_done", "success"},
	"changed":         {"changed_title", "changed", "success"},
}

// redirectDone sends the browser to the page of an outcome (post/redirect/get).
func (w *web) redirectDone(rw http.ResponseWriter, r *http.Request, v visit, what string) {
	http.Redirect(rw, r, ui.WithChallenge(w.url("/done/"+what), v.challenge), http.StatusSeeOther)
}

// done shows the outcome of a form, and the way back to the pending login.
func (w *web) done(rw http.ResponseWriter, r *http.Request) {
	v := w.getVisit(r)
	t := v.t()
	what := r.PathValue("what")
	o, ok := outcomes[what]
	if !ok {
		w.fail(rw, r, v, http.StatusNotFound, "login_title", t["expired_request"])
		return
	}
	n := w.nav(v)
	msg := t[o.text]
	var paras []para
	switch what {
	case "requested":
		paras = []para{{Text: t["request_next"], Links: []link{{URL: n.Activate, Text: t["activate_link"]}}}}
	case "recovery_sent":
		msg = fmt.Sprintf(msg, int(w.s.cfg.RecoveryTTL.Round(time.Minute)/time.Minute))
		paras = []para{{Text: t["recover_nomail"], Links: []link{{URL: n.Revoke, Text: t["revoke_title"]}}}}
	case "revoke_started":
		paras = []para{{Text: t["revoke_keep"]}}
	case "conversion_sent":
		if n.Chooser != "" {
			paras = []para{{Links: []link{{URL: n.Chooser, Text: t["other_methods"]}}}}
		}
	}
	w.notice(rw, r, v, http.StatusOK, o.title, noticeView{Boxes: []box{{Kind: o.kind, Paras: []para{{Text: msg}}}}, Paras: paras})
}

// notFound answers an address the PIN does not serve (a page reloaded after
// its form expired, a mistyped link) with a page, not the mux's English text.
func (w *web) notFound(rw http.ResponseWriter, r *http.Request) {
	v := w.getVisit(r)
	w.fail(rw, r, v, http.StatusNotFound, "not_found_t", v.t()["not_found"])
}

// down answers a form that an outage of the database stopped (err wraps
// storage.ErrUnavailable) with the come-back page, 503 with Retry-After, and
// reports true; nothing was done, and the same form may be sent again.
func (w *web) down(rw http.ResponseWriter, r *http.Request, what string, err error) bool {
	if !errors.Is(err, storage.ErrUnavailable) {
		return false
	}
	w.s.log.WarnContext(r.Context(), what+": database unavailable", "err", err)
	ui.ComeBack(rw, r, storage.RetryAfter, ui.Unavailable)
	return true
}

// busyRetry is the Retry-After of a PIN check refused because the hashing
// line is full: the line drains within a few seconds.
const busyRetry = 5 * time.Second

// busy sets Retry-After on a 503 for a full hashing line.
func (w *web) busy(rw http.ResponseWriter) {
	rw.Header().Set("Retry-After", strconv.Itoa(int(busyRetry/time.Second)))
}

// limited answers a form refused for its address (429 with Retry-After) and
// reports whether it did.
func (w *web) limited(rw http.ResponseWriter, r *http.Request, v visit, titleKey string, err error) bool {
	var rl *RateLimitedError
	if !errors.As(err, &rl) {
		return false
	}
	rw.Header().Set("Retry-After", strconv.Itoa(int((rl.RetryAfter+time.Second-1)/time.Second))) // whole seconds, rounded up
	w.fail(rw, r, v, http.StatusTooManyRequests, titleKey, v.t()["rate_limited"])
	return true
}

// waitText says how long a citizen must wait, in words.
func waitText(t map[string]string, d time.Duration) string {
	switch {
	case d < time.Minute:
		return fmt.Sprintf(t["seconds"], max(1, int((d+time.Second-1)/time.Second)))
	case d < 90*time.Second:
		return t["minute"]
	default:
		return fmt.Sprintf(t["minutes"], int((d+time.Minute-1)/time.Minute))
	}
}

// throttledBox explains a refused check: how long to wait, and what to do
// meanwhile (recovery; for a lock, the contact center and the other methods).
func (w *web) throttledBox(v visit, e *ThrottledError) box {
	t, n := v.t(), w.nav(v)
	recover := link{URL: n.Recover, Text: t["recover_title"]}
	if !e.Locked {
		return errorBox(fmt.Sprintf(t["throttled"], waitText(t, e.Wait)), recover)
	}
	what := para{Text: t["locked_what"], Links: []link{recover}}
	if n.Chooser != "" {
		what.Links = append(what.Links, link{URL: n.Chooser, Text: t["other_methods"]})
	}
	return box{Kind: "error", Paras: []para{{Text: fmt.Sprintf(t["locked"], waitText(t, e.Wait))}, what}}
}

// clientIP is the peer address (the edge rewrites it from trusted proxies only).
func clientIP(r *http.Request) string { return clientaddr.Of(r) }

// padTo sleeps until start+floor (or ctx ends).
func padTo(ctx context.Context, start time.Time, floor time.Duration) {
	t := time.NewTimer(time.Until(start.Add(floor)))
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// sizeText writes a size limit for people: "5 MB".
func sizeText(n int64) string {
	if n >= 1<<20 && n%(1<<20) == 0 {
		return strconv.FormatInt(n>>20, 10) + " MB"
	}
	if n >= 1<<20 {
		return strconv.FormatFloat(float64(n)/(1<<20), 'f', 1, 64) + " MB"
	}
	return strconv.FormatInt((n+1023)>>10, 10) + " KB"
}
