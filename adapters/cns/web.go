package cns

import (
	"crypto/rand"
	"crypto/x509"
	"embed"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/ponte-id/ponte/idp"
	"github.com/ponte-id/ponte/internal/ui"
	"github.com/ponte-id/ponte/storage"
)

//go:embed templates/*.html
var templateFS embed.FS

var pages = ui.Pages(templateFS, "templates", "card")

// returnTTL is how long an identity read on the card listener waits for its
// browser at the issuer.
const returnTTL = 2 * time.Minute

// maxParam bounds the challenge and return key a page reads.
const maxParam = 128

// The paths of the method's pages, below its mount.
const (
	// PathCard is the page on the card listener that reads the card.
	PathCard = "/card"
	// PathDone is the page on the issuer that completes the login.
	PathDone = "/done"
)

// amr is what a CNS login proves (RFC 8176): a smart card ("sc") whose
// key never leaves its hardware ("hwk"), as the CNS policy requires of every
// certificate it covers.
var amr = []string{"hwk", "sc"}

// web holds the handlers of the CNS pages.
type web struct {
	a    *authenticator
	host idp.Host
}

// Handler serves the CNS pages below the path the core mounts them on:
//
//	GET /?challenge=      on the issuer: the chooser's link; on to the card listener
//	GET /card?challenge=  on the card listener: reads and judges the card
//	GET /done?r=          on the issuer: completes the login in the browser that started it
//
// A method that is not enabled answers 404.
func (a *authenticator) Handler(host idp.Host) http.Handler {
	if !a.cfg.Enabled {
		return http.NotFoundHandler()
	}
	w := &web{a: a, host: host}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", w.start)
	mux.HandleFunc("GET "+PathCard, w.card)
	mux.HandleFunc("GET "+PathDone, w.done)
	return mux
}

// cardView is the data of the card page.
type cardView struct {
	// Class is the box's look: notice, warning or error.
	Class        string
	Text         string
	Steps        []string
	Retry, Other string
}

// start checks that the challenge belongs to this browser and sends it to
// the card listener, whose handshake asks for the card.
func (w *web) start(rw http.ResponseWriter, r *http.Request) {
	challenge := r.URL.Query().Get("challenge")
	req, err := w.host.LoginRequest(r, challenge)
	if w.down(rw, r, err) {
		return
	}
	if err != nil {
		w.page(rw, r, ui.Locale(r), http.StatusBadRequest, "expired_title", cardView{Class: "error", Text: "expired_request"})
		return
	}
	// The login's language as a preference, not as the language switch
	// (?lang=), which would keep it in a cookie as the citizen's own choice.
	q := url.Values{"challenge": {challenge}, "locale": {req.Locale}}
	http.Redirect(rw, r, w.a.cardURL+w.host.MethodURL(PathCard)+"?"+q.Encode(), http.StatusSeeOther)
}

