package spid

import (
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/beevik/etree"
)

// logoutState is what Ponte keeps about a LogoutRequest it sent until the
// identity provider answers: where the browser goes next.
type logoutState struct {
	IDP  string `json:"idp"`
	Next string `json:"next"`
}

// The keys of the method's state (Host.SaveState) are namespaced by the
// message they wait for: a Response's InResponseTo can only take an
// AuthnRequest's state, a LogoutResponse's only a LogoutRequest's. Without
// the prefix a message naming the other kind's ID would take (and spend)
// its state: a login or a logout broken by a message that was never its
// answer.
func authnStateKey(requestID string) string  { return "authn:" + requestID }
func logoutStateKey(requestID string) string { return "logout:" + requestID }

// Logout tells the identity provider of a SPID login that the citizen left
// Ponte (SAML single logout, SP-initiated): a signed LogoutRequest naming
// the NameID and SessionIndex the login kept, sent through the browser; the
// identity provider's LogoutResponse comes back to /slo, which sends the
// browser on to next. It returns false (the core goes on by itself) when
// the identity provider is gone or has no single logout endpoint.
func (a *authenticator) Logout(w http.ResponseWriter, r *http.Request, data []byte, next string) bool {
	if !a.enabled || a.web == nil {
		return false
	}
	var sd sessionData
	if err := json.Unmarshal(data, &sd); err != nil {
		a.log.WarnContext(r.Context(), "SPID logout: unreadable session data", "err", err)
		return false
	}
	p, ok := a.registry.get(sd.IDP)
	if !ok {
		return false
	}
	binding := bindingRedirect
	if p.SLO[binding] == "" {
		binding = bindingPOST
	}
	dest := p.SLO[binding]
	if dest == "" {
		return false
	}
	id := newID()
	st, _ := json.Marshal(logoutState{IDP: p.EntityID, Next: next})
	if err := a.web.host.SaveState(r.Context(), logoutStateKey(id), "", st, a.cfg.RequestTTL); err != nil {
		a.log.ErrorContext(r.Context(), "SPID logout: saving the request failed", "err", err)
		return false
	}
	doc := etree.NewDocument()
	req := doc.CreateElement("samlp:LogoutRequest")
	req.CreateAttr("xmlns:samlp", nsProtocol)
	req.CreateAttr("xmlns:saml", nsAssertion)
	req.CreateAttr("ID", id)
	req.CreateAttr("Version", "2.0")
	req.CreateAttr("IssueInstant", samlTime(a.now()))
	req.CreateAttr("Destination", dest)
	iss := req.CreateElement("saml:Issuer")
	iss.CreateAttr("Format", formatEntity)
	iss.CreateAttr("NameQualifier", a.entityID)
	iss.SetText(a.entityID)
	nid := req.CreateElement("saml:NameID")
	nid.CreateAttr("Format", formatTransient)
	nid.CreateAttr("NameQualifier", sd.NameQualifier)
	nid.SetText(sd.NameID)
	if sd.SessionIndex != "" {
		req.CreateElement("samlp:SessionIndex").SetText(sd.SessionIndex)
	}
	if err := a.sendMessage(w, r, doc, req, binding, dest, "SAMLRequest", newID()[1:]); err != nil {
		a.log.ErrorContext(r.Context(), "SPID logout: sending the request failed", "err", err)
		return false
	}
	a.log.InfoContext(r.Context(), "SPID LogoutRequest sent", "idp", p.EntityID)
	return true
}

// sendMessage signs and sends a SAML message through the browser: a 302
// (HTTP-Redirect, signature in the query) or an auto-post form (HTTP-POST,
// enveloped signature after the Issuer).
func (a *authenticator) sendMessage(w http.ResponseWriter, r *http.Request, doc *etree.Document, el *etree.Element, binding, dest, param, relay string) error {
	if binding == bindingPOST {
		if err := signEnveloped(el, a.kp, childIndex(el, nsAssertion, "Issuer")); err != nil {
			return err
		}
		b, err := doc.WriteToBytes()
		if err != nil {
			return err
		}
		v := url.Values{param: {base64.StdEncoding.EncodeToString(b)}}
		if relay != "" {
			v.Set("RelayState", relay)
		}
		writeAutoPost(w, dest, v)
		return nil
	}
	b, err := doc.WriteToBytes()
	if err != nil {
		return err
	}
	u, err := redirectURL(dest, param, b, relay, a.kp)
	if err != nil {
		return err
	}
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, u, http.StatusFound)
	return nil
}

