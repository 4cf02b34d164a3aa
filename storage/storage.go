// Package storage defines what Ponte persists: one small interface per aggregate
// (clients, tokens, browser sessions, login challenges, subjects, signing keys,
// single-use IDs, login states) over plain value records, and the sentinel errors every
// backend returns. It speaks no SQL and imports no protocol library: the gorm
// implementation lives in storage/sqlstore, and storage/storagetest holds the one
// conformance suite that every backend must pass.
package storage

import (
	"context"
	"errors"
	"log/slog"
	"time"
)

// Sentinel errors returned by every backend; test with errors.Is.
var (
	// ErrNotFound means no record matched (or, for a conditional update, none in the required state).
	ErrNotFound = errors.New("storage: not found")
	// ErrConflict means a record with the same key already exists.
	ErrConflict = errors.New("storage: already exists")
	// ErrUnavailable means the database could not do the work now — it
	// cannot be reached, refused the connection, is shutting down or
	// starting, or stayed busy past its timeout — and nothing of the
	// operation took effect (a transaction is rolled back). The same call
	// may succeed once the database is back: callers answer 503 with
	// Retry-After (RetryAfter), not 500.
	ErrUnavailable = errors.New("storage: database unavailable")
)

// Severity is the level at which background work logs a failure err: Warn
// when the database cannot be reached (an outage, which /readyz, the 503s
// and the first warning already report, and which the work retries on its
// own), Error for anything else.
func Severity(err error) slog.Level {
	if errors.Is(err, ErrUnavailable) {
		return slog.LevelWarn
	}
	return slog.LevelError
}

// RetryAfter is what a caller refused with ErrUnavailable tells its own
// client to wait before trying again: a database restart or failover takes
// seconds.
const RetryAfter = 5 * time.Second

// Client is a registered OpenID Connect relying party.
type Client struct {
	ID string
	// SecretHash is the keyed hash of the client secret; empty for public clients.
	SecretHash []byte
	Name       string
	// RedirectURIs are matched exactly.
	RedirectURIs []string
	// PostLogoutRedirectURIs are matched exactly by end_session.
	PostLogoutRedirectURIs []string
	GrantTypes             []string
	ResponseTypes          []string
	// Scopes the client may request.
	Scopes []string
	Public bool
	// BackchannelLogoutURI is where the client takes logout tokens (OpenID
	// Connect Back-Channel Logout 1.0); empty when it takes none.
	BackchannelLogoutURI string
	// BackchannelLogoutSessionRequired: the client needs the sid in logout tokens.
	BackchannelLogoutSessionRequired bool
	// TokenEndpointAuthMethod is client_secret_basic, client_secret_post, private_key_jwt or none.
	TokenEndpointAuthMethod string
	// JWKS is the client's public JSON Web Key Set (for private_key_jwt), as JSON.
	JWKS []byte
	// JWKSURI is where the client publishes its JWKS, as an alternative to JWKS.
	JWKSURI string
	// IDTokenSigningAlg is ES256 (the default) or RS256.
	IDTokenSigningAlg string
	// SectorIdentifier, when set, makes the client receive pairwise subjects for that sector.
	SectorIdentifier string
	// PreviousSecretHash is the keyed hash of the secret a rotation replaced;
	// it keeps working until PreviousSecretExpiresAt, so that a relying party
	// can move to the new secret without downtime. Empty when there is none.
	PreviousSecretHash      []byte
	PreviousSecretExpiresAt time.Time
	// PKCEExempt lets a legacy confidential client use the authorization code
	// flow without PKCE (RFC 9700 §2.1.1 wants PKCE of every client). Only an
	// administrator sets it, explicitly; it never applies to a public client.
	PKCEExempt bool
	// Token lifetimes; zero means the provider default.
	AccessTokenTTL  time.Duration
	RefreshTokenTTL time.Duration
	IDTokenTTL      time.Duration
	CreatedAt       time.Time
	UpdatedAt       time.Time
}

