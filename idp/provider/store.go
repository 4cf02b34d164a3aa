package provider

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"time"

	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/oauth2"
	"github.com/ory/fosite/handler/openid"
	"github.com/ory/fosite/handler/pkce"

	"github.com/ponte-id/ponte/storage"
)

// fositeStore adapts storage.Store to the storage interfaces of the fosite
// handlers Ponte composes. Every lookup key is hashed before it reaches the
// database, so a leaked table holds no usable code or token.
//
// An authorization code is one record that holds its OpenID Connect request
// and its PKCE challenge too (codeParameters are kept in its form), so issuing
// a code writes one record and redeeming it reads one: see
// CreateOpenIDConnectSession and CreatePKCERequestSession.
type fositeStore struct {
	s       storage.Store
	clients *clientCache
	// codeSignature is the signature part of an authorization code, the key
	// of its record (fosite's authorization code strategy).
	codeSignature func(ctx context.Context, code string) string
}

var (
	_ fosite.ClientManager               = fositeStore{}
	_ oauth2.CoreStorage                 = fositeStore{}
	_ oauth2.TokenRevocationStorage      = fositeStore{}
	_ openid.OpenIDConnectRequestStorage = fositeStore{}
	_ pkce.PKCERequestStorage            = fositeStore{}
	_ fosite.PARStorage                  = fositeStore{}
	// fosite finds transactions by asserting storage.Transactional (github.com/ory/fosite/storage).
	_ interface {
		BeginTX(context.Context) (context.Context, error)
		Commit(context.Context) error
		Rollback(context.Context) error
	} = fositeStore{}
)

// fallbackTTL bounds rows whose session carries no expiry for their kind.
const fallbackTTL = 24 * time.Hour

