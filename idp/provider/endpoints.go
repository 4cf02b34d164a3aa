package provider

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"

	"github.com/ory/fosite"

	"github.com/ponte-id/ponte/idp"
	"github.com/ponte-id/ponte/idp/clients"
	"github.com/ponte-id/ponte/storage"
)

// discovery serves the OpenID Provider Metadata (OIDC Discovery §3).
func (p *Provider) discovery(w http.ResponseWriter, _ *http.Request) {
	iss := p.cfg.Issuer
	algs := p.cfg.Keys.Algorithms()
	writeJSON(w, http.StatusOK, map[string]any{
		"issuer":                                           iss,
		"authorization_endpoint":                           iss + PathAuthorize,
		"token_endpoint":                                   iss + PathToken,
		"userinfo_endpoint":                                iss + PathUserinfo,
		"jwks_uri":                                         iss + PathJWKS,
		"revocation_endpoint":                              iss + PathRevoke,
		"introspection_endpoint":                           iss + PathIntrospect,
		"pushed_authorization_request_endpoint":            iss + PathPAR,
		"end_session_endpoint":                             iss + PathLogout,
		"backchannel_logout_supported":                     true,
		"backchannel_logout_session_supported":             true,
		"response_types_supported":                         []string{"code"},
		"response_modes_supported":                         []string{"query", "form_post"},
		"grant_types_supported":                            []string{"authorization_code", "refresh_token"},
		"subject_types_supported":                          []string{"public", "pairwise"},
		"id_token_signing_alg_values_supported":            algs,
		"code_challenge_methods_supported":                 []string{"S256"},
		"token_endpoint_auth_methods_supported":            []string{clients.AuthSecretBasic, clients.AuthSecretPost, clients.AuthPrivateKeyJWT, clients.AuthNone},
		"token_endpoint_auth_signing_alg_values_supported": []string{"RS256", "ES256"},
		"revocation_endpoint_auth_methods_supported":       []string{clients.AuthSecretBasic, clients.AuthSecretPost, clients.AuthPrivateKeyJWT, clients.AuthNone},
		"introspection_endpoint_auth_methods_supported":    []string{clients.AuthSecretBasic, clients.AuthSecretPost, clients.AuthPrivateKeyJWT},
		"scopes_supported":                                 clients.Scopes,
		"claims_supported": []string{"sub", "iss", "aud", "exp", "iat", "auth_time", "nonce", "acr", "amr", "auth_method", "sid",
			"fiscal_number", "given_name", "family_name", "birthdate", "gender", "email", "phone_number"},
		"acr_values_supported":                           []string{idp.ACRConsultazione, idp.ACRDispositivo},
		"claims_parameter_supported":                     true,
		"request_parameter_supported":                    false,
		"request_uri_parameter_supported":                false,
		"authorization_response_iss_parameter_supported": true,
		"ui_locales_supported":                           []string{"it", "en"},
		"prompt_values_supported":                        []string{"none", "login", "consent", "select_account"},
	})
}

// jwks serves the published signing keys.
func (p *Provider) jwks(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Cache-Control", "public, max-age=300")
	writeJSON(w, http.StatusOK, p.cfg.Keys.JWKS())
}

// token is the token endpoint: code and refresh-token grants.
func (p *Provider) token(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	if g := p.cfg.TokenGate; g != nil {
		release, err := g.AcquireClass(ctx, p.tokenClass(r))
		if err != nil {
			// Nothing was read or redeemed: the client may send the same
			// code again after Retry-After (RFC 6749 §5.2, RFC 9110 §10.2.3).
			p.log.WarnContext(ctx, "token request refused: too many in flight", "err", err)
			w.Header().Set("Retry-After", strconv.Itoa(g.RetryAfter()))
			p.oauth.WriteAccessError(ctx, w, nil, fosite.ErrTemporarilyUnavailable)
			return
		}
		defer release()
	}
	ar, err := p.oauth.NewAccessRequest(ctx, r, newSession())
	if err != nil {
		err = oauthUnavailable(w, err)
		p.logOAuthError(r, "token request refused", err)
		p.oauth.WriteAccessError(ctx, w, ar, err)
		return
	}
	resp, err := p.oauth.NewAccessResponse(ctx, ar)
	if errors.Is(err, fosite.ErrInvalidatedAuthorizeCode) {
		err = p.codeUsedConcurrently(ctx, ar)
	}
	if err != nil {
		err = oauthUnavailable(w, err)
		p.logOAuthError(r, "token response failed", err)
		p.oauth.WriteAccessError(ctx, w, ar, err)
		return
	}
	p.oauth.WriteAccessResponse(ctx, w, ar, resp)
	if p.cfg.Observer != nil {
		for _, g := range ar.GetGrantTypes() {
			p.cfg.Observer.TokensIssued(g)
		}
	}
}