// slo is the single logout endpoint (HTTP-Redirect and HTTP-POST), a
// cross-site path: an identity provider's LogoutResponse to Ponte's
// request, or its own LogoutRequest.
func (w *web) slo(rw http.ResponseWriter, r *http.Request) {
	max := w.a.cfg.MaxResponseBytes
	r.Body = http.MaxBytesReader(rw, r.Body, int64(max)+4096)
	if err := r.ParseForm(); err != nil {
		w.courtesy(rw, r, "", "refused", fmt.Errorf("single logout: %w", err))
		return
	}
	param := "SAMLResponse"
	if r.Form.Get("SAMLRequest") != "" {
		param = "SAMLRequest"
	}
	root, p, err := w.readMessage(r, param)
	if err != nil {
		w.courtesy(rw, r, "", "refused", fmt.Errorf("single logout: %w", err))
		return
	}
	if param == "SAMLResponse" {
		w.logoutResponse(rw, r, root, p)
		return
	}
	w.logoutRequest(rw, r, root, p)
}

// readMessage reads a signed SAML message of either binding: the element
// to read (what the signature covers) and the identity provider that signed
// it (named by the Issuer, checked by the signature). Each binding's
// encoding is decoded once: the XML read is the XML verified.
func (w *web) readMessage(r *http.Request, param string) (*etree.Element, *identityProvider, error) {
	max := w.a.cfg.MaxResponseBytes
	var raw []byte
	var redirect *redirectMessage
	if r.Method == http.MethodGet {
		m, err := readRedirect(r.URL.RawQuery, param, max)
		if err != nil {
			return nil, nil, err
		}
		raw, redirect = m.XML, &m
	} else {
		v := r.PostForm.Get(param)
		if len(v) > max {
			return nil, nil, errors.New("the message is too large")
		}
		var err error
		if raw, err = base64.StdEncoding.DecodeString(strings.Join(strings.Fields(v), "")); err != nil {
			return nil, nil, errors.New("the message is not base64")
		}
	}
	root, err := parseXML(raw)
	if err != nil {
		return nil, nil, err
	}
	iss, _ := child(root, nsAssertion, "Issuer")
	if iss == nil {
		return nil, nil, errors.New("no Issuer")
	}
	p, ok := w.a.registry.get(strings.TrimSpace(iss.Text()))
	if !ok {
		return nil, nil, fmt.Errorf("unknown issuer %q", strings.TrimSpace(iss.Text()))
	}
	if dest, _ := attr(root, "Destination"); dest != w.base+"/slo" {
		return nil, nil, fmt.Errorf("the Destination %q is not this endpoint", dest)
	}
	if redirect != nil {
		keys := make([]*rsa.PublicKey, 0, len(p.Certs))
		for _, c := range p.Certs {
			if k, ok := c.PublicKey.(*rsa.PublicKey); ok {
				keys = append(keys, k)
			}
		}
		if err := redirect.verify(keys); err != nil {
			return nil, nil, err
		}
		return root, p, nil
	}
	signed, err := verifySigned(root, p.Certs, w.a.clock)
	if err != nil {
		return nil, nil, err
	}
	return signed, p, nil
}

// logoutResponse ends an SP-initiated logout: the answer to Ponte's own
// request (taken once), whatever its status, sends the browser on.
func (w *web) logoutResponse(rw http.ResponseWriter, r *http.Request, root *etree.Element, p *identityProvider) {
	if !is(root, nsProtocol, "LogoutResponse") {
		w.courtesy(rw, r, "", "refused", errors.New("single logout: not a LogoutResponse"))
		return
	}
	irt, _ := attr(root, "InResponseTo")
	_, data, err := w.host.TakeState(r.Context(), logoutStateKey(irt))
	var st logoutState
	if err == nil {
		err = json.Unmarshal(data, &st)
	}
	if err != nil || st.IDP != p.EntityID {
		w.courtesy(rw, r, "", "expired", fmt.Errorf("single logout: InResponseTo names no pending request: %v", err))
		return
	}
	status := root.FindElement("./Status/StatusCode")
	if status == nil || status.SelectAttrValue("Value", "") != statusSuccess {
		w.a.log.WarnContext(r.Context(), "SPID identity provider did not log out", "idp", p.EntityID)
	}
	http.Redirect(rw, r, st.Next, http.StatusSeeOther)
}

