package spid

import (
	"crypto/sha256"
	"crypto/subtle"
	"embed"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/ponte-id/ponte/idp"
	"github.com/ponte-id/ponte/internal/ui"
	"github.com/ponte-id/ponte/storage"
)

//go:embed templates/*.html
var templateFS embed.FS

var pages = ui.Pages(templateFS, "templates", "chooser", "error", "busy")

// web holds the handlers of the SPID pages for one host.
type web struct {
	a    *authenticator
	host idp.Host
	// base is the public URL of the method's pages (issuer + mount).
	base  string
	check validator
}

func lang(r *http.Request) string { return ui.Locale(r, r.URL.Query().Get("lang")) }

func (w *web) render(rw http.ResponseWriter, r *http.Request, status int, page, titleKey string, view any) {
	loc := lang(r)
	t := text[loc]
	ui.Render(rw, r, w.a.log, pages[page], status, ui.Data{Lang: loc, Title: t[titleKey], T: t, View: view})
}

type idpLink struct{ Name, URL string }

type chooserView struct {
	IDPs []idpLink
	Back string
}

type errorView struct{ Text, Back string }

// down answers a request that an outage of Ponte's database stopped (err
// wraps storage.ErrUnavailable) with the come-back page, 503 with
// Retry-After, and reports true: nothing was spent, and the same request
// (the same SAML response, posted again) may be sent again.
func (w *web) down(rw http.ResponseWriter, r *http.Request, err error) bool {
	if !errors.Is(err, storage.ErrUnavailable) {
		return false
	}
	w.a.log.WarnContext(r.Context(), "SPID: database unavailable", "err", err)
	ui.ComeBack(rw, r, storage.RetryAfter, ui.Unavailable)
	return true
}

// courtesy is the page of a login that failed: 403, the reason in the log,
// a plain message for the citizen, and a way back to the chooser when the
// challenge is known (SPID: an anomaly is shown on a courtesy page, never
// answered with a redirect carrying data).
func (w *web) courtesy(rw http.ResponseWriter, r *http.Request, challenge, key string, err error) {
	if w.down(rw, r, err) {
		return
	}
	w.a.log.WarnContext(r.Context(), "SPID login refused", "reason", err)
	v := errorView{Text: text[lang(r)][key]}
	if challenge != "" {
		v.Back = w.host.LoginURL(challenge)
	}
	w.render(rw, r, http.StatusForbidden, "error", "error_title", v)
}

// refuse counts a refused response by its reason and answers with the
// courtesy page.
func (w *web) refuse(rw http.ResponseWriter, r *http.Request, challenge, key string, why refusal, err error) {
	if w.down(rw, r, err) {
		return
	}
	w.a.refusals[why].Add(1)
	w.courtesy(rw, r, challenge, key, err)
}

// busyView is the page of a response that could not be verified now: a
// form that posts the same response again.
type busyView struct {
	Action, SAMLResponse, RelayState string
}

// busy answers a response that found the verification line full: 503 with
// Retry-After, and a page that tells the citizen the login is still pending
// and lets them post the same response again in a moment.
func (w *web) busy(rw http.ResponseWriter, r *http.Request, samlResponse, relayState string, err error) {
	w.a.refusals[refusedBusy].Add(1)
	w.a.log.WarnContext(r.Context(), "SPID response not verified: too many in progress", "err", err)
	rw.Header().Set("Retry-After", strconv.Itoa(w.a.acs.RetryAfter()))
	rw.Header().Set("Cache-Control", "no-store")
	// The language switch posts the same response again too: the page
	// exists only as the answer to a post.
	loc := lang(r)
	t := text[loc]
	ui.Render(rw, r, w.a.log, pages["busy"], http.StatusServiceUnavailable, ui.Data{Lang: loc, Title: t["busy_title"], T: t,
		View:       busyView{Action: w.base + "/acs", SAMLResponse: samlResponse, RelayState: relayState},
		Here:       w.host.MethodURL("/acs"),
		SwitchPost: map[string]string{"SAMLResponse": samlResponse, "RelayState": relayState}})
}

// chooser lists the identity providers in random order (AgID: the "Entra
// con SPID" button shows them shuffled, none first), or goes straight to the
// one the relying party named in idp_hint.
func (w *web) chooser(rw http.ResponseWriter, r *http.Request) {
	challenge := r.URL.Query().Get("challenge")
	lr, err := w.host.LoginRequest(r, challenge)
	if err != nil {
		w.courtesy(rw, r, "", "expired", err)
		return
	}
	if lr.IDPHint != "" {
		if p, ok := w.a.registry.get(lr.IDPHint); ok {
			w.send(rw, r, challenge, p)
			return
		}
		w.a.log.InfoContext(r.Context(), "idp_hint names no SPID identity provider", "idp_hint", lr.IDPHint)
	}
	v := chooserView{Back: w.host.LoginURL(challenge)}
	for _, p := range w.a.registry.list() {
		v.IDPs = append(v.IDPs, idpLink{Name: p.Name, URL: w.host.MethodURL("/start") + "?challenge=" + url.QueryEscape(challenge) + "&idp=" + url.QueryEscape(p.EntityID)})
	}
	rand.Shuffle(len(v.IDPs), func(i, j int) { v.IDPs[i], v.IDPs[j] = v.IDPs[j], v.IDPs[i] })
	w.render(rw, r, http.StatusOK, "chooser", "choose_title", v)
}