// Clients stores relying parties.
type Clients interface {
	// CreateClient returns ErrConflict if the ID is taken.
	CreateClient(ctx context.Context, c Client) error
	GetClient(ctx context.Context, id string) (Client, error)
	ListClients(ctx context.Context) ([]Client, error)
	// UpdateClient applies fn to the stored client atomically; fn's error aborts the update.
	UpdateClient(ctx context.Context, id string, fn func(Client) (Client, error)) error
	DeleteClient(ctx context.Context, id string) error
	// ClientsVersion returns a number that moves whenever a client is
	// created, updated or deleted, by any process sharing the backend; it may
	// also move when nothing changed. A reader that keeps clients in memory
	// reads it first and drops what it keeps when it moved. A change made
	// through this store moves it at once (in a transaction: inside it at
	// once, for others when it commits); one made through another store (a
	// node, a command) within a short bound the backend documents.
	ClientsVersion(ctx context.Context) (int64, error)
}

// TokenKind names the kind of an OAuth 2.0 artefact kept in the token store.
type TokenKind string

// The token kinds.
const (
	KindAuthorizeCode TokenKind = "code"
	KindAccessToken   TokenKind = "access"
	KindRefreshToken  TokenKind = "refresh"
	KindPKCE          TokenKind = "pkce"
	KindOpenID        TokenKind = "oidc"
	KindPAR           TokenKind = "par"
)

// Token is one stored authorization code, access token, refresh token, PKCE or
// OpenID Connect request session, or pushed authorization request.
type Token struct {
	Kind TokenKind
	// Signature is the lookup key; callers store a hash, never the token itself.
	Signature string
	// RequestID groups every token of one grant (a refresh-token family).
	RequestID string
	ClientID  string
	// Subject is the OIDC sub the grant was issued to (empty when not yet known).
	Subject string
	Active  bool
	// RequestedAt is when the grant was requested; ExpiresAt when this artefact stops being valid.
	RequestedAt time.Time
	ExpiresAt   time.Time
	// Data is the serialized request; opaque to storage.
	Data []byte
}

// Tokens stores OAuth 2.0 artefacts. Invalidation is conditional and atomic, so
// two concurrent redemptions of one code or refresh token cannot both succeed.
type Tokens interface {
	// CreateToken returns ErrConflict if (kind, signature) exists.
	CreateToken(ctx context.Context, t Token) error
	// GetToken returns the token whether active or not.
	GetToken(ctx context.Context, kind TokenKind, signature string) (Token, error)
	DeleteToken(ctx context.Context, kind TokenKind, signature string) error
	// DeactivateToken marks an active token inactive; ErrNotFound if none was active.
	DeactivateToken(ctx context.Context, kind TokenKind, signature string) error
	// DeactivateRequest marks every token of that kind and request inactive.
	DeactivateRequest(ctx context.Context, kind TokenKind, requestID string) error
	// DeleteRequest deletes every token of that kind and request.
	DeleteRequest(ctx context.Context, kind TokenKind, requestID string) error
	// DeleteSubjectTokens deletes every token issued to subject, whatever its kind and client.
	DeleteSubjectTokens(ctx context.Context, subject string) (int64, error)
	// DeleteExpiredTokens deletes tokens that expired before the given time.
	DeleteExpiredTokens(ctx context.Context, before time.Time) (int64, error)
}

// Session is a server-side single-sign-on session of one browser.
type Session struct {
	// ID is a hash of the cookie value.
	ID string
	// Subject is the citizen's internal subject ID.
	Subject string
	// AuthTime is when the citizen last authenticated in this session.
	AuthTime time.Time
	// Method is the login method (pin, spid, cns); Level the acr reached; AMR the RFC 8176 values.
	Method string
	Level  string
	AMR    []string
	// MethodData is the login method's own data about the login (opaque),
	// handed back to the method at logout.
	MethodData []byte
	// MethodKey is the login method's own key for the session (opaque, a
	// hash), by which it can end the session; empty when it named none.
	MethodKey string
	CreatedAt time.Time
	ExpiresAt time.Time
}

