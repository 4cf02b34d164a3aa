package provider

import (
	"crypto/sha256"
	"encoding/base64"
	"net/http"
)

// SID returns the public session identifier (the sid claim of ID tokens and
// logout tokens, OpenID Connect Back-Channel Logout 1.0 §2.1) of the SSO
// session stored under sessionID. It is derived from the storage key, which
// itself is a hash of the cookie: the sid names the session without being
// usable to find or resume it.
func SID(sessionID string) string {
	sum := sha256.Sum256([]byte("ponte-sid\x00" + sessionID))
	return base64.RawURLEncoding.EncodeToString(sum[:16])
}

// BrowserSession returns the sid and internal subject of the live SSO session
// of the browser making r, if it has one. Pages that log a person in through
// Ponte itself (internal/selfclient) call it on every request, so that their
// own session ends with the SSO session.
func (p *Provider) BrowserSession(r *http.Request) (sid, subject string, ok bool) {
	s, _, ok := p.currentSession(r)
	if !ok {
		return "", "", false
	}
	return SID(s.ID), s.Subject, true
}