// start sends the AuthnRequest straight to the identity provider named.
func (w *web) start(rw http.ResponseWriter, r *http.Request) {
	challenge := r.URL.Query().Get("challenge")
	if _, err := w.host.LoginRequest(r, challenge); err != nil {
		w.courtesy(rw, r, "", "expired", err)
		return
	}
	p, ok := w.a.registry.get(r.URL.Query().Get("idp"))
	if !ok {
		w.courtesy(rw, r, challenge, "unknown_idp", fmt.Errorf("unknown identity provider %q", r.URL.Query().Get("idp")))
		return
	}
	w.send(rw, r, challenge, p)
}

// send makes the AuthnRequest for challenge, keeps its ID (single use,
// with the level asked and the identity provider) and sends the browser to
// the identity provider: a 302 (HTTP-Redirect) or a self-submitting form
// (HTTP-POST), with an opaque RelayState.
func (w *web) send(rw http.ResponseWriter, r *http.Request, challenge string, p *identityProvider) {
	cfg := w.a.cfg
	binding := bindingRedirect
	if cfg.Binding == "post" && p.SSO[bindingPOST] != "" || p.SSO[bindingRedirect] == "" {
		binding = bindingPOST
	}
	req := authnRequest{
		ID: newID(), IssueInstant: w.a.now().UTC(), Destination: p.SSO[binding], Binding: binding,
		Level: 2, Comparison: cfg.Comparison,
	}
	st := requestState{ID: req.ID, IDP: p.EntityID, IssueInstant: req.IssueInstant, Level: req.Level, RelayState: newID()[1:]}
	data, _ := json.Marshal(st)
	if err := w.host.SaveState(r.Context(), authnStateKey(req.ID), challenge, data, cfg.RequestTTL); w.down(rw, r, err) {
		return
	} else if err != nil {
		w.a.log.ErrorContext(r.Context(), "saving the SPID request failed", "err", err)
		http.Error(rw, "Errore interno / Internal error", http.StatusInternalServerError)
		return
	}
	doc, err := req.xml(w.a.entityID, w.a.kp)
	var msg []byte
	if err == nil {
		msg, err = doc.WriteToBytes()
	}
	if err != nil {
		w.a.log.ErrorContext(r.Context(), "building the AuthnRequest failed", "err", err)
		http.Error(rw, "Errore interno / Internal error", http.StatusInternalServerError)
		return
	}
	w.a.log.InfoContext(r.Context(), "SPID AuthnRequest sent", "idp", p.EntityID, "request", req.ID, "binding", binding)
	if binding == bindingPOST {
		writeAutoPost(rw, req.Destination, url.Values{"SAMLRequest": {base64.StdEncoding.EncodeToString(msg)}, "RelayState": {st.RelayState}})
		return
	}
	u, err := redirectURL(req.Destination, "SAMLRequest", msg, st.RelayState, w.a.kp)
	if err != nil {
		w.a.log.ErrorContext(r.Context(), "signing the AuthnRequest failed", "err", err)
		http.Error(rw, "Errore interno / Internal error", http.StatusInternalServerError)
		return
	}
	rw.Header().Set("Cache-Control", "no-store")
	http.Redirect(rw, r, u, http.StatusFound)
}

