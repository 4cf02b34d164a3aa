package provider

import (
	"errors"
	"net/http"
	"net/url"
	"slices"

	"github.com/ory/fosite/token/jwt"

	"github.com/ponte-id/ponte/idp"
	"github.com/ponte-id/ponte/storage"
)

// logoutView is the data of the logout page.
type logoutView struct {
	Done   bool
	Params map[string]string
}

var (
	msgBadLogout = message{
		"La richiesta di uscita non è valida.",
		"The logout request is not valid.",
	}
)

// logout is the RP-initiated logout endpoint (OpenID Connect RP-Initiated
// Logout 1.0). It redirects only to a post_logout_redirect_uri registered, to
// the letter, by the client named by client_id or by the id_token_hint. Without
// a valid hint for the current session, it asks the person to confirm.
func (p *Provider) logout(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	if err := r.ParseForm(); err != nil {
		p.errorPage(w, r, http.StatusBadRequest, msgBadLogout)
		return
	}
	hint, clientID := r.Form.Get("id_token_hint"), r.Form.Get("client_id")
	redirect, state := r.Form.Get("post_logout_redirect_uri"), r.Form.Get("state")

	var hintSub string
	if hint != "" {
		tok, err := p.cfg.Keys.Signer().Decode(ctx, hint)
		var ve *jwt.ValidationError
		if err != nil && !(errors.As(err, &ve) && ve.Has(jwt.ValidationErrorExpired) && tok != nil) {
			p.log.InfoContext(ctx, "logout with an invalid id_token_hint", "err", err)
			p.errorPage(w, r, http.StatusBadRequest, msgBadLogout)
			return
		}
		hintSub, _ = tok.Claims["sub"].(string)
		aud := audience(tok.Claims["aud"])
		switch {
		case clientID == "" && len(aud) > 0:
			clientID = aud[0]
		case clientID != "" && !slices.Contains(aud, clientID):
			p.errorPage(w, r, http.StatusBadRequest, msgBadLogout)
			return
		}
	}

	var (
		target *url.URL
		c      *client
	)
	if clientID != "" {
		stored, err := p.store.GetClient(ctx, clientID)
		if unavailable(err) {
			p.comeBack(w, r, "logout", err)
			return
		}
		if err != nil {
			p.errorPage(w, r, http.StatusBadRequest, msgBadLogout)
			return
		}
		c = newClient(stored, p.now)
	}
	if redirect != "" {
		if c == nil || !slices.Contains(c.PostLogoutRedirectURIs, redirect) {
			p.log.InfoContext(ctx, "logout to an unregistered post_logout_redirect_uri refused", "client", clientID)
			p.errorPage(w, r, http.StatusBadRequest, msgBadLogout)
			return
		}
		target, _ = url.Parse(redirect)
		if state != "" {
			q := target.Query()
			q.Set("state", state)
			target.RawQuery = q.Encode()
		}
	}

	sso, _, loggedIn, err := p.readSession(r)
	if err != nil { // logged in or not, nobody can tell now: nothing is ended
		p.comeBack(w, r, "logout", err)
		return
	}
	hintMatches := hintSub != "" && c != nil && loggedIn && p.publicSubject(c, sso.Subject) == hintSub
	confirmed := r.Method == http.MethodPost && r.PostForm.Get("confirm") == "yes"
	loc := locale(r, r.Form)
	if loggedIn && !hintMatches && !confirmed {
		params := map[string]string{}
		for _, k := range []string{"client_id", "post_logout_redirect_uri", "state", "ui_locales"} {
			if v := r.Form.Get(k); v != "" {
				params[k] = v
			}
		}
		if clientID != "" {
			params["client_id"] = clientID
		}
		p.render(w, r, loc, http.StatusOK, "logout", logoutView{Params: params})
		return
	}
	if loggedIn {
		if err := p.endSession(w, r); err != nil {
			p.comeBack(w, r, "logout", err)
			return
		}
		p.log.InfoContext(ctx, "citizen logged out", "subject", sso.Subject, "client", clientID)
		if p.tellMethod(w, r, sso, target) {
			return
		}
	}
	if target != nil {
		http.Redirect(w, r, target.String(), http.StatusSeeOther)
		return
	}
	p.render(w, r, loc, http.StatusOK, "logout", logoutView{Done: true})
}

// tellMethod hands an ended session's method data to the method that made the
// login, if it takes part in logouts (idp.LogoutParticipant); it reports
// whether the method took over the response, promising to send the browser
// on to target (or to the logout page).
func (p *Provider) tellMethod(w http.ResponseWriter, r *http.Request, sso storage.Session, target *url.URL) bool {
	a, ok := p.methods[idp.Method(sso.Method)]
	if !ok {
		return false
	}
	lp, ok := a.(idp.LogoutParticipant)
	if !ok {
		return false
	}
	next := p.cfg.Issuer + PathLogout
	if target != nil {
		next = target.String()
	}
	return lp.Logout(w, r, sso.MethodData, next)
}

// audience reads an aud claim, a string or an array of strings.
func audience(v any) []string {
	switch a := v.(type) {
	case string:
		return []string{a}
	case []any:
		out := make([]string, 0, len(a))
		for _, s := range a {
			if str, ok := s.(string); ok {
				out = append(out, str)
			}
		}
		return out
	case []string:
		return a
	}
	return nil
}
