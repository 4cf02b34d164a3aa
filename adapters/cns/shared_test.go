package cns_test

import (
	"crypto/tls"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/ponte-id/ponte/adapters/cns"
	"github.com/ponte-id/ponte/idp"
	"github.com/ponte-id/ponte/idp/clients"
	"github.com/ponte-id/ponte/internal/oidctest"
	"github.com/ponte-id/ponte/storage"
)

// pageResumed is what the page of a resumed TLS session says (Italian).
const pageResumed = "ha ripreso una connessione precedente"

// startPonteWith is startPonte with the card listener's TLS configuration
// changed by tweak.
func startPonteWith(t *testing.T, store storage.Store, p *pki, tweak func(*tls.Config)) *ponte {
	t.Helper()
	ln := listen(t)
	pt := &ponte{cardURL: "https://" + ln.Addr().String(), logs: &logBook{}}
	pt.Env = oidctest.Start(t, store, oidctest.Options{Methods: func(issuer string) []idp.Authenticator {
		pt.method = must(cns.New(p.config(pt.cardURL, issuer), cns.Deps{Logger: pt.logs.logger()}))
		return []idp.Authenticator{pt.method, formMethod{}}
	}})
	pt.pool = tlsListenerWith(t, ln, pt.Server.Config.Handler, tweak)
	return pt
}

// TestCardLeftWithItsHolder: at a shared browser the card's holder logs in
// with the card and leaves with it; the next person, at the same browser
// (its connections and its TLS session cache, not the holder's cookies),
// picks the CNS. Nobody may be logged in as the holder:
//   - the card page closes its connection (Connection: close; a GOAWAY on
//     HTTP/2), so no later request rides the holder's handshake;
//   - the card listener never resumes a TLS session (clientcert.CardTLSConfig),
//     so a new connection is a full handshake, without the card: no card;
//   - a card listener configured to resume anyway is refused at the card page
//     (resumed_session), its reason logged and counted.
//
// TLS 1.2 and 1.3, HTTP/1.1 and HTTP/2, SQLite and PostgreSQL.
func TestCardLeftWithItsHolder(t *testing.T) {
	for _, listener := range []struct {
		name   string
		tweak  func(*tls.Config)
		reason cns.Reason
		page   string
		status int
	}{
		{name: "the card listener as Ponte configures it", reason: cns.ReasonNoCertificate, page: pageNoCard, status: http.StatusForbidden},
		{name: "a card listener that resumes sessions", tweak: func(c *tls.Config) { c.SessionTicketsDisabled = false },
			reason: cns.ReasonResumedSession, page: pageResumed, status: http.StatusForbidden},
	} {
		t.Run(listener.name, func(t *testing.T) {
			backends(t, func(t *testing.T, store storage.Store) {
				p := newPKI(t)
				pt := startPonteWith(t, store, p, listener.tweak)
				r := pt.NewRP(clients.Spec{Scopes: []string{"openid", "inps.dispositivo"}})
				r.Conf.Scopes = []string{"openid", "inps.dispositivo"}
				for _, tc := range []struct {
					version uint16
					h2      bool
				}{{tls.VersionTLS12, false}, {tls.VersionTLS12, true}, {tls.VersionTLS13, false}, {tls.VersionTLS13, true}} {
					t.Run(fmt.Sprintf("%s h2=%v", tls.VersionName(tc.version), tc.h2), func(t *testing.T) {
						card := p.card()
						var cardIn atomic.Bool
						cardIn.Store(true)
						// The browser: one connection pool and one TLS session
						// cache for everyone who sits at it; the card is there
						// while its holder is.
						tr := &http.Transport{ForceAttemptHTTP2: tc.h2, TLSClientConfig: &tls.Config{
							RootCAs: pt.pool, MinVersion: tc.version, MaxVersion: tc.version,
							ClientSessionCache: tls.NewLRUClientSessionCache(16),
							GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
								if cardIn.Load() {
									return &card, nil
								}
								return &tls.Certificate{}, nil
							},
						}}
						t.Cleanup(tr.CloseIdleConnections)

						holder := oidctest.NewBrowser(t)
						holder.Client.Transport = tr
						resp, body := holder.Get(authorize(t, pt, r, holder, oauth2.S256ChallengeOption(oauth2.GenerateVerifier())))
						if oidctest.RPRedirect(resp) == nil {
							t.Fatalf("the holder's login with the card: %d %s %.300s\nlog:\n%s", resp.StatusCode, resp.Request.URL, body, pt.logs.text())
						}

						cardIn.Store(false)
						refusedBefore := len(pt.logs.reasons())
						next := oidctest.NewBrowser(t)
						next.Client.Transport = tr
						resp, body = next.Get(authorize(t, pt, r, next, oauth2.S256ChallengeOption(oauth2.GenerateVerifier())))
						if loc := oidctest.RPRedirect(resp); loc != nil || hasSession(t, pt, next) {
							t.Fatalf("the next person at the browser, without the card, was logged in as the card's holder (%v)", loc)
						}
						if resp.ProtoMajor != map[bool]int{false: 1, true: 2}[tc.h2] {
							t.Fatalf("the card page came over %s", resp.Proto)
						}
						if resp.StatusCode != listener.status || !strings.Contains(body, listener.page) || !strings.HasPrefix(resp.Request.URL.String(), pt.cardURL) {
							t.Fatalf("the card page without the card: %d %s, want %d saying %q: %.600s", resp.StatusCode, resp.Request.URL, listener.status, listener.page, body)
						}
						if got := pt.logs.reasons()[refusedBefore:]; !slices.Equal(got, []string{string(listener.reason)}) {
							t.Fatalf("logged reasons %v, want [%s]; log:\n%s", got, listener.reason, pt.logs.text())
						}
					})
				}
				st, _ := cns.StatusOf(pt.method)
				if st.Counters.Refusals[listener.reason] != 4 || st.Counters.Logins != 4 {
					t.Fatalf("counters %+v: want 4 logins and 4 refusals %s", st.Counters, listener.reason)
				}
			})
		})
	}
}

// TestCardPageKeepsNoConnection: every answer of the card page closes its
// connection, and a page forbids fonts from the card listener (a second
// Content-Security-Policy beside the one every page carries): a connection
// the browser opened for them would carry the card, idle, to the next visit.
func TestCardPageKeepsNoConnection(t *testing.T) {
	p := newPKI(t)
	cb := newCardBench(t, p, nil)
	good := p.card()
	revoked := p.card()
	p.ocsp.Revoke(revoked.Leaf.SerialNumber, time.Now().Add(-time.Minute))
	for _, tc := range []struct {
		name string
		card *tls.Certificate
		page bool
	}{{"no card", nil, true}, {"a revoked card", &revoked, true}, {"a good card", &good, false}} {
		t.Run(tc.name, func(t *testing.T) {
			resp, _ := cb.get(t, tc.card)
			if !resp.Close {
				t.Error("the connection is kept (no Connection: close)")
			}
			policies := resp.Header.Values("Content-Security-Policy")
			if tc.page && (len(policies) != 2 || !strings.Contains(policies[0], "font-src 'self'") || policies[1] != "font-src 'none'") {
				t.Errorf("policies %q, want the page's and font-src 'none'", policies)
			}
		})
	}
}