// card judges the card presented to the card listener. A good one's
// identity is kept under a fresh single-use key, and the browser goes back
// to the issuer with it; a bad one, or none, gets a page that says why and
// what to do.
func (w *web) card(rw http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	// The connection carries the certificate of its handshake to every
	// request it serves: closed after this answer, the browser's next visit
	// (another person's, at a shared browser) makes a new handshake and
	// presents its own card, or none. (HTTP/2: a GOAWAY.) And the page loads
	// nothing from the card listener (its fonts): a connection opened for
	// them would carry the card, idle, to the next visit.
	rw.Header().Set("Connection", "close")
	rw = &noFonts{ResponseWriter: rw}
	challenge := r.URL.Query().Get("challenge")
	loc := ui.Locale(r, r.URL.Query().Get("locale"))
	if challenge == "" || len(challenge) > maxParam {
		w.page(rw, r, loc, http.StatusBadRequest, "bad_link_title", cardView{Class: "error", Text: "bad_link"})
		return
	}
	other := w.a.cfg.Issuer + w.host.LoginURL(challenge)
	// A resumed TLS session (RFC 8446 §2.2, RFC 5077) does not ask for the
	// card: its certificates are those of the handshake it resumes, and the
	// card may have left with its holder. Only a full handshake proves the
	// card's key is here now.
	if r.TLS != nil && r.TLS.DidResume {
		w.refused(rw, r, loc, refuse(ReasonResumedSession, "a resumed TLS session: its certificate was presented in an earlier handshake"), nil, other)
		return
	}
	chain, err := w.host.ClientCertificates(r)
	if err != nil {
		w.a.log.ErrorContext(ctx, "cns: reading the client certificate failed", "err", err)
		w.page(rw, r, loc, http.StatusInternalServerError, "internal_title", cardView{Class: "error", Text: "internal", Other: other})
		return
	}
	v, ref := w.a.verifier.verify(ctx, chain)
	if ref != nil {
		w.refused(rw, r, loc, ref, chain, other)
		return
	}
	leaf := v.chain[0]
	if v.forgiven != nil {
		w.a.metrics.forgiven.Add(1)
		w.a.log.WarnContext(ctx, "cns: card accepted without a revocation status (revocation.fail_open)",
			"reason", string(v.forgiven.Reason), "err", v.forgiven.Err.Error(), "serial", serialHex(leaf))
	}
	id := idp.Identity{
		FiscalNumber: v.holder.FiscalNumber, GivenName: v.holder.GivenName, FamilyName: v.holder.FamilyName,
		Level: idp.LevelDispositivo, Method: idp.MethodCNS, AMR: amr,
	}
	data, err := json.Marshal(id)
	key := randomKey()
	if err == nil {
		err = w.host.SaveState(ctx, key, challenge, data, returnTTL)
	}
	if w.down(rw, r, err) {
		return
	}
	if err != nil {
		w.a.log.ErrorContext(ctx, "cns: keeping the identity read from the card failed", "err", err)
		w.page(rw, r, loc, http.StatusInternalServerError, "internal_title", cardView{Class: "error", Text: "internal", Other: other})
		return
	}
	w.a.metrics.logins.Add(1)
	w.a.log.InfoContext(ctx, "cns: card accepted", "fiscal_number", maskCF(id.FiscalNumber), "card", v.holder.CardID,
		"serial", serialHex(leaf), "issuer", leaf.Issuer.CommonName)
	http.Redirect(rw, r, w.a.cfg.Issuer+w.host.MethodURL(PathDone)+"?"+url.Values{"r": {key}}.Encode(), http.StatusSeeOther)
}

// done completes, on the issuer, a login whose card was read on the card
// listener: only the browser that made the challenge is logged in.
func (w *web) done(rw http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	key := r.URL.Query().Get("r")
	if key == "" || len(key) > maxParam {
		w.page(rw, r, ui.Locale(r), http.StatusBadRequest, "bad_link_title", cardView{Class: "error", Text: "bad_link"})
		return
	}
	challenge, data, err := w.host.TakeState(ctx, key)
	if errors.Is(err, idp.ErrUnknownState) {
		w.a.log.InfoContext(ctx, "cns: unknown, expired or used return key")
		w.page(rw, r, ui.Locale(r), http.StatusBadRequest, "expired_title", cardView{Class: "error", Text: "expired_request"})
		return
	}
	var id idp.Identity
	if err == nil {
		err = json.Unmarshal(data, &id)
	}
	if w.down(rw, r, err) {
		return
	}
	if err != nil {
		w.a.log.ErrorContext(ctx, "cns: reading the identity read from the card failed", "err", err)
		w.page(rw, r, ui.Locale(r), http.StatusInternalServerError, "internal_title", cardView{Class: "error", Text: "internal"})
		return
	}
	// CompleteLogin would refuse it too; this says why, in the log and on
	// the page: a card link forwarded to someone else ends here.
	if _, err := w.host.LoginRequest(r, challenge); w.down(rw, r, err) {
		return
	} else if err != nil {
		w.a.metrics.refused(ReasonUnboundReturn)
		w.a.log.WarnContext(ctx, "cns: login refused", "reason", string(ReasonUnboundReturn),
			"err", "the card was read for a login this browser did not start, or that expired", "fiscal_number", maskCF(id.FiscalNumber))
		w.page(rw, r, ui.Locale(r), http.StatusBadRequest, "refused_title", cardView{Class: "error", Text: "unbound"})
		return
	}
	w.host.CompleteLogin(rw, r, challenge, id)
}