// acs is the assertion consumer service (HTTP-POST): a cross-site return.
// The response is checked by Ponte's own rules and then by crewjam's; a
// good one completes the login through Host.ReturnLogin (which logs in
// only the browser that made the challenge), anything else gets the 403
// courtesy page.
func (w *web) acs(rw http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	max := w.a.cfg.MaxResponseBytes
	r.Body = http.MaxBytesReader(rw, r.Body, int64(max)+4096)
	if err := r.ParseForm(); err != nil {
		w.refuse(rw, r, "", "refused", refusedMalformed, fmt.Errorf("reading the form: %w", err))
		return
	}
	b64 := r.PostForm.Get("SAMLResponse")
	if b64 == "" || len(b64) > max {
		w.refuse(rw, r, "", "refused", refusedMalformed, fmt.Errorf("SAMLResponse missing or larger than %d bytes", max))
		return
	}
	raw, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(b64), ""))
	if err != nil {
		w.refuse(rw, r, "", "refused", refusedMalformed, errors.New("SAMLResponse is not base64"))
		return
	}
	// Parsing and verifying are the expensive part: a bounded number at
	// once. A response refused here is untouched (its request's state not
	// taken, its assertion not spent): the citizen posts it again later.
	release, err := w.a.acs.Acquire(ctx)
	if err != nil {
		w.busy(rw, r, b64, r.PostForm.Get("RelayState"), err)
		return
	}
	defer release()
	root, err := parseXML(raw)
	if err != nil {
		w.refuse(rw, r, "", "refused", refusedMalformed, err)
		return
	}
	irt, _ := attr(root, "InResponseTo")
	if irt == "" {
		w.refuse(rw, r, "", "refused", refusedMalformed, refuse("Response/@InResponseTo", "missing or empty"))
		return
	}
	challenge, data, err := w.host.TakeState(ctx, authnStateKey(irt))
	if err != nil {
		w.refuse(rw, r, "", "expired", refusedUnknownRequest, fmt.Errorf("InResponseTo names no pending request (unknown, expired or used): %w", err))
		return
	}
	var st requestState
	if err := json.Unmarshal(data, &st); err != nil || st.ID != irt {
		w.refuse(rw, r, challenge, "refused", refusedState, errors.New("the request's state is unreadable"))
		return
	}
	if subtle.ConstantTimeCompare([]byte(r.PostForm.Get("RelayState")), []byte(st.RelayState)) != 1 {
		w.refuse(rw, r, challenge, "refused", refusedState, errors.New("the RelayState is not the request's"))
		return
	}
	p, ok := w.a.registry.get(st.IDP)
	if !ok {
		w.refuse(rw, r, challenge, "unknown_idp", refusedUnknownIDP, fmt.Errorf("identity provider %s no longer in the registry", st.IDP))
		return
	}
	now := w.a.now()
	as, err := w.check.validate(root, st, p, now)
	var se *statusError
	if errors.As(err, &se) {
		key := "failed"
		if n := se.errorCode(); n != 0 && text["it"][fmt.Sprintf("nr%d", n)] != "" {
			key = fmt.Sprintf("nr%d", n)
		}
		w.refuse(rw, r, challenge, key, refusedIDPStatus, err)
		return
	}
	if err != nil {
		w.refuse(rw, r, challenge, "refused", refusedRules, err)
		return
	}
	if err := w.a.crewjamCheck(raw, st, p, w.base+"/acs"); err != nil {
		w.refuse(rw, r, challenge, "refused", refusedSAML, fmt.Errorf("crewjam: %w", err))
		return
	}
	if err := w.host.UseOnce(ctx, "assertion:"+p.EntityID+"|"+as.ID, as.NotOnOrAfter.Add(w.a.cfg.ClockSkew)); err != nil {
		w.refuse(rw, r, challenge, "refused", refusedReplay, fmt.Errorf("assertion %s: %w", as.ID, err))
		return
	}
	id, err := identityOf(as, p)
	if err != nil {
		w.refuse(rw, r, challenge, "refused", refusedIdentity, err)
		return
	}
	w.a.log.InfoContext(ctx, "SPID assertion accepted", "idp", p.EntityID, "level", as.Level, "fiscal_number", maskCF(id.FiscalNumber))
	w.host.ReturnLogin(rw, r, challenge, id)
}

// serveMetadata publishes the signed SP metadata.
func (w *web) serveMetadata(rw http.ResponseWriter, _ *http.Request) {
	rw.Header().Set("Content-Type", "application/samlmetadata+xml")
	rw.Header().Set("Cache-Control", "public, max-age=3600")
	_, _ = rw.Write(w.a.metadata)
}

// autoPost is the page that posts a SAML message to another site. Its one
// script submits the form; the Content-Security-Policy allows only it.
var autoPost = template.Must(template.New("autopost").Parse(`<!DOCTYPE html>
<html lang="it"><head><meta charset="utf-8"><meta name="referrer" content="no-referrer"><title>SPID</title></head>
<body><form method="post" action="{{.Action}}">
{{range $k, $v := .Values}}{{range $v}}<input type="hidden" name="{{$k}}" value="{{.}}">
{{end}}{{end}}<noscript><p>Premi il pulsante per proseguire. / Press the button to continue.</p><button type="submit">Prosegui / Continue</button></noscript>
</form><script>` + autoPostScript + `</script></body></html>
`))

const autoPostScript = `document.forms[0].submit();`

// autoPostCSP allows the page's one script by its hash (CSP Level 2 §4.2.4).
var autoPostCSP = func() string {
	sum := sha256.Sum256([]byte(autoPostScript))
	return "default-src 'none'; script-src 'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'; base-uri 'none'; frame-ancestors 'none'"
}()

// writeAutoPost writes the auto-post page.
func writeAutoPost(rw http.ResponseWriter, action string, values url.Values) {
	h := rw.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", autoPostCSP)
	h.Set("Cache-Control", "no-store")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Frame-Options", "DENY")
	_ = autoPost.Execute(rw, struct {
		Action string
		Values url.Values
	}{action, values})
}
