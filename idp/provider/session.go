package provider

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"slices"
	"time"

	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/openid"
	"github.com/ory/fosite/token/jwt"

	"github.com/ponte-id/ponte/idp"
	"github.com/ponte-id/ponte/storage"
)

// Session is what fosite stores with every code and token. Beyond the ID token
// claims it keeps the internal subject (for userinfo and revocation) and how the
// citizen logged in, because fosite sanitizes the request it stores and later
// steps (refresh, userinfo) read only the session.
type Session struct {
	*openid.DefaultSession
	// SubjectID is the internal subject; the sub claim may be a pairwise alias of it.
	SubjectID string `json:"ponte_subject"`
	// Method and Level are how the citizen logged in.
	Method string `json:"ponte_method"`
	Level  string `json:"ponte_level"`
}

var _ openid.Session = (*Session)(nil)

// newSession returns an empty session for fosite to fill from storage.
func newSession() *Session {
	return &Session{DefaultSession: &openid.DefaultSession{
		Claims:  &jwt.IDTokenClaims{},
		Headers: &jwt.Headers{},
	}}
}

// Clone deep-copies the session, keeping Ponte's fields (fosite clones sessions
// before storing them; the embedded Clone alone would drop them).
func (s *Session) Clone() fosite.Session {
	if s == nil {
		return nil
	}
	c := *s
	if s.DefaultSession != nil {
		c.DefaultSession = s.DefaultSession.Clone().(*openid.DefaultSession)
	}
	return &c
}

// scopeClaims says which claims each scope releases (OIDC Core §5.4, and fiscal_number for Ponte).
var scopeClaims = map[string][]string{
	"profile":       {"given_name", "family_name", "birthdate", "gender"},
	"email":         {"email"},
	"phone":         {"phone_number"},
	"fiscal_number": {"fiscal_number"},
}

// claimsFor returns the citizen's claims released by the granted scopes.
func claimsFor(subj storage.Subject, granted fosite.Arguments) map[string]any {
	all := map[string]string{
		"given_name": subj.GivenName, "family_name": subj.FamilyName, "birthdate": subj.Birthdate,
		"gender": subj.Gender, "email": subj.Email, "phone_number": subj.PhoneNumber,
		"fiscal_number": subj.FiscalNumber,
	}
	out := map[string]any{}
	for scope, names := range scopeClaims {
		if !granted.Has(scope) {
			continue
		}
		for _, n := range names {
			if v := all[n]; v != "" {
				out[n] = v
			}
		}
	}
	return out
}

// buildSession makes the fosite session for an authorization granted to sess's citizen.
func (p *Provider) buildSession(c *client, sso storage.Session, subj storage.Subject, granted fosite.Arguments, requestedAt time.Time) *Session {
	s := newSession()
	sub := p.publicSubject(c, subj.ID)
	s.Subject, s.Username = sub, sub
	s.SubjectID, s.Method, s.Level = subj.ID, sso.Method, sso.Level
	cl := s.Claims
	cl.Subject = sub
	cl.Issuer = p.cfg.Issuer
	cl.AuthTime = sso.AuthTime.UTC().Truncate(time.Second)
	cl.RequestedAt = requestedAt.UTC().Truncate(time.Second)
	cl.AuthenticationContextClassReference = sso.Level
	cl.AuthenticationMethodsReferences = slices.Clone(sso.AMR)
	cl.Extra = claimsFor(subj, granted)
	cl.Extra["auth_method"] = sso.Method
	cl.Extra["sid"] = SID(sso.ID) // OpenID Connect Back-Channel Logout 1.0 §2.1
	s.Headers.Add("alg", c.IDTokenSigningAlg)
	return s
}

// publicSubject is the sub a client sees: the internal ID, or for a client with a
// sector identifier a pairwise alias (OIDC Core §8.1) that other sectors cannot link.
func (p *Provider) publicSubject(c *client, internal string) string {
	if c.SectorIdentifier == "" {
		return internal
	}
	m := hmac.New(sha256.New, p.cfg.PairwiseKey)
	m.Write([]byte(c.SectorIdentifier))
	m.Write([]byte{0})
	m.Write([]byte(internal))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// levelOf parses a stored acr value.
func levelOf(acr string) idp.Level {
	l, _ := idp.ParseACR(acr)
	return l
}