// refused logs a refused card with its reason and shows the page for it.
func (w *web) refused(rw http.ResponseWriter, r *http.Request, loc string, ref *refusal, chain []*x509.Certificate, other string) {
	w.a.metrics.refused(ref.Reason)
	attrs := []any{"reason", string(ref.Reason), "err", ref.Err.Error()}
	if len(chain) > 0 && chain[0] != nil {
		attrs = append(attrs, "serial", serialHex(chain[0]), "subject", maskCN(chain[0].Subject.CommonName), "issuer", chain[0].Issuer.CommonName)
	}
	level := slog.LevelInfo
	if ref.Reason.unavailable() {
		level = slog.LevelWarn
	}
	w.a.log.Log(r.Context(), level, "cns: login refused", attrs...)
	retry := "?" + r.URL.RawQuery
	view := cardView{Class: "error", Retry: retry, Other: other}
	status, title := http.StatusForbidden, "refused_title"
	switch ref.Reason {
	case ReasonNoCertificate:
		title, view.Class, view.Text = "no_card_title", "warning", "no_card"
		view.Steps = []string{"no_card_1", "no_card_2", "no_card_3", "no_card_4"}
	case ReasonExpired, ReasonNotYetValid, ReasonUnknownIssuer, ReasonBadChain, ReasonRevoked, ReasonOCSPUnknown:
		view.Text = map[Reason]string{ReasonExpired: "expired", ReasonNotYetValid: "not_yet_valid",
			ReasonUnknownIssuer: "unknown_issuer", ReasonBadChain: "bad_chain", ReasonRevoked: "revoked",
			ReasonOCSPUnknown: "bad_chain"}[ref.Reason]
	case ReasonKeyUsage, ReasonExtKeyUsage, ReasonPolicy:
		view.Text, view.Steps = "not_cns", []string{"not_cns_1"}
	case ReasonMalformedSubject, ReasonFiscalNumber, ReasonSubjectMismatch:
		view.Text = "bad_subject"
	case ReasonResumedSession:
		view.Text, view.Steps = "resumed", []string{"resumed_1"}
	default: // the revocation status could not be had
		status, view.Class, view.Text = http.StatusServiceUnavailable, "warning", "unavailable"
		rw.Header().Set("Retry-After", strconv.Itoa(int(w.a.cfg.Revocation.RetryAfter/time.Second)))
	}
	w.page(rw, r, loc, status, title, view)
}

// noFonts adds to a card page a second Content-Security-Policy, after the
// one every page carries (ui.Write sets it): a browser enforces both, and
// this one lets no font load from the card listener, whose every connection
// carries a card. The page falls back to the system's fonts.
type noFonts struct {
	http.ResponseWriter
	wrote bool
}

func (w *noFonts) WriteHeader(status int) {
	if !w.wrote {
		w.wrote = true
		w.Header().Add("Content-Security-Policy", "font-src 'none'")
	}
	w.ResponseWriter.WriteHeader(status)
}

func (w *noFonts) Write(b []byte) (int, error) {
	if !w.wrote {
		w.WriteHeader(http.StatusOK)
	}
	return w.ResponseWriter.Write(b)
}

// down answers a request that an outage of Ponte's database stopped (err
// wraps storage.ErrUnavailable) with the come-back page, 503 with
// Retry-After, and reports true: the same request may be sent again.
func (w *web) down(rw http.ResponseWriter, r *http.Request, err error) bool {
	if !errors.Is(err, storage.ErrUnavailable) {
		return false
	}
	w.a.log.WarnContext(r.Context(), "cns: database unavailable", "err", err)
	ui.ComeBack(rw, r, storage.RetryAfter, ui.Unavailable)
	return true
}

// page renders the card page in loc, its wording looked up by key.
func (w *web) page(rw http.ResponseWriter, r *http.Request, loc string, status int, title string, v cardView) {
	t := text[loc]
	if t == nil {
		loc, t = ui.Italian, text[ui.Italian]
	}
	v.Text = t[v.Text]
	for i, s := range v.Steps {
		v.Steps[i] = t[s]
	}
	ui.Render(rw, r, w.a.log, pages["card"], status, ui.Data{Lang: loc, Title: t[title], T: t, View: v})
}

// randomKey is a single-use key of 256 random bits.
func randomKey() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// serialHex is a certificate's serial number for the log.
func serialHex(c *x509.Certificate) string { return hex.EncodeToString(c.SerialNumber.Bytes()) }