// logoutRequest answers an identity provider's own LogoutRequest (IdP-
// initiated single logout): the SSO sessions at Ponte that the logins of the
// NameID it names started are ended (Host.EndSessions), and the answer is
// Success.
func (w *web) logoutRequest(rw http.ResponseWriter, r *http.Request, root *etree.Element, p *identityProvider) {
	if !is(root, nsProtocol, "LogoutRequest") {
		w.courtesy(rw, r, "", "refused", errors.New("single logout: not a LogoutRequest"))
		return
	}
	id, _ := attr(root, "ID")
	if id == "" {
		w.courtesy(rw, r, "", "refused", errors.New("single logout: a LogoutRequest without ID"))
		return
	}
	now := w.a.now()
	issued, err := w.checkLogoutTimes(root, now)
	if err != nil {
		w.courtesy(rw, r, "", "refused", fmt.Errorf("single logout: %w", err))
		return
	}
	// Kept until the request could no longer pass checkLogoutTimes.
	until := later(issued, now).Add(w.a.cfg.RequestTTL + w.a.cfg.ClockSkew)
	if err := w.host.UseOnce(r.Context(), "logout:"+p.EntityID+"|"+id, until); err != nil {
		w.courtesy(rw, r, "", "refused", fmt.Errorf("single logout: %w", err))
		return
	}
	nid, _ := child(root, nsAssertion, "NameID")
	if nid == nil || strings.TrimSpace(nid.Text()) == "" {
		w.courtesy(rw, r, "", "refused", errors.New("single logout: a LogoutRequest without NameID"))
		return
	}
	nq, _ := attr(nid, "NameQualifier")
	ended, err := w.host.EndSessions(r.Context(), sessionKey(p.EntityID, nq, strings.TrimSpace(nid.Text())))
	if err != nil {
		w.a.log.ErrorContext(r.Context(), "SPID single logout: ending the sessions failed", "err", err)
		w.courtesy(rw, r, "", "logout_failed", err)
		return
	}
	binding := bindingRedirect
	if r.Method == http.MethodPost || p.SLO[binding] == "" {
		binding = bindingPOST
	}
	dest := p.SLO[binding]
	doc := etree.NewDocument()
	resp := doc.CreateElement("samlp:LogoutResponse")
	resp.CreateAttr("xmlns:samlp", nsProtocol)
	resp.CreateAttr("xmlns:saml", nsAssertion)
	resp.CreateAttr("ID", newID())
	resp.CreateAttr("Version", "2.0")
	resp.CreateAttr("IssueInstant", samlTime(w.a.now()))
	resp.CreateAttr("Destination", dest)
	resp.CreateAttr("InResponseTo", id)
	iss := resp.CreateElement("saml:Issuer")
	iss.CreateAttr("Format", formatEntity)
	iss.CreateAttr("NameQualifier", w.a.entityID)
	iss.SetText(w.a.entityID)
	sc := resp.CreateElement("samlp:Status").CreateElement("samlp:StatusCode")
	sc.CreateAttr("Value", statusSuccess)
	w.a.log.InfoContext(r.Context(), "SPID LogoutRequest from the identity provider answered", "idp", p.EntityID, "sessions", ended)
	if err := w.a.sendMessage(rw, r, doc, resp, binding, dest, "SAMLResponse", r.Form.Get("RelayState")); err != nil {
		w.courtesy(rw, r, "", "refused", err)
	}
}

// checkLogoutTimes checks the times of an identity provider's LogoutRequest
// at now, with the tolerance a Response gets (spid.request_ttl for its age,
// spid.clock_skew for the identity provider's clock): an IssueInstant in UTC,
// no older than request_ttl and not in the future, give or take clock_skew;
// a NotOnOrAfter, when present, still to come (SAML core §3.7.1). It
// returns the IssueInstant.
func (w *web) checkLogoutTimes(req *etree.Element, now time.Time) (time.Time, error) {
	ii, present := attr(req, "IssueInstant")
	issued, err := parseInstant("LogoutRequest/@IssueInstant", "IssueInstant", ii, present)
	if err != nil {
		return time.Time{}, err
	}
	skew := w.a.cfg.ClockSkew
	if issued.Before(now.Add(-w.a.cfg.RequestTTL - skew)) {
		return time.Time{}, refuse("LogoutRequest/@IssueInstant", "%s is older than %v", issued.Format(time.RFC3339), w.a.cfg.RequestTTL)
	}
	if issued.After(now.Add(skew)) {
		return time.Time{}, refuse("LogoutRequest/@IssueInstant", "%s is in the future", issued.Format(time.RFC3339))
	}
	if noa, present := attr(req, "NotOnOrAfter"); present {
		until, err := parseInstant("LogoutRequest/@NotOnOrAfter", "NotOnOrAfter", noa, present)
		if err != nil {
			return time.Time{}, err
		}
		if !now.Before(until.Add(skew)) {
			return time.Time{}, refuse("LogoutRequest/@NotOnOrAfter", "expired at %s", until.Format(time.RFC3339))
		}
	}
	return issued, nil
}

// later is the later of a and b.
func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// loggedOut is where a logout without a next address ends.
func (w *web) loggedOut(rw http.ResponseWriter, r *http.Request) {
	w.render(rw, r, http.StatusOK, "error", "logged_out", errorView{})
}