// Sessions stores browser SSO sessions.
type Sessions interface {
	CreateSession(ctx context.Context, s Session) error
	GetSession(ctx context.Context, id string) (Session, error)
	DeleteSession(ctx context.Context, id string) error
	// DeleteMethodSessions ends every session with that MethodKey (a non-empty one).
	DeleteMethodSessions(ctx context.Context, methodKey string) (int64, error)
	// DeleteSubjectSessions ends every session of a citizen.
	DeleteSubjectSessions(ctx context.Context, subject string) (int64, error)
	// ListSubjectSessions returns a citizen's sessions, expired ones
	// included, newest first.
	ListSubjectSessions(ctx context.Context, subject string) ([]Session, error)
	// ListMethodSessions returns the sessions with that MethodKey (a non-empty one).
	ListMethodSessions(ctx context.Context, methodKey string) ([]Session, error)
	DeleteExpiredSessions(ctx context.Context, before time.Time) (int64, error)
}

// Challenge is a pending authorization request waiting for the user to log in.
// A login that leaves the site (SPID, CNS on its own listener) resumes it by ID.
type Challenge struct {
	ID       string
	ClientID string
	// Browser and ClientIP are opaque keys (hashes) of the browser and of the
	// client address that made the challenge, counted by CountChallenges; empty
	// when unknown.
	Browser  string
	ClientIP string
	Data     []byte
	// Returned is the identity (opaque to storage) that a login method proved
	// by a cross-site return, kept until the resume checks the browser; nil
	// until then.
	Returned  []byte
	CreatedAt time.Time
	ExpiresAt time.Time
}

// ChallengeCount is how many challenges are live for one browser and for one
// client address, and when the earliest of each group expires (zero when the
// group is empty or its challenges never expire).
type ChallengeCount struct {
	Browser, ClientIP                     int
	BrowserNextExpiry, ClientIPNextExpiry time.Time
}

// Challenges stores pending login challenges.
type Challenges interface {
	CreateChallenge(ctx context.Context, c Challenge) error
	GetChallenge(ctx context.Context, id string) (Challenge, error)
	DeleteChallenge(ctx context.Context, id string) error
	// ReturnChallenge keeps identity on the challenge (nil clears it) if the
	// challenge is live at now; ErrNotFound otherwise.
	ReturnChallenge(ctx context.Context, id string, identity []byte, now time.Time) error
	DeleteExpiredChallenges(ctx context.Context, before time.Time) (int64, error)
	// CountChallenges counts, in one query, the challenges live at now (not
	// expired, or never expiring) whose Browser is browser and whose ClientIP is
	// clientIP; an empty key counts nothing. Called with a context that carries
	// a transaction, it also makes every other transaction's CountChallenges for
	// the same browser or client address wait until this transaction ends, so
	// that a count followed by CreateChallenge in one transaction never lets
	// concurrent callers exceed a cap.
	CountChallenges(ctx context.Context, browser, clientIP string, now time.Time) (ChallengeCount, error)
}

// Subject is one citizen: every login method links to it by codice fiscale.
type Subject struct {
	// ID is the opaque, stable internal identifier (the public sub unless pairwise).
	ID           string
	FiscalNumber string
	GivenName    string
	FamilyName   string
	// Birthdate is YYYY-MM-DD.
	Birthdate   string
	Gender      string
	Email       string
	PhoneNumber string
	// ClaimsRank is the rank of the login that recorded the claims above
	// (names, birth date, gender, contacts): the higher, the more they are
	// trusted. The core ranks each login (idp.Identity.ClaimsRank); storage
	// only compares ranks (LinkSubject).
	ClaimsRank int
	CreatedAt  time.Time
	UpdatedAt  time.Time
}

