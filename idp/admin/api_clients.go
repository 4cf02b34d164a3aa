package admin

import (
	"encoding/json"
	"net/http"
	"slices"
	"time"

	"github.com/ponte-id/ponte/idp/clients"
	"github.com/ponte-id/ponte/idp/staff"
	"github.com/ponte-id/ponte/internal/fields"
	"github.com/ponte-id/ponte/storage"
)

// clientIn is a relying party's settings as the API takes them (create and
// replace); durations are Go durations ("15m", "720h"), empty for the
// provider's default.
type clientIn struct {
	ClientID                string          `json:"client_id"`
	Name                    string          `json:"client_name"`
	RedirectURIs            []string        `json:"redirect_uris"`
	PostLogoutRedirectURIs  []string        `json:"post_logout_redirect_uris"`
	Scopes                  []string        `json:"scopes"`
	TokenEndpointAuthMethod string          `json:"token_endpoint_auth_method"`
	JWKS                    json.RawMessage `json:"jwks"`
	JWKSURI                 string          `json:"jwks_uri"`
	SigningAlg              string          `json:"id_token_signed_response_alg"`
	SectorIdentifierURI     string          `json:"sector_identifier_uri"`
	PKCEExempt              bool            `json:"pkce_exempt"`
	AccessTokenTTL          string          `json:"access_token_ttl"`
	RefreshTokenTTL         string          `json:"refresh_token_ttl"`
	IDTokenTTL              string          `json:"id_token_ttl"`
	BackchannelLogoutURI    string          `json:"backchannel_logout_uri"`
	BackchannelLogoutSID    bool            `json:"backchannel_logout_session_required"`
}

// spec turns the body into a clients.Spec; a duration that does not parse
// is a field problem (the rest is checked by idp/clients).
func (in clientIn) spec() (clients.Spec, error) {
	errs := fields.Errors{}
	dur := func(field, v string) time.Duration {
		if v == "" {
			return 0
		}
		d, err := time.ParseDuration(v)
		if err != nil {
			errs.Add(field, "not a duration such as 15m or 720h")
		}
		return d
	}
	spec := clients.Spec{
		ID: in.ClientID, Name: in.Name, RedirectURIs: in.RedirectURIs, PostLogoutRedirectURIs: in.PostLogoutRedirectURIs,
		Scopes: in.Scopes, AuthMethod: in.TokenEndpointAuthMethod, JWKSURI: in.JWKSURI, SigningAlg: in.SigningAlg,
		SectorIdentifier: in.SectorIdentifierURI, PKCEExempt: in.PKCEExempt,
		AccessTokenTTL: dur("access_token_ttl", in.AccessTokenTTL), RefreshTokenTTL: dur("refresh_token_ttl", in.RefreshTokenTTL),
		IDTokenTTL:           dur("id_token_ttl", in.IDTokenTTL),
		BackchannelLogoutURI: in.BackchannelLogoutURI, BackchannelLogoutSessionRequired: in.BackchannelLogoutSID,
	}
	if len(in.JWKS) > 0 && string(in.JWKS) != "null" {
		spec.JWKS = in.JWKS
	}
	return spec, errs.Err()
}

// clientOut is a relying party as the API shows it: never a secret hash.
type clientOut struct {
	ClientID                string          `json:"client_id"`
	Name                    string          `json:"client_name"`
	RedirectURIs            []string        `json:"redirect_uris"`
	PostLogoutRedirectURIs  []string        `json:"post_logout_redirect_uris"`
	Scopes                  []string        `json:"scopes"`
	DispositivoAllowed      bool            `json:"dispositivo_allowed"`
	TokenEndpointAuthMethod string          `json:"token_endpoint_auth_method"`
	JWKS                    json.RawMessage `json:"jwks,omitempty"`
	JWKSURI                 string          `json:"jwks_uri,omitempty"`
	SigningAlg              string          `json:"id_token_signed_response_alg"`
	SectorIdentifierURI     string          `json:"sector_identifier_uri,omitempty"`
	PKCEExempt              bool            `json:"pkce_exempt"`
	AccessTokenTTL          string          `json:"access_token_ttl,omitempty"`
	RefreshTokenTTL         string          `json:"refresh_token_ttl,omitempty"`
	IDTokenTTL              string          `json:"id_token_ttl,omitempty"`
	BackchannelLogoutURI    string          `json:"backchannel_logout_uri,omitempty"`
	BackchannelLogoutSID    bool            `json:"backchannel_logout_session_required"`
	PreviousSecretExpiresAt *time.Time      `json:"previous_secret_expires_at,omitempty"`
	CreatedAt               time.Time       `json:"created_at"`
	UpdatedAt               time.Time       `json:"updated_at"`
	// ClientSecret is present only in the answer that created it.
	ClientSecret string `json:"client_secret,omitempty"`
}

