package testidp

import (
	"embed"
	"encoding/base64"
	"html/template"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/beevik/etree"
	dsig "github.com/russellhaering/goxmldsig"

	"github.com/ponte-id/ponte/internal/ui"
)

//go:embed templates/*.html
var templateFS embed.FS

var pages = ui.Pages(templateFS, "templates", "login")

var text = map[string]map[string]string{
	"it": {"testidp_title": "Gestore SPID di prova", "testidp_intro": "Identity provider locale per sviluppo e dimostrazioni: nessuna credenziale reale.",
		"testidp_pick": "Entra come", "testidp_login": "Entra (SpidL2)", "testidp_cancel": "Annulla"},
	"en": {"testidp_title": "Test SPID provider", "testidp_intro": "A local identity provider for development and demos: no real credentials.",
		"testidp_pick": "Log in as", "testidp_login": "Log in (SpidL2)", "testidp_cancel": "Cancel"},
}

// Handler serves the identity provider: GET /sso (HTTP-Redirect) and POST
// /sso (HTTP-POST) take a signed AuthnRequest of the trusted SP and show the
// citizens to log in as; POST /login answers with a signed Response posted
// to the SP's ACS; /slo answers a LogoutRequest.
func (p *IdP) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /sso", p.sso)
	mux.HandleFunc("POST /sso", p.sso)
	mux.HandleFunc("POST /login", p.login)
	mux.HandleFunc("GET /slo", p.slo)
	mux.HandleFunc("POST /slo", p.slo)
	mux.HandleFunc("GET /metadata", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/samlmetadata+xml")
		_, _ = w.Write(p.Metadata())
	})
	return http.MaxBytesHandler(mux, 1<<20)
}

type loginView struct {
	Action, Request, Relay string
	Users                  []User
}

// readRequest reads a signed message of the trusted SP in either binding.
func (p *IdP) readRequest(r *http.Request, param string) (*etree.Element, string, error) {
	s, err := p.trusted()
	if err != nil {
		return nil, "", err
	}
	var msg []byte
	relay := ""
	if r.Method == http.MethodGet {
		var vals map[string][]string
		if msg, vals, err = readRedirect(r.URL.RawQuery, param, s.Cert); err != nil {
			return nil, "", err
		}
		if rs := vals["RelayState"]; len(rs) > 0 {
			relay = rs[0]
		}
	} else {
		if msg, err = base64.StdEncoding.DecodeString(r.PostFormValue(param)); err != nil {
			return nil, "", err
		}
		relay = r.PostFormValue("RelayState")
	}
	doc := etree.NewDocument()
	if err := doc.ReadFromBytes(msg); err != nil || doc.Root() == nil {
		return nil, "", errBadRequest
	}
	root := doc.Root()
	if r.Method == http.MethodPost {
		vc := dsig.NewDefaultValidationContext(&dsig.MemoryX509CertificateStore{Roots: []*x509Cert{s.Cert}})
		vc.IdAttribute = "ID"
		if root, err = vc.Validate(root); err != nil {
			return nil, "", err
		}
	}
	if iss := root.FindElement("./Issuer"); iss == nil || strings.TrimSpace(iss.Text()) != s.EntityID {
		return nil, "", errBadRequest
	}
	return root, relay, nil
}

// sso shows the citizens for a signed AuthnRequest.
func (p *IdP) sso(w http.ResponseWriter, r *http.Request) {
	req, relay, err := p.readRequest(r, "SAMLRequest")
	if err != nil {
		http.Error(w, "testidp: bad AuthnRequest: "+err.Error(), http.StatusBadRequest)
		return
	}
	id := req.SelectAttrValue("ID", "")
	level := SpidL2
	if ref := req.FindElement("./RequestedAuthnContext/AuthnContextClassRef"); ref != nil && strings.HasPrefix(ref.Text(), "https://www.spid.gov.it/SpidL") {
		level = strings.TrimSpace(ref.Text())
	}
	token := newID()
	p.mu.Lock()
	for k, v := range p.pending {
		if time.Since(v.At) > 15*time.Minute {
			delete(p.pending, k)
		}
	}
	if len(p.pending) > 10000 {
		p.mu.Unlock()
		http.Error(w, "testidp: too many pending logins", http.StatusServiceUnavailable)
		return
	}
	p.pending[token] = pendingLogin{RequestID: id, Relay: relay, Level: level, At: time.Now()}
	p.mu.Unlock()
	loc := ui.Locale(r)
	ui.Render(w, r, slog.Default(), pages["login"], http.StatusOK, ui.Data{Lang: loc, Title: text[loc]["testidp_title"], T: text[loc],
		View: loginView{Action: p.cfg.BaseURL + "/login", Request: token, Relay: relay, Users: p.Users()}})
}