// Subjects stores citizens.
type Subjects interface {
	// LinkSubject returns the subject with s.FiscalNumber, creating it with
	// s.ID if there is none. A known subject's claims change only by the rule
	// of ranks, so that a login of a lower rank never overwrites what a
	// higher one recorded:
	//   - s.ClaimsRank below the stored rank: the claims stay as they are;
	//   - equal: the non-empty claims of s are refreshed, the others kept;
	//   - above: the claims become those of s (empty ones included, so that
	//     nothing recorded by a lower rank passes for a claim of s's rank),
	//     and the stored rank s.ClaimsRank.
	LinkSubject(ctx context.Context, s Subject) (Subject, error)
	GetSubject(ctx context.Context, id string) (Subject, error)
	GetSubjectByFiscalNumber(ctx context.Context, fiscalNumber string) (Subject, error)
}

// KeyState is where a signing key is in its life.
type KeyState string

// The key states.
const (
	// KeyActive keys are published and sign from NotBefore on.
	KeyActive KeyState = "active"
	// KeyRetired keys no longer sign; they stay published until NotAfter so tokens in flight verify.
	KeyRetired KeyState = "retired"
)

// SigningKey is a token-signing key, sealed under the master key.
type SigningKey struct {
	// ID is the JWS kid.
	ID        string
	Algorithm string
	State     KeyState
	// Sealed is the encrypted PKCS#8 private key.
	Sealed []byte
	// NotBefore is when the key may start signing (after it has been published).
	NotBefore time.Time
	// NotAfter is when a retired key stops being published; zero while active.
	NotAfter  time.Time
	CreatedAt time.Time
}

// Keys stores signing keys.
type Keys interface {
	CreateKey(ctx context.Context, k SigningKey) error
	ListKeys(ctx context.Context) ([]SigningKey, error)
	// UpdateKey applies fn to the stored key atomically.
	UpdateKey(ctx context.Context, id string, fn func(SigningKey) (SigningKey, error)) error
	DeleteKey(ctx context.Context, id string) error
}

// Replays remembers IDs that may be used once (client-assertion JTIs, SAML
// assertion IDs), for every node, until they expire.
type Replays interface {
	// UseOnce records id until exp; ErrConflict if it is recorded and unexpired.
	UseOnce(ctx context.Context, id string, exp time.Time) error
	DeleteExpiredUses(ctx context.Context, before time.Time) (int64, error)
}

// LoginState is what a login method keeps while the user is away (at a SAML
// identity provider, say), under the method's own key.
type LoginState struct {
	Key       string
	Challenge string
	Data      []byte
	ExpiresAt time.Time
}

// LoginStates stores login methods' per-login state.
type LoginStates interface {
	// PutLoginState stores st; ErrConflict if the key exists.
	PutLoginState(ctx context.Context, st LoginState) error
	// TakeLoginState deletes and returns the state under key if it is live at
	// now; ErrNotFound otherwise. Of two takers, one gets it.
	TakeLoginState(ctx context.Context, key string, now time.Time) (LoginState, error)
	DeleteExpiredLoginStates(ctx context.Context, before time.Time) (int64, error)
}

// Transactor runs storage calls atomically: every call made with the context
// that BeginTx returns joins the transaction until Commit or Rollback.
type Transactor interface {
	BeginTx(ctx context.Context) (context.Context, error)
	Commit(ctx context.Context) error
	Rollback(ctx context.Context) error
}

// Store is everything Ponte's core persists.
type Store interface {
	Clients
	Tokens
	Sessions
	Challenges
	Subjects
	Keys
	Replays
	LoginStates
	Logouts
	LoginHistory
	Transactor
	// Ping reports whether the backend answers (for /readyz).
	Ping(ctx context.Context) error
	Close() error
}
