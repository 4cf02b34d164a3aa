package provider

import (
	"context"

	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/oauth2"
	"github.com/ory/fosite/handler/pkce"
)

// pkceHandler is PKCE (RFC 7636) as Ponte applies it: required of every
// client, confidential ones included (RFC 9700 §2.1.1), S256 only, except for
// a confidential client that an administrator exempted (storage.Client.PKCEExempt).
//
// It holds two fosite PKCE handlers and picks one per client. The strict one
// refuses a code without a PKCE challenge at the token endpoint too, not only at
// /authorize: whatever the storage answers, a non-exempt client never redeems a
// code without a verifier. The lenient one accepts a code issued without a
// challenge, for exempt clients; a code issued with one needs the verifier
// either way.
type pkceHandler struct {
	strict, lenient *pkce.Handler
}

var (
	_ fosite.AuthorizeEndpointHandler = pkceHandler{}
	_ fosite.TokenEndpointHandler     = pkceHandler{}
)

// pkceFactory is a compose.Factory for pkceHandler, in the place of
// compose.OAuth2PKCEFactory.
func pkceFactory(_ fosite.Configurator, storage any, strategy any) any {
	handler := func(enforce bool) *pkce.Handler {
		return &pkce.Handler{
			AuthorizeCodeStrategy: strategy.(oauth2.AuthorizeCodeStrategy),
			Storage:               storage.(pkce.PKCERequestStorage),
			Config:                pkceConfig{enforce: enforce},
		}
	}
	return pkceHandler{strict: handler(true), lenient: handler(false)}
}

// pkceExempt says whether c may go without PKCE: a confidential client with the
// administrator's exemption, never a public one.
func pkceExempt(c fosite.Client) bool {
	cl, ok := c.(*client)
	return ok && cl.PKCEExempt && !cl.IsPublic()
}

func (h pkceHandler) pick(c fosite.Client) *pkce.Handler {
	if pkceExempt(c) {
		return h.lenient
	}
	return h.strict
}

// HandleAuthorizeEndpointRequest checks the challenge and stores it with the code.
func (h pkceHandler) HandleAuthorizeEndpointRequest(ctx context.Context, ar fosite.AuthorizeRequester, resp fosite.AuthorizeResponder) error {
	return h.pick(ar.GetClient()).HandleAuthorizeEndpointRequest(ctx, ar, resp)
}

// HandleTokenEndpointRequest checks the code_verifier against the code's challenge.
func (h pkceHandler) HandleTokenEndpointRequest(ctx context.Context, r fosite.AccessRequester) error {
	return h.pick(r.GetClient()).HandleTokenEndpointRequest(ctx, r)
}

// PopulateTokenEndpointResponse adds nothing to the response.
func (h pkceHandler) PopulateTokenEndpointResponse(ctx context.Context, r fosite.AccessRequester, resp fosite.AccessResponder) error {
	return h.strict.PopulateTokenEndpointResponse(ctx, r, resp)
}

// CanSkipClientAuth is false: PKCE never replaces client authentication.
func (h pkceHandler) CanSkipClientAuth(ctx context.Context, r fosite.AccessRequester) bool {
	return h.strict.CanSkipClientAuth(ctx, r)
}

// CanHandleTokenEndpointRequest is true for the authorization_code grant.
func (h pkceHandler) CanHandleTokenEndpointRequest(ctx context.Context, r fosite.AccessRequester) bool {
	return h.strict.CanHandleTokenEndpointRequest(ctx, r)
}

// pkceConfig is the configuration of one of pkceHandler's fosite handlers:
// S256 only; PKCE enforced for every client, or for public clients only.
type pkceConfig struct{ enforce bool }

func (c pkceConfig) GetEnforcePKCE(context.Context) bool                  { return c.enforce }
func (pkceConfig) GetEnforcePKCEForPublicClients(context.Context) bool    { return true }
func (pkceConfig) GetEnablePKCEPlainChallengeMethod(context.Context) bool { return false }