// codeUsedConcurrently answers a redemption that lost the race for its code
// to another one (the code's invalidation is atomic; fosite reports the loss
// as a server error). It is a second use of the code: denied with
// invalid_grant, and, as RFC 6749 §4.1.2 asks and as fosite does for a code
// used after its redemption, what the code issued is revoked.
func (p *Provider) codeUsedConcurrently(ctx context.Context, ar fosite.AccessRequester) error {
	s := p.fstore
	if err := s.RevokeAccessToken(ctx, ar.GetID()); err != nil {
		return fosite.ErrServerError.WithWrap(err).WithDebug(err.Error())
	}
	if err := s.RevokeRefreshToken(ctx, ar.GetID()); err != nil {
		return fosite.ErrServerError.WithWrap(err).WithDebug(err.Error())
	}
	return fosite.ErrInvalidGrant.WithHint("The authorization code has already been used.")
}

// userinfo returns the citizen's claims allowed by the access token's scopes (OIDC Core §5.3).
func (p *Provider) userinfo(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	token := fosite.AccessTokenFromRequest(r)
	if token == "" {
		bearerError(w, http.StatusUnauthorized, "invalid_request", "An access token is required.")
		return
	}
	sess := newSession()
	_, ar, err := p.oauth.IntrospectToken(ctx, token, fosite.AccessToken, sess)
	if unavailable(err) {
		p.log.WarnContext(ctx, "userinfo: database unavailable", "err", err)
		bearerUnavailable(w)
		return
	}
	if err != nil {
		p.logOAuthError(r, "userinfo token refused", err)
		bearerError(w, http.StatusUnauthorized, "invalid_token", "The access token is not valid.")
		return
	}
	if !ar.GetGrantedScopes().Has("openid") {
		bearerError(w, http.StatusForbidden, "insufficient_scope", "The access token was not granted the openid scope.")
		return
	}
	s, ok := ar.GetSession().(*Session)
	if !ok {
		bearerError(w, http.StatusInternalServerError, "server_error", "")
		return
	}
	subj, err := p.store.GetSubject(ctx, s.SubjectID)
	if errors.Is(err, storage.ErrNotFound) {
		bearerError(w, http.StatusUnauthorized, "invalid_token", "The citizen no longer exists.")
		return
	}
	if unavailable(err) {
		p.log.WarnContext(ctx, "userinfo: database unavailable", "err", err)
		bearerUnavailable(w)
		return
	}
	if err != nil {
		p.log.ErrorContext(ctx, "userinfo subject lookup failed", "err", err)
		bearerError(w, http.StatusInternalServerError, "server_error", "")
		return
	}
	claims := claimsFor(subj, ar.GetGrantedScopes())
	claims["sub"] = s.Subject
	claims["acr"] = s.Level
	claims["auth_method"] = s.Method
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, claims)
}

// revoke is the RFC 7009 revocation endpoint.
// fosite answers 200 to every error but invalid_request and invalid_client,
// temporarily_unavailable included (its word for a storage failure, the
// cause dropped): a token that could not be revoked is not revoked, and the
// client is told so (503 with Retry-After, to try again).
func (p *Provider) revoke(w http.ResponseWriter, r *http.Request) {
	err := p.oauth.NewRevocationRequest(r.Context(), r)
	if unavailable(err) || errors.Is(err, fosite.ErrTemporarilyUnavailable) {
		p.clientError(w, r, "revocation failed", err)
		return
	}
	if err != nil {
		p.logOAuthError(r, "revocation refused", err)
	}
	p.oauth.WriteRevocationResponse(r.Context(), w, err)
}