// hashKey turns a token signature (or a raw code, for the OpenID Connect
// request storage, which fosite keys by the code itself) into a storage key.
func hashKey(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// storedRequest is the serialized form of a fosite request.
type storedRequest struct {
	ID                string     `json:"id"`
	RequestedAt       time.Time  `json:"requested_at"`
	ClientID          string     `json:"client_id"`
	RequestedScope    []string   `json:"scopes"`
	GrantedScope      []string   `json:"granted_scopes"`
	RequestedAudience []string   `json:"audience,omitempty"`
	GrantedAudience   []string   `json:"granted_audience,omitempty"`
	Form              url.Values `json:"form"`
	// Session is the fosite session: encoded in the same pass as the rest,
	// and decoded straight into the session the caller hands over (a pointer
	// held by the interface), or skipped (skipJSON).
	Session any `json:"session"`
	// OpenID is set on an authorization code's record that holds its OpenID
	// Connect request (oidcParameters in Form). A code an older Ponte issued
	// during a rolling upgrade lacks it, and has a KindOpenID record of its own.
	OpenID bool `json:"oidc,omitempty"`
	// PKCE is set on an authorization code's record that holds its PKCE
	// challenge; a code issued before has a KindPKCE record of its own.
	PKCE bool `json:"pkce,omitempty"`
	// Authorization requests only (PAR).
	ResponseTypes        []string `json:"response_types,omitempty"`
	RedirectURI          string   `json:"redirect_uri,omitempty"`
	State                string   `json:"state,omitempty"`
	HandledResponseTypes []string `json:"handled_response_types,omitempty"`
	ResponseMode         string   `json:"response_mode,omitempty"`
	DefaultResponseMode  string   `json:"default_response_mode,omitempty"`
}

func (f fositeStore) create(ctx context.Context, kind storage.TokenKind, key string, tt fosite.TokenType, r fosite.Requester) error {
	rec := storedRequest{
		ID: r.GetID(), RequestedAt: r.GetRequestedAt(), ClientID: r.GetClient().GetID(),
		RequestedScope: r.GetRequestedScopes(), GrantedScope: r.GetGrantedScopes(),
		RequestedAudience: r.GetRequestedAudience(), GrantedAudience: r.GetGrantedAudience(),
		Form: withoutClientCredentials(r.GetRequestForm()), Session: r.GetSession(),
		OpenID: kind == storage.KindAuthorizeCode, PKCE: kind == storage.KindAuthorizeCode,
	}
	if ar, ok := r.(fosite.AuthorizeRequester); ok {
		rec.ResponseTypes, rec.State = ar.GetResponseTypes(), ar.GetState()
		if h, ok := ar.(*fosite.AuthorizeRequest); ok {
			rec.HandledResponseTypes = h.HandledResponseTypes
		}
		rec.ResponseMode, rec.DefaultResponseMode = string(ar.GetResponseMode()), string(ar.GetDefaultResponseMode())
		if u := ar.GetRedirectURI(); u != nil {
			rec.RedirectURI = u.String()
		}
	}
	data, err := json.Marshal(rec)
	if err != nil {
		return fmt.Errorf("encode request: %w", err)
	}
	t := storage.Token{
		Kind: kind, Signature: hashKey(key), RequestID: r.GetID(), ClientID: r.GetClient().GetID(),
		Active: true, RequestedAt: r.GetRequestedAt(), Data: data,
	}
	if s, ok := r.GetSession().(*Session); ok {
		t.Subject = s.SubjectID
	}
	t.ExpiresAt = r.GetSession().GetExpiresAt(tt)
	if t.ExpiresAt.IsZero() {
		t.ExpiresAt = time.Now().Add(fallbackTTL)
	}
	return f.s.CreateToken(ctx, t)
}

// clientCredentials are the form parameters that authenticate a client
// (RFC 6749 §2.3.1, RFC 7523 §2.2). fosite stores a pushed authorization
// request with its whole form, so without this a client_secret sent to /par
// would sit in the database in clear.
var clientCredentials = []string{"client_secret", "client_assertion", "client_assertion_type"}

// withoutClientCredentials returns form without clientCredentials (form
// itself when it has none).
func withoutClientCredentials(form url.Values) url.Values {
	if !slices.ContainsFunc(clientCredentials, form.Has) {
		return form
	}
	out := url.Values{}
	for k, v := range form {
		if !slices.Contains(clientCredentials, k) {
			out[k] = v
		}
	}
	return out
}

// load reads a stored request; session (may be nil) is filled from it. A
// record this HTTP request has read already comes from its memo, and so does
// the request decoded from it when the same session is handed over again
// (fosite reads a code three times in one token request, into one session).
func (f fositeStore) load(ctx context.Context, kind storage.TokenKind, key string, session fosite.Session) (*fosite.AuthorizeRequest, storage.Token, error) {
	e, err := f.loadEntry(ctx, kind, key, session)
	if err != nil {
		return nil, e.token, err
	}
	return e.request, e.token, nil
}

// loadEntry is load, with what else the record says (memoEntry.openID).
func (f fositeStore) loadEntry(ctx context.Context, kind storage.TokenKind, key string, session fosite.Session) (memoEntry, error) {
	k := memoKey{kind: kind, key: hashKey(key)}
	memo := memoFrom(ctx)
	e, ok := memo.entry(k)
	if ok && session != nil && e.session == session {
		ar := *e.request
		e.request = &ar
		return e, nil
	}
	if !ok {
		t, err := f.s.GetToken(ctx, kind, k.key)
		if errors.Is(err, storage.ErrNotFound) {
			return memoEntry{token: t}, fosite.ErrNotFound
		}
		if err != nil {
			return memoEntry{token: t}, err
		}
		e.token = t
	}
	t := e.token
	rec := storedRequest{Session: &skipJSON{}} // a pointer: json decodes into what it points to
	if session != nil {
		rec.Session = session
	}
	if err := json.Unmarshal(t.Data, &rec); err != nil {
		return e, fmt.Errorf("decode request: %w", err)
	}
	c, err := f.GetClient(ctx, rec.ClientID)
	if err != nil {
		return e, err
	}
	ar := fosite.NewAuthorizeRequest()
	ar.ID, ar.RequestedAt, ar.Client, ar.Session = rec.ID, rec.RequestedAt, c, session
	ar.RequestedScope, ar.GrantedScope = rec.RequestedScope, rec.GrantedScope
	ar.RequestedAudience, ar.GrantedAudience = rec.RequestedAudience, rec.GrantedAudience
	ar.Form = rec.Form
	if ar.Form == nil {
		ar.Form = url.Values{}
	}
	ar.ResponseTypes, ar.State, ar.HandledResponseTypes = rec.ResponseTypes, rec.State, rec.HandledResponseTypes
	ar.ResponseMode, ar.DefaultResponseMode = fosite.ResponseModeType(rec.ResponseMode), fosite.ResponseModeType(rec.DefaultResponseMode)
	if rec.RedirectURI != "" {
		if ar.RedirectURI, err = url.Parse(rec.RedirectURI); err != nil {
			return e, fmt.Errorf("decode redirect URI: %w", err)
		}
	}
	e.request, e.session, e.openID, e.pkce = ar, session, rec.OpenID, rec.PKCE
	memo.remember(k, e)
	cp := *ar
	e.request = &cp
	return e, nil
}

// skipJSON stands for a stored session nobody asked for: it is read past,
// not decoded.
type skipJSON struct{}

func (*skipJSON) UnmarshalJSON([]byte) error { return nil }

func (f fositeStore) remove(ctx context.Context, kind storage.TokenKind, key string) error {
	k := memoKey{kind: kind, key: hashKey(key)}
	memoFrom(ctx).forget(k)
	err := f.s.DeleteToken(ctx, kind, k.key)
	if errors.Is(err, storage.ErrNotFound) {
		return fosite.ErrNotFound
	}
	return err
}

// deactivate marks a token used; the request's memo says so too (and keeps
// saying so should the transaction roll back: a memo errs on the side of
// refusing).
func (f fositeStore) deactivate(ctx context.Context, kind storage.TokenKind, key string) error {
	k := memoKey{kind: kind, key: hashKey(key)}
	memoFrom(ctx).deactivated(k)
	return f.s.DeactivateToken(ctx, kind, k.key)
}

// GetClient loads a relying party, through the client cache.
func (f fositeStore) GetClient(ctx context.Context, id string) (fosite.Client, error) {
	c, err := f.clients.get(ctx, id)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, fosite.ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	return c, nil
}

// ClientAssertionJWTValid is checked, atomically, by SetClientAssertionJWT.
func (f fositeStore) ClientAssertionJWTValid(context.Context, string) error { return nil }

// SetClientAssertionJWT records a private_key_jwt assertion's jti; a replay
// fails. A storage failure is a server error (fosite returns this error as
// is, and the client authentication strategy treats any other error as the
// client's fault).
func (f fositeStore) SetClientAssertionJWT(ctx context.Context, jti string, exp time.Time) error {
	err := f.s.UseOnce(ctx, hashKey(jti), exp)
	switch {
	case errors.Is(err, storage.ErrConflict):
		return fosite.ErrJTIKnown
	case err != nil:
		return fosite.ErrServerError.WithWrap(err).WithDebug(err.Error())
	}
	return nil
}

// CreateAuthorizeCodeSession stores an authorization code.
func (f fositeStore) CreateAuthorizeCodeSession(ctx context.Context, sig string, r fosite.Requester) error {
	return f.create(ctx, storage.KindAuthorizeCode, sig, fosite.AuthorizeCode, r)
}

// GetAuthorizeCodeSession returns the code's request, with ErrInvalidatedAuthorizeCode if it was used.
func (f fositeStore) GetAuthorizeCodeSession(ctx context.Context, sig string, s fosite.Session) (fosite.Requester, error) {
	r, t, err := f.load(ctx, storage.KindAuthorizeCode, sig, s)
	if err != nil {
		return nil, err
	}
	if !t.Active {
		return r, fosite.ErrInvalidatedAuthorizeCode
	}
	return r, nil
}

// InvalidateAuthorizeCodeSession marks a code used; it fails if another
// redemption got there first, so a code yields tokens once. Its PKCE
// challenge goes with it, in the same transaction (fosite calls this inside
// the one that issues the tokens): see DeletePKCERequestSession. The
// challenge a code's record holds goes by the mark (GetPKCERequestSession
// finds none for a used code). A code whose record this request has read
// and found without its challenge (an older Ponte stored it apart), or not
// read at all, has the separate record deleted, so that a failure to remove
// a challenge fails the redemption whichever Ponte issued the code; a code
// that holds its own challenge has no other record, and is spared a delete
// that would find nothing.
func (f fositeStore) InvalidateAuthorizeCodeSession(ctx context.Context, sig string) error {
	err := f.deactivate(ctx, storage.KindAuthorizeCode, sig)
	if errors.Is(err, storage.ErrNotFound) {
		return fosite.ErrInvalidatedAuthorizeCode
	}
	if err != nil {
		return err
	}
	if e, ok := memoFrom(ctx).entry(memoKey{kind: storage.KindAuthorizeCode, key: hashKey(sig)}); ok && e.request != nil && e.pkce {
		return nil
	}
	if err := f.remove(ctx, storage.KindPKCE, sig); err != nil && !errors.Is(err, fosite.ErrNotFound) {
		return err
	}
	return nil
}

// CreateAccessTokenSession stores an access token.
func (f fositeStore) CreateAccessTokenSession(ctx context.Context, sig string, r fosite.Requester) error {
	return f.create(ctx, storage.KindAccessToken, sig, fosite.AccessToken, r)
}

// GetAccessTokenSession loads an access token.
func (f fositeStore) GetAccessTokenSession(ctx context.Context, sig string, s fosite.Session) (fosite.Requester, error) {
	r, t, err := f.load(ctx, storage.KindAccessToken, sig, s)
	if err != nil {
		return nil, err
	}
	if !t.Active {
		return r, fosite.ErrInactiveToken
	}
	return r, nil
}

// DeleteAccessTokenSession deletes an access token.
func (f fositeStore) DeleteAccessTokenSession(ctx context.Context, sig string) error {
	return f.remove(ctx, storage.KindAccessToken, sig)
}

// CreateRefreshTokenSession stores a refresh token.
func (f fositeStore) CreateRefreshTokenSession(ctx context.Context, sig, _ string, r fosite.Requester) error {
	return f.create(ctx, storage.KindRefreshToken, sig, fosite.RefreshToken, r)
}

// GetRefreshTokenSession loads a refresh token, with ErrInactiveToken (and the
// request, for reuse detection) if it was rotated or revoked.
func (f fositeStore) GetRefreshTokenSession(ctx context.Context, sig string, s fosite.Session) (fosite.Requester, error) {
	r, t, err := f.load(ctx, storage.KindRefreshToken, sig, s)
	if err != nil {
		return nil, err
	}
	if !t.Active {
		return r, fosite.ErrInactiveToken
	}
	return r, nil
}

// DeleteRefreshTokenSession deletes a refresh token.
func (f fositeStore) DeleteRefreshTokenSession(ctx context.Context, sig string) error {
	return f.remove(ctx, storage.KindRefreshToken, sig)
}

// RotateRefreshToken retires the refresh token being used (kept, inactive, so
// that a replay is recognised as reuse) and the grant's access tokens.
func (f fositeStore) RotateRefreshToken(ctx context.Context, requestID, sig string) error {
	err := f.deactivate(ctx, storage.KindRefreshToken, sig)
	if errors.Is(err, storage.ErrNotFound) {
		return fosite.ErrSerializationFailure
	}
	if err != nil {
		return err
	}
	return f.s.DeleteRequest(ctx, storage.KindAccessToken, requestID)
}

// RevokeRefreshToken deactivates every refresh token of a grant (the family).
func (f fositeStore) RevokeRefreshToken(ctx context.Context, requestID string) error {
	return f.s.DeactivateRequest(ctx, storage.KindRefreshToken, requestID)
}

// RevokeAccessToken deletes every access token of a grant.
func (f fositeStore) RevokeAccessToken(ctx context.Context, requestID string) error {
	return f.s.DeleteRequest(ctx, storage.KindAccessToken, requestID)
}

// oidcParameters are the parameters of an authorization request that the
// OpenID Connect handler reads again at the token endpoint (fosite's
// handler/openid keeps the same list). fosite.Config.SanitationWhiteList
// names them, so the code's own record keeps them.
var oidcParameters = []string{"max_age", "prompt", "acr_values", "id_token_hint", "nonce"}

// CreateOpenIDConnectSession stores nothing: fosite's OpenID Connect handler
// hands over the request it has just stored, in the same transaction, as the
// code (the same ID, client, scopes and session), and the code's record keeps
// oidcParameters as well (storedRequest.OpenID). One record instead of two is
// one insert at /authorize, and one read and one delete (a transaction of its
// own) fewer at /token.
func (f fositeStore) CreateOpenIDConnectSession(context.Context, string, fosite.Requester) error {
	return nil
}

// GetOpenIDConnectSession loads the OpenID Connect request of a code: the
// code's record, used or not (fosite reads it after the code was marked used
// in the same token request; a used code never gets this far again, since the
// code handler refuses it first). A code an older Ponte issued has a record of
// its own for it, as before.
func (f fositeStore) GetOpenIDConnectSession(ctx context.Context, code string, r fosite.Requester) (fosite.Requester, error) {
	e, err := f.loadEntry(ctx, storage.KindAuthorizeCode, f.codeSignature(ctx, code), r.GetSession())
	if err == nil && !e.openID {
		e, err = f.loadEntry(ctx, storage.KindOpenID, code, r.GetSession())
	}
	if errors.Is(err, fosite.ErrNotFound) {
		return nil, openid.ErrNoSessionFound
	}
	if err != nil {
		return nil, err
	}
	return e.request, nil
}

// DeleteOpenIDConnectSession has nothing to delete for a code whose record
// holds its OpenID Connect request: its redemption has just marked it used,
// and the janitor deletes it when it expires. An older Ponte's separate
// record is deleted, as before.
func (f fositeStore) DeleteOpenIDConnectSession(ctx context.Context, code string) error {
	if e, ok := memoFrom(ctx).entry(memoKey{kind: storage.KindAuthorizeCode, key: hashKey(f.codeSignature(ctx, code))}); ok && e.openID {
		return nil
	}
	if err := f.remove(ctx, storage.KindOpenID, code); err != nil && !errors.Is(err, fosite.ErrNotFound) {
		return err
	}
	return nil
}

// pkceParameters are the PKCE parameters of an authorization request
// (RFC 7636 §4.3), which the code's record keeps.
var pkceParameters = []string{"code_challenge", "code_challenge_method"}

// codeParameters are what fosite.Config.SanitationWhiteList names: the
// parameters a code's record keeps beyond fosite's defaults.
var codeParameters = append(slices.Clone(oidcParameters), pkceParameters...)

// CreatePKCERequestSession stores nothing: fosite's PKCE handler hands over,
// in the same transaction, the request just stored as the code, whose record
// keeps pkceParameters (storedRequest.PKCE). One insert fewer at /authorize,
// one read fewer at /token.
func (f fositeStore) CreatePKCERequestSession(context.Context, string, fosite.Requester) error {
	return nil
}

// GetPKCERequestSession loads the PKCE challenge of a code: the code's own
// record, read as fosite.ErrNotFound when the code is used or was issued
// without a challenge (as when a separate record was kept, created only with a
// challenge and deleted by the redemption). A code an older Ponte issued has
// a record of its own. fosite's PKCE handler reads only the form: the session
// it hands over (the code's, loaded just before) is given back as it is.
func (f fositeStore) GetPKCERequestSession(ctx context.Context, sig string, s fosite.Session) (fosite.Requester, error) {
	k := memoKey{kind: storage.KindAuthorizeCode, key: hashKey(sig)}
	e, ok := memoFrom(ctx).entry(k)
	if !ok || e.request == nil {
		var err error
		if e, err = f.loadEntry(ctx, storage.KindAuthorizeCode, sig, nil); err != nil {
			return nil, err
		}
	}
	if !e.pkce {
		r, _, err := f.load(ctx, storage.KindPKCE, sig, nil)
		if err != nil {
			return nil, err
		}
		r.Session = s
		return r, nil
	}
	form := e.request.GetRequestForm()
	if !e.token.Active || form.Get("code_challenge") == "" && form.Get("code_challenge_method") == "" {
		return nil, fosite.ErrNotFound
	}
	r := *e.request
	r.Session = s
	return &r, nil
}

// DeletePKCERequestSession keeps the PKCE challenge. fosite's PKCE handler
// (handler/pkce, HandleTokenEndpointRequest) calls it before it compares the
// code_verifier, outside any transaction: deleting here would let anyone who
// holds a public client's code spoil the real redemption with a wrong
// verifier. The challenge is deleted with the code, by
// InvalidateAuthorizeCodeSession, once a redemption succeeds; until then the
// code stays redeemable by the right verifier (RFC 7636 §4.6), and a used or
// expired code is refused on its own.
func (f fositeStore) DeletePKCERequestSession(context.Context, string) error {
	return nil
}

// CreatePARSession stores a pushed authorization request under its request_uri.
func (f fositeStore) CreatePARSession(ctx context.Context, uri string, r fosite.AuthorizeRequester) error {
	return f.create(ctx, storage.KindPAR, uri, fosite.PushedAuthorizeRequestContext, r)
}

// GetPARSession loads a pushed authorization request.
func (f fositeStore) GetPARSession(ctx context.Context, uri string) (fosite.AuthorizeRequester, error) {
	r, t, err := f.load(ctx, storage.KindPAR, uri, newSession())
	if err != nil {
		return nil, err
	}
	if time.Now().After(t.ExpiresAt) {
		return nil, fosite.ErrNotFound
	}
	return r, nil
}

// parClient returns the client_id of a live pushed authorization request, or
// fosite.ErrNotFound.
func (f fositeStore) parClient(ctx context.Context, uri string) (string, error) {
	t, err := f.s.GetToken(ctx, storage.KindPAR, hashKey(uri))
	if errors.Is(err, storage.ErrNotFound) || (err == nil && time.Now().After(t.ExpiresAt)) {
		return "", fosite.ErrNotFound
	}
	if err != nil {
		return "", err
	}
	return t.ClientID, nil
}

// DeletePARSession deletes a pushed authorization request.
func (f fositeStore) DeletePARSession(ctx context.Context, uri string) error {
	return f.remove(ctx, storage.KindPAR, uri)
}

// BeginTX starts a transaction that the following calls with the returned ctx join.
func (f fositeStore) BeginTX(ctx context.Context) (context.Context, error) { return f.s.BeginTx(ctx) }

// Commit commits the transaction in ctx.
func (f fositeStore) Commit(ctx context.Context) error { return f.s.Commit(ctx) }

// Rollback rolls back the transaction in ctx.
func (f fositeStore) Rollback(ctx context.Context) error { return f.s.Rollback(ctx) }
