package admin

import (
	"net/http"
	"time"

	"github.com/ponte-id/ponte/idp/staff"
	"github.com/ponte-id/ponte/internal/fields"
	"github.com/ponte-id/ponte/storage"
)

// keyOut is a signing key as the API shows it: never its private part.
type keyOut struct {
	KID       string     `json:"kid"`
	Alg       string     `json:"alg"`
	State     string     `json:"state"`
	NotBefore time.Time  `json:"not_before"`
	NotAfter  *time.Time `json:"not_after,omitempty"`
	CreatedAt time.Time  `json:"created_at"`
}

func keyView(k storage.SigningKey) keyOut {
	out := keyOut{KID: k.ID, Alg: k.Algorithm, State: string(k.State), NotBefore: k.NotBefore, CreatedAt: k.CreatedAt}
	if !k.NotAfter.IsZero() {
		t := k.NotAfter
		out.NotAfter = &t
	}
	return out
}

func (a *api) listKeys(w http.ResponseWriter, r *http.Request, _ staff.Principal) {
	list, err := a.svc.Keys(r.Context())
	if err != nil {
		a.failed(w, r, err)
		return
	}
	out := make([]keyOut, len(list))
	for i, k := range list {
		out[i] = keyView(k)
	}
	writeJSON(w, http.StatusOK, map[string]any{"keys": out})
}

// rotateKey: {"alg": "ES256"}.
func (a *api) rotateKey(w http.ResponseWriter, r *http.Request, p staff.Principal) {
	var in struct {
		Alg string `json:"alg"`
	}
	if !readJSON(w, r, &in) {
		return
	}
	k, err := a.svc.RotateKey(r.Context(), p.Actor, in.Alg)
	if err != nil {
		a.failed(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, keyView(k))
}

// grantOut is one role held.
type grantOut struct {
	FiscalNumber string    `json:"fiscal_number"`
	Role         string    `json:"role"`
	GrantedBy    string    `json:"granted_by"`
	GrantedAt    time.Time `json:"granted_at"`
}

func grantView(g storage.StaffGrant) grantOut {
	return grantOut{FiscalNumber: g.FiscalNumber, Role: g.Role, GrantedBy: g.GrantedBy, GrantedAt: g.GrantedAt}
}

func (a *api) listStaff(w http.ResponseWriter, r *http.Request, _ staff.Principal) {
	list, err := a.svc.staff.Grants(r.Context())
	if err != nil {
		a.failed(w, r, err)
		return
	}
	out := make([]grantOut, len(list))
	for i, g := range list {
		out[i] = grantView(g)
	}
	writeJSON(w, http.StatusOK, map[string]any{"grants": out})
}

// grant: {"fiscal_number": "...", "role": "..."}.
func (a *api) grant(w http.ResponseWriter, r *http.Request, p staff.Principal) {
	var in struct {
		FiscalNumber string `json:"fiscal_number"`
		Role         string `json:"role"`
	}
	if !readJSON(w, r, &in) {
		return
	}
	g, err := a.svc.staff.Grant(r.Context(), p.Actor, in.FiscalNumber, in.Role)
	if err != nil {
		a.failed(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, grantView(g))
}

func (a *api) revoke(w http.ResponseWriter, r *http.Request, p staff.Principal) {
	if err := a.svc.staff.Revoke(r.Context(), p.Actor, r.PathValue("fiscal_number"), r.PathValue("role")); err != nil {
		a.failed(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// tokenOut is an API token as listed: never its secret (not even its hash).
type tokenOut struct {
	ID        string     `json:"id"`
	Name      string     `json:"name"`
	Roles     []string   `json:"roles"`
	CreatedBy string     `json:"created_by"`
	CreatedAt time.Time  `json:"created_at"`
	ExpiresAt time.Time  `json:"expires_at"`
	RevokedAt *time.Time `json:"revoked_at,omitempty"`
	// Token is present only in the answer that created it.
	Token string `json:"token,omitempty"`
}

func tokenView(t storage.APIToken, token string) tokenOut {
	out := tokenOut{ID: t.ID, Name: t.Name, Roles: nonNil(t.Roles), CreatedBy: t.CreatedBy, CreatedAt: t.CreatedAt, ExpiresAt: t.ExpiresAt, Token: token}
	if !t.RevokedAt.IsZero() {
		at := t.RevokedAt
		out.RevokedAt = &at
	}
	return out
}

func (a *api) listTokens(w http.ResponseWriter, r *http.Request, _ staff.Principal) {
	list, err := a.svc.staff.Tokens(r.Context())
	if err != nil {
		a.failed(w, r, err)
		return
	}
	out := make([]tokenOut, len(list))
	for i, t := range list {
		out[i] = tokenView(t, "")
	}
	writeJSON(w, http.StatusOK, map[string]any{"tokens": out})
}

// createToken: {"name": "...", "roles": [...], "ttl": "720h"}.
func (a *api) createToken(w http.ResponseWriter, r *http.Request, p staff.Principal) {
	var in struct {
		Name  string   `json:"name"`
		Roles []string `json:"roles"`
		TTL   string   `json:"ttl"`
	}
	if !readJSON(w, r, &in) {
		return
	}
	ttl, err := time.ParseDuration(in.TTL)
	if err != nil {
		a.failed(w, r, fields.One("ttl", "not a duration such as 720h"))
		return
	}
	t, token, err := a.svc.staff.CreateToken(r.Context(), p.Actor, staff.TokenSpec{Name: in.Name, Roles: in.Roles, TTL: ttl})
	if err != nil {
		a.failed(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, tokenView(t, token))
}

func (a *api) revokeToken(w http.ResponseWriter, r *http.Request, p staff.Principal) {
	if err := a.svc.staff.RevokeToken(r.Context(), p.Actor, r.PathValue("id")); err != nil {
		a.failed(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// endSessions ends a citizen's SSO sessions, with their back-channel logouts.
func (a *api) endSessions(w http.ResponseWriter, r *http.Request, p staff.Principal) {
	n, err := a.svc.EndCitizenSessions(r.Context(), p.Actor, r.PathValue("fiscal_number"))
	if err != nil {
		a.failed(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]int{"ended": n})
}
