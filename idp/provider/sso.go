package provider

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/ponte-id/ponte/idp"
	"github.com/ponte-id/ponte/storage"
)

// randomToken returns 32 random bytes, base64url.
func randomToken() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go 1.24+)
	return base64.RawURLEncoding.EncodeToString(b)
}

func (p *Provider) setCookie(w http.ResponseWriter, name, value string, maxAge int) {
	http.SetCookie(w, &http.Cookie{
		Name: name, Value: value, Path: "/", MaxAge: maxAge,
		Secure: p.cfg.CookieSecure, HttpOnly: true, SameSite: http.SameSiteLaxMode,
	})
}

// currentSession returns the browser's live SSO session and its citizen; a
// session that cannot be read counts as none (the request then needs a
// login, which an outage of the database stops in its turn).
func (p *Provider) currentSession(r *http.Request) (storage.Session, storage.Subject, bool) {
	s, subj, ok, _ := p.readSession(r)
	return s, subj, ok
}

// readSession is currentSession that also returns the error (wrapping
// storage.ErrUnavailable) of a session cookie the database's outage left
// unread: whether the browser is logged in is then unknown.
func (p *Provider) readSession(r *http.Request) (storage.Session, storage.Subject, bool, error) {
	c, err := r.Cookie(p.cfg.CookieName)
	if err != nil || c.Value == "" {
		return storage.Session{}, storage.Subject{}, false, nil
	}
	ctx := r.Context()
	s, err := p.store.GetSession(ctx, hashKey(c.Value))
	if err != nil {
		switch {
		case unavailable(err):
			p.log.WarnContext(ctx, "reading SSO session: database unavailable", "err", err)
			return storage.Session{}, storage.Subject{}, false, err
		case !errors.Is(err, storage.ErrNotFound):
			p.log.ErrorContext(ctx, "reading SSO session failed", "err", err)
		}
		return storage.Session{}, storage.Subject{}, false, nil
	}
	if !p.now().Before(s.ExpiresAt) {
		return storage.Session{}, storage.Subject{}, false, nil
	}
	subj, err := p.store.GetSubject(ctx, s.Subject)
	if unavailable(err) {
		p.log.WarnContext(ctx, "reading session subject: database unavailable", "err", err)
		return storage.Session{}, storage.Subject{}, false, err
	}
	if err != nil {
		p.log.ErrorContext(ctx, "reading session subject failed", "err", err)
		return storage.Session{}, storage.Subject{}, false, nil
	}
	return s, subj, true, nil
}

// endTx ends the transaction carried by ctx: a commit if err is nil, and
// otherwise a rollback and err.
func (p *Provider) endTx(ctx context.Context, err error) error {
	if err != nil {
		_ = p.store.Rollback(ctx)
		return err
	}
	return p.store.Commit(ctx)
}

// ssoSession is a stored session with the cookie value that names it.
type ssoSession struct {
	storage.Session
	value string
}

// createSession links the citizen and replaces the browser's session, in the
// transaction carried by ctx.
func (p *Provider) createSession(ctx context.Context, r *http.Request, id idp.Identity) (ssoSession, storage.Subject, error) {
	subj, err := p.store.LinkSubject(ctx, storage.Subject{
		ID: randomToken()[:22], FiscalNumber: id.FiscalNumber, GivenName: id.GivenName,
		FamilyName: id.FamilyName, Birthdate: id.Birthdate, Gender: id.Gender,
		Email: id.Email, PhoneNumber: id.PhoneNumber, ClaimsRank: id.ClaimsRank(),
	})
	if err != nil {
		return ssoSession{}, storage.Subject{}, fmt.Errorf("link subject: %w", err)
	}
	value := randomToken()
	now := p.now().UTC()
	if c, err := r.Cookie(p.cfg.CookieName); err == nil && c.Value != "" {
		if err := p.replaceSession(ctx, hashKey(c.Value), hashKey(value), subj.ID, now.Add(p.cfg.SessionTTL)); err != nil {
			return ssoSession{}, storage.Subject{}, fmt.Errorf("end old session: %w", err)
		}
	}
	s := storage.Session{
		ID: hashKey(value), Subject: subj.ID, AuthTime: now, Method: string(id.Method),
		Level: id.Level.ACR(), AMR: slices.Clone(id.AMR), MethodData: id.SessionData, MethodKey: sessionKey(id.Method, id.SessionKey),
		CreatedAt: now, ExpiresAt: now.Add(p.cfg.SessionTTL),
	}
	if err := p.store.CreateSession(ctx, s); err != nil {
		return ssoSession{}, storage.Subject{}, fmt.Errorf("create session: %w", err)
	}
	return ssoSession{Session: s, value: value}, subj, nil
}

// endSession deletes the browser's SSO session, if any, and its cookie. An
// outage of the database ends nothing: the error (wrapping
// storage.ErrUnavailable) is returned and the cookie kept.
func (p *Provider) endSession(w http.ResponseWriter, r *http.Request) error {
	c, err := r.Cookie(p.cfg.CookieName)
	if err != nil || c.Value == "" {
		return nil
	}
	if err := p.ender.endSession(r.Context(), hashKey(c.Value)); unavailable(err) {
		return err
	} else if err != nil {
		p.log.ErrorContext(r.Context(), "ending SSO session failed", "err", err)
	}
	p.setCookie(w, p.cfg.CookieName, "", -1)
	return nil
}

// replaceSession ends the browser's previous session when a login starts a
// new one, in the transaction carried by ctx. A new login of the same citizen
// (a step-up, say) keeps the relying parties of the old session for the new
// one, with the sid each was given: they stay logged in, and a later logout
// reaches them. Another citizen's login ends the old session with its
// back-channel logouts.
func (p *Provider) replaceSession(ctx context.Context, oldID, newID, subject string, expires time.Time) error {
	old, err := p.store.GetSession(ctx, oldID)
	if errors.Is(err, storage.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if old.Subject != subject {
		_, _, err := p.ender.EndIn(ctx, []storage.Session{old})
		return err
	}
	if err := p.store.MoveSessionClients(ctx, oldID, newID, expires); err != nil {
		return err
	}
	if err := p.store.DeleteSession(ctx, oldID); err != nil && !errors.Is(err, storage.ErrNotFound) {
		return err
	}
	return nil
}

// maxUserAgent bounds the User-Agent kept in the login history.
const maxUserAgent = 256

// recordLogin adds the login to the citizen's history, in the transaction
// carried by ctx: when, how, for which relying party, from which address and
// browser. The history is bounded per citizen and swept after its retention.
func (p *Provider) recordLogin(ctx context.Context, r *http.Request, s storage.Session, clientID string) error {
	ip := ""
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	if a, err := netip.ParseAddr(host); err == nil {
		ip = a.Unmap().WithZone("").String()
	}
	ua := strings.ToValidUTF8(r.UserAgent(), "\uFFFD")
	for len(ua) > maxUserAgent {
		_, size := utf8.DecodeLastRuneInString(ua)
		ua = ua[:len(ua)-size]
	}
	return p.store.RecordLogin(ctx, storage.LoginEvent{
		ID: randomToken()[:22], Subject: s.Subject, SessionID: s.ID, Method: s.Method, Level: s.Level,
		ClientID: clientID, IP: ip, UserAgent: ua, CreatedAt: s.CreatedAt, ExpiresAt: s.CreatedAt.Add(p.cfg.LoginHistoryRetention),
	}, p.cfg.LoginHistoryKeep)
}