// introspect is the RFC 7662 introspection endpoint, for confidential clients.
// fosite's NewIntrospectionRequest knows only HTTP Basic (or a bearer token),
// so the client is authenticated here, the same way as at the token endpoint:
// every method discovery advertises for introspection works. A public client
// is refused (RFC 7662 §2.1: the endpoint requires authorization, and a
// public client has no credentials).
func (p *Provider) introspect(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	if err := r.ParseMultipartForm(1 << 20); err != nil && !errors.Is(err, http.ErrNotMultipart) {
		p.clientError(w, r, "introspection refused", fosite.ErrInvalidRequest.WithHint("The body is not a form."))
		return
	}
	c, err := p.fosite.AuthenticateClient(ctx, r, r.PostForm)
	if err != nil {
		p.clientError(w, r, "introspection refused", err)
		return
	}
	if c.IsPublic() {
		p.clientError(w, r, "introspection refused", fosite.ErrInvalidClient.WithHint("Public clients may not introspect tokens (RFC 7662 §2.1)."))
		return
	}
	token := r.PostForm.Get("token")
	if token == "" {
		p.clientError(w, r, "introspection refused", fosite.ErrInvalidRequest.WithHint("The token parameter is missing."))
		return
	}
	use, ar, err := p.oauth.IntrospectToken(ctx, token, fosite.TokenUse(r.PostForm.Get("token_type_hint")), newSession())
	if err != nil {
		if rfc := fosite.ErrorToRFC6749Error(err); rfc.CodeField >= http.StatusInternalServerError || unavailable(err) {
			p.clientError(w, r, "introspection failed", err)
			return
		}
		// RFC 7662 §2.2: an unknown, expired or revoked token is just inactive.
		p.oauth.WriteIntrospectionResponse(ctx, w, &fosite.IntrospectionResponse{Active: false})
		return
	}
	resp := &fosite.IntrospectionResponse{Active: true, AccessRequester: ar, TokenUse: use}
	if use == fosite.AccessToken {
		resp.AccessTokenType = fosite.BearerAccessToken
	}
	p.oauth.WriteIntrospectionResponse(ctx, w, resp)
}

// clientError answers a refused request at an endpoint for clients with the
// RFC 6749 §5.2 error as JSON, and WWW-Authenticate on 401.
func (p *Provider) clientError(w http.ResponseWriter, r *http.Request, msg string, err error) {
	err = oauthUnavailable(w, err)
	p.logOAuthError(r, msg, err)
	if fosite.ErrorToRFC6749Error(err).CodeField == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Basic realm="ponte"`)
	}
	p.oauth.WriteAccessError(r.Context(), w, nil, err)
}

// par is the RFC 9126 pushed authorization request endpoint.
func (p *Provider) par(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	ar, err := p.oauth.NewPushedAuthorizeRequest(ctx, r)
	if err == nil {
		err = checkRedirectURI(ar)
	}
	if err == nil {
		err = p.precheck(ar)
	}
	if err != nil {
		err = oauthUnavailable(w, err)
		p.logOAuthError(r, "pushed authorization request refused", err)
		p.oauth.WritePushedAuthorizeError(ctx, w, ar, err)
		return
	}
	resp, err := p.oauth.NewPushedAuthorizeResponse(ctx, ar, newSession())
	if err != nil {
		err = oauthUnavailable(w, err)
		p.logOAuthError(r, "pushed authorization response failed", err)
		p.oauth.WritePushedAuthorizeError(ctx, w, ar, err)
		return
	}
	p.oauth.WritePushedAuthorizeResponse(ctx, w, ar, resp)
}

func (p *Provider) logOAuthError(r *http.Request, msg string, err error) {
	rfc := fosite.ErrorToRFC6749Error(err)
	if unavailable(err) || errors.Is(err, fosite.ErrTemporarilyUnavailable) {
		p.log.WarnContext(r.Context(), msg+": temporarily unavailable", "err", rfc.ErrorField, "debug", rfc.DebugField)
		return
	}
	if rfc.CodeField >= http.StatusInternalServerError {
		p.log.ErrorContext(r.Context(), msg, "err", rfc.ErrorField, "debug", rfc.DebugField, "cause", rfc.Cause())
		return
	}
	p.log.InfoContext(r.Context(), msg, "err", rfc.ErrorField, "hint", rfc.HintField)
}

// bearerError answers a protected-resource request (RFC 6750 §3).
func bearerError(w http.ResponseWriter, status int, code, desc string) {
	h := `Bearer error="` + code + `"`
	if desc != "" {
		h += `, error_description="` + desc + `"`
	}
	w.Header().Set("WWW-Authenticate", h)
	writeJSON(w, status, map[string]string{"error": code, "error_description": desc})
}

// bearerUnavailable answers a protected-resource request that an outage of
// the database stopped: 503 with Retry-After, temporarily_unavailable.
func bearerUnavailable(w http.ResponseWriter) {
	setRetryAfter(w)
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": "temporarily_unavailable",
		"error_description": "The service is temporarily unavailable; retry after the time in Retry-After."})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