func clientView(c storage.Client, secret string, now time.Time) clientOut {
	dur := func(d time.Duration) string {
		if d == 0 {
			return ""
		}
		return d.String()
	}
	out := clientOut{
		ClientID: c.ID, Name: c.Name, RedirectURIs: nonNil(c.RedirectURIs), PostLogoutRedirectURIs: nonNil(c.PostLogoutRedirectURIs),
		Scopes: nonNil(c.Scopes), DispositivoAllowed: slices.Contains(c.Scopes, "inps.dispositivo"),
		TokenEndpointAuthMethod: c.TokenEndpointAuthMethod, JWKS: c.JWKS, JWKSURI: c.JWKSURI, SigningAlg: c.IDTokenSigningAlg,
		SectorIdentifierURI: c.SectorIdentifier, PKCEExempt: c.PKCEExempt,
		AccessTokenTTL: dur(c.AccessTokenTTL), RefreshTokenTTL: dur(c.RefreshTokenTTL), IDTokenTTL: dur(c.IDTokenTTL),
		BackchannelLogoutURI: c.BackchannelLogoutURI, BackchannelLogoutSID: c.BackchannelLogoutSessionRequired,
		CreatedAt: c.CreatedAt, UpdatedAt: c.UpdatedAt, ClientSecret: secret,
	}
	if len(c.PreviousSecretHash) > 0 && now.Before(c.PreviousSecretExpiresAt) {
		t := c.PreviousSecretExpiresAt
		out.PreviousSecretExpiresAt = &t
	}
	return out
}

func nonNil(l []string) []string {
	if l == nil {
		return []string{}
	}
	return l
}

func (a *api) listClients(w http.ResponseWriter, r *http.Request, _ staff.Principal) {
	list, err := a.svc.Clients(r.Context())
	if err != nil {
		a.failed(w, r, err)
		return
	}
	out := make([]clientOut, len(list))
	now := a.svc.now()
	for i, c := range list {
		out[i] = clientView(c, "", now)
	}
	writeJSON(w, http.StatusOK, map[string]any{"clients": out})
}

func (a *api) createClient(w http.ResponseWriter, r *http.Request, p staff.Principal) {
	var in clientIn
	if !readJSON(w, r, &in) {
		return
	}
	spec, err := in.spec()
	if err != nil {
		a.failed(w, r, err)
		return
	}
	c, secret, err := a.svc.CreateClient(r.Context(), p.Actor, spec)
	if err != nil {
		a.failed(w, r, err)
		return
	}
	w.Header().Set("Location", Prefix+"/clients/"+c.ID)
	writeJSON(w, http.StatusCreated, clientView(c, secret, a.svc.now()))
}

func (a *api) getClient(w http.ResponseWriter, r *http.Request, _ staff.Principal) {
	c, err := a.svc.Client(r.Context(), r.PathValue("id"))
	if err != nil {
		a.failed(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, clientView(c, "", a.svc.now()))
}

func (a *api) updateClient(w http.ResponseWriter, r *http.Request, p staff.Principal) {
	var in clientIn
	if !readJSON(w, r, &in) {
		return
	}
	id := r.PathValue("id")
	if in.ClientID != "" && in.ClientID != id {
		a.failed(w, r, fields.One("client_id", "cannot change; it must be empty or %q", id))
		return
	}
	spec, err := in.spec()
	if err != nil {
		a.failed(w, r, err)
		return
	}
	c, secret, err := a.svc.UpdateClient(r.Context(), p.Actor, id, spec)
	if err != nil {
		a.failed(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, clientView(c, secret, a.svc.now()))
}

func (a *api) deleteClient(w http.ResponseWriter, r *http.Request, p staff.Principal) {
	if err := a.svc.DeleteClient(r.Context(), p.Actor, r.PathValue("id")); err != nil {
		a.failed(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// rotateSecret: {"overlap": "24h"} (optional; none ends the old secret at once).
func (a *api) rotateSecret(w http.ResponseWriter, r *http.Request, p staff.Principal) {
	var in struct {
		Overlap string `json:"overlap"`
	}
	if !readJSON(w, r, &in) {
		return
	}
	var overlap time.Duration
	if in.Overlap != "" {
		d, err := time.ParseDuration(in.Overlap)
		if err != nil {
			a.failed(w, r, fields.One("overlap", "not a duration such as 24h"))
			return
		}
		overlap = d
	}
	c, secret, err := a.svc.RotateSecret(r.Context(), p.Actor, r.PathValue("id"), overlap)
	if err != nil {
		a.failed(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, clientView(c, secret, a.svc.now()))
}