// login answers the pending request as the citizen chosen (or cancelled:
// ErrorCode nr25), posting the Response to the SP's ACS.
func (p *IdP) login(w http.ResponseWriter, r *http.Request) {
	p.mu.Lock()
	pl, ok := p.pending[r.PostFormValue("request")]
	delete(p.pending, r.PostFormValue("request"))
	p.mu.Unlock()
	if !ok {
		http.Error(w, "testidp: unknown or used request", http.StatusBadRequest)
		return
	}
	resp := Response{RequestID: pl.RequestID, Level: pl.Level}
	if r.PostFormValue("action") == "cancel" {
		resp.Status, resp.SubStatus, resp.StatusMessage = "urn:oasis:names:tc:SAML:2.0:status:Responder", "urn:oasis:names:tc:SAML:2.0:status:AuthnFailed", "ErrorCode nr25"
	} else {
		found := false
		for _, u := range p.Users() {
			if u.FiscalNumber == r.PostFormValue("user") {
				resp.User, found = u, true
			}
		}
		if !found {
			http.Error(w, "testidp: unknown user", http.StatusBadRequest)
			return
		}
	}
	b, err := p.Build(resp)
	if err != nil {
		http.Error(w, "testidp: "+err.Error(), http.StatusInternalServerError)
		return
	}
	s, _ := p.trusted()
	AutoPost(w, s.ACS, map[string]string{"SAMLResponse": base64.StdEncoding.EncodeToString(b), "RelayState": pl.Relay})
}

// slo answers the SP's LogoutRequest with a signed LogoutResponse
// (HTTP-Redirect) to the SP's single logout endpoint.
func (p *IdP) slo(w http.ResponseWriter, r *http.Request) {
	req, relay, err := p.readRequest(r, "SAMLRequest")
	if err != nil {
		http.Error(w, "testidp: bad LogoutRequest: "+err.Error(), http.StatusBadRequest)
		return
	}
	s, _ := p.trusted()
	doc := etree.NewDocument()
	resp := doc.CreateElement("samlp:LogoutResponse")
	resp.CreateAttr("xmlns:samlp", nsProtocol)
	resp.CreateAttr("xmlns:saml", nsAssertion)
	resp.CreateAttr("ID", newID())
	resp.CreateAttr("Version", "2.0")
	resp.CreateAttr("IssueInstant", samlTime(p.cfg.Now()))
	resp.CreateAttr("Destination", s.SLO)
	resp.CreateAttr("InResponseTo", req.SelectAttrValue("ID", ""))
	issuer(resp, p.cfg.EntityID)
	resp.CreateElement("samlp:Status").CreateElement("samlp:StatusCode").CreateAttr("Value", statusSuccess)
	b, _ := doc.WriteToBytes()
	u, err := redirectURL(s.SLO, "SAMLResponse", b, relay, p.kp)
	if err != nil {
		http.Error(w, "testidp: "+err.Error(), http.StatusInternalServerError)
		return
	}
	http.Redirect(w, r, u, http.StatusFound)
}

var autoPostPage = template.Must(template.New("p").Parse(`<!DOCTYPE html><html lang="it"><head><meta charset="utf-8"><title>SPID</title></head>
<body><form method="post" action="{{.Action}}">{{range $k, $v := .Values}}<input type="hidden" name="{{$k}}" value="{{$v}}">{{end}}
<button type="submit">Prosegui / Continue</button></form></body></html>`))

// AutoPost writes a page with a form posting values to action (the person
// presses its button; the page runs no script).
func AutoPost(w http.ResponseWriter, action string, values map[string]string) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	_ = autoPostPage.Execute(w, struct {
		Action string
		Values map[string]string
	}{action, values})
}
