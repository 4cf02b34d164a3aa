package cns_test

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ponte-id/ponte/adapters/cns"
	"github.com/ponte-id/ponte/adapters/cns/cnstest"
)

// The pages' messages, in Italian (the default).
const (
	pageNoCard      = "Nessuna carta rilevata"
	pageExpired     = "è scaduto"
	pageNotYet      = "non è ancora valido"
	pageUnknown     = "non è stata rilasciata da un ente riconosciuto"
	pageNotCNS      = "non è un certificato di autenticazione CNS"
	pageBadSubject  = "non contiene un codice fiscale valido"
	pageRevoked     = "è stato revocato"
	pageBadChain    = "Il certificato della carta non è valido"
	pageUnavailable = "non è possibile verificare"
	pageRetry       = "Riprova con la carta"
	pageOther       = "Scegli un&#39;altra modalità di accesso"
)

func withCard(mod func(*cnstest.Card)) func(*cnstest.Card) { return mod }

func ocspOnly(c *cns.Config) { c.Revocation.CRL = false }
func crlOnly(c *cns.Config)  { c.Revocation.OCSP = false }

// TestRefusals drives every bad card of issue 11 through a real TLS
// handshake on the card listener: each gets its own reason in the log and
// the counters, and a page in the citizen's language that says why and what
// to do (a retry, the other methods) — never a TLS failure, never a login.
func TestRefusals(t *testing.T) {
	now := time.Now()
	for _, tc := range []struct {
		name   string
		noCard bool
		card   func(*cnstest.Card)
		setup  func(p *pki, card *x509.Certificate)
		cfg    func(*cns.Config)
		reason cns.Reason
		status int
		page   string
	}{
		{name: "no certificate", noCard: true, reason: cns.ReasonNoCertificate, status: http.StatusForbidden, page: pageNoCard},
		{name: "expired", card: withCard(func(c *cnstest.Card) { c.NotBefore, c.NotAfter = now.Add(-2*365*24*time.Hour), now.Add(-time.Hour) }),
			reason: cns.ReasonExpired, status: http.StatusForbidden, page: pageExpired},
		{name: "not yet valid", card: withCard(func(c *cnstest.Card) { c.NotBefore = now.Add(24 * time.Hour) }),
			reason: cns.ReasonNotYetValid, status: http.StatusForbidden, page: pageNotYet},
		{name: "key usage without digitalSignature", card: withCard(func(c *cnstest.Card) { c.KeyUsage = x509.KeyUsageKeyEncipherment }),
			reason: cns.ReasonKeyUsage, status: http.StatusForbidden, page: pageNotCNS},
		{name: "no key usage at all", card: withCard(func(c *cnstest.Card) { c.NoKeyUsage = true }),
			reason: cns.ReasonKeyUsage, status: http.StatusForbidden, page: pageNotCNS},
		{name: "extended key usage serverAuth", card: withCard(func(c *cnstest.Card) { c.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth} }),
			reason: cns.ReasonExtKeyUsage, status: http.StatusForbidden, page: pageNotCNS},
		{name: "no extended key usage (x509 would take it for any)", card: withCard(func(c *cnstest.Card) { c.NoExtKeyUsage = true }),
			reason: cns.ReasonExtKeyUsage, status: http.StatusForbidden, page: pageNotCNS},
		{name: "missing policy", card: withCard(func(c *cnstest.Card) { c.NoPolicy = true }),
			reason: cns.ReasonPolicy, status: http.StatusForbidden, page: pageNotCNS},
		{name: "another policy (a signature certificate)", card: withCard(func(c *cnstest.Card) { c.Policies = []string{"1.3.76.16.6"} }),
			reason: cns.ReasonPolicy, status: http.StatusForbidden, page: pageNotCNS},
		{name: "malformed CN", card: withCard(func(c *cnstest.Card) { c.CN = "MARIO ROSSI" }),
			reason: cns.ReasonMalformedSubject, status: http.StatusForbidden, page: pageBadSubject},
		{name: "wrong check character", card: withCard(func(c *cnstest.Card) { c.FiscalNumber = "RSSMRA80A01H501A" }),
			reason: cns.ReasonFiscalNumber, status: http.StatusForbidden, page: pageBadSubject},
		{name: "CN and serialNumber disagree", card: withCard(func(c *cnstest.Card) { c.SerialNumber = "TINIT-" + otherCF }),
			reason: cns.ReasonSubjectMismatch, status: http.StatusForbidden, page: pageBadSubject},
		{name: "revoked (OCSP)", setup: func(p *pki, c *x509.Certificate) { p.ocsp.Revoke(c.SerialNumber, now.Add(-time.Minute)) },
			reason: cns.ReasonRevoked, status: http.StatusForbidden, page: pageRevoked},
		{name: "revoked (CRL)", cfg: crlOnly, setup: func(p *pki, c *x509.Certificate) {
			p.publishCRLs(cnstest.CRLOptions{Revoked: []cnstest.Revoked{{Serial: c.SerialNumber}}})
		}, reason: cns.ReasonRevoked, status: http.StatusForbidden, page: pageRevoked},
		{name: "revoked issuing CA (the root's CRL)", cfg: crlOnly, setup: func(p *pki, _ *x509.Certificate) {
			p.rev.publish("/root.crl", must(p.root.CRL(cnstest.CRLOptions{Revoked: []cnstest.Revoked{{Serial: p.issuing.Cert.SerialNumber}}})))
		}, reason: cns.ReasonRevoked, status: http.StatusForbidden, page: pageRevoked},
		{name: "stale CRL", cfg: crlOnly, setup: func(p *pki, _ *x509.Certificate) {
			p.publishCRLs(cnstest.CRLOptions{ThisUpdate: now.Add(-48 * time.Hour), NextUpdate: now.Add(-24 * time.Hour)})
		}, reason: cns.ReasonCRLStale, status: http.StatusServiceUnavailable, page: pageUnavailable},
		{name: "CRL signed by another CA", cfg: crlOnly, setup: func(p *pki, _ *x509.Certificate) {
			other := must(cnstest.NewRoot("Test CNS issuing CA")) // the same name, another key
			p.rev.publish("/issuing.crl", must(other.CRL(cnstest.CRLOptions{})))
		}, reason: cns.ReasonCRLUnavailable, status: http.StatusServiceUnavailable, page: pageUnavailable},
		{name: "a partition of the CRL that does not cover the card", cfg: crlOnly, setup: func(p *pki, _ *x509.Certificate) {
			p.publishCRLs(cnstest.CRLOptions{DistributionPoint: "http://elsewhere.test/part2.crl"})
		}, reason: cns.ReasonCRLUnavailable, status: http.StatusServiceUnavailable, page: pageUnavailable},
		{name: "a delta CRL (a critical extension Ponte does not handle)", cfg: crlOnly, setup: func(p *pki, _ *x509.Certificate) {
			p.publishCRLs(cnstest.CRLOptions{CriticalDelta: true})
		}, reason: cns.ReasonCRLUnavailable, status: http.StatusServiceUnavailable, page: pageUnavailable},
		{name: "CRL distribution point down", cfg: crlOnly, setup: func(p *pki, _ *x509.Certificate) { p.rev.setCRLDown(true) },
			reason: cns.ReasonCRLUnavailable, status: http.StatusServiceUnavailable, page: pageUnavailable},
		{name: "OCSP responder down", cfg: ocspOnly, setup: func(p *pki, _ *x509.Certificate) { p.ocsp.Set(cnstest.Faults{Down: true}) },
			reason: cns.ReasonOCSPUnavailable, status: http.StatusServiceUnavailable, page: pageUnavailable},
		{name: "OCSP tryLater", cfg: ocspOnly, setup: func(p *pki, _ *x509.Certificate) { p.ocsp.Set(cnstest.Faults{TryLater: true}) },
			reason: cns.ReasonOCSPUnavailable, status: http.StatusServiceUnavailable, page: pageUnavailable},
		{name: "OCSP unknown", setup: func(p *pki, _ *x509.Certificate) { p.ocsp.Set(cnstest.Faults{Unknown: true}) },
			reason: cns.ReasonOCSPUnknown, status: http.StatusForbidden, page: pageBadChain},
		{name: "OCSP answer signed by a key the CA never certified", cfg: ocspOnly, setup: func(p *pki, _ *x509.Certificate) { p.ocsp.Set(cnstest.Faults{Forge: true}) },
			reason: cns.ReasonOCSPBadResponse, status: http.StatusServiceUnavailable, page: pageUnavailable},
		{name: "OCSP delegated responder without id-kp-OCSPSigning", cfg: ocspOnly, setup: func(p *pki, _ *x509.Certificate) {
			p.ocsp.UseSigner(must(p.issuing.ResponderCert("Test OCSP responder", true)))
		}, reason: cns.ReasonOCSPBadResponse, status: http.StatusServiceUnavailable, page: pageUnavailable},
		{name: "OCSP delegated responder certified by another CA", cfg: ocspOnly, setup: func(p *pki, _ *x509.Certificate) {
			p.ocsp.UseSigner(must(p.root.ResponderCert("Test OCSP responder", false)))
		}, reason: cns.ReasonOCSPBadResponse, status: http.StatusServiceUnavailable, page: pageUnavailable},
		{name: "OCSP answer with another nonce (replayed)", cfg: ocspOnly, setup: func(p *pki, _ *x509.Certificate) { p.ocsp.Set(cnstest.Faults{WrongNonce: true}) },
			reason: cns.ReasonOCSPBadResponse, status: http.StatusServiceUnavailable, page: pageUnavailable},
		{name: "OCSP answer past its nextUpdate", cfg: ocspOnly, setup: func(p *pki, _ *x509.Certificate) {
			p.ocsp.Set(cnstest.Faults{Age: 3 * time.Hour, Validity: time.Hour})
		}, reason: cns.ReasonOCSPStale, status: http.StatusServiceUnavailable, page: pageUnavailable},
		{name: "OCSP answer without nextUpdate, older than max_age", cfg: ocspOnly, setup: func(p *pki, _ *x509.Certificate) {
			p.ocsp.Set(cnstest.Faults{Age: 25 * time.Hour, NoNextUpdate: true})
		}, reason: cns.ReasonOCSPStale, status: http.StatusServiceUnavailable, page: pageUnavailable},
		{name: "OCSP answer from the future", cfg: ocspOnly, setup: func(p *pki, _ *x509.Certificate) {
			p.ocsp.Set(cnstest.Faults{Age: -time.Hour})
		}, reason: cns.ReasonOCSPStale, status: http.StatusServiceUnavailable, page: pageUnavailable},
		{name: "no responder, no distribution point", card: withCard(func(c *cnstest.Card) { c.OCSPServer, c.CRLDistributionPoints = nil, nil }),
			reason: cns.ReasonNoRevocationSource, status: http.StatusServiceUnavailable, page: pageUnavailable},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p := newPKI(t)
			var card *tls.Certificate
			if !tc.noCard {
				c := p.card(cardMods(tc.card)...)
				card = &c
				if tc.setup != nil {
					tc.setup(p, c.Leaf)
				}
			}
			cb := newCardBench(t, p, tc.cfg)
			resp, body := cb.get(t, card)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d; log:\n%s", resp.StatusCode, tc.status, cb.logs.text())
			}
			if !strings.Contains(body, tc.page) || !strings.Contains(body, pageRetry) || !strings.Contains(body, pageOther) {
				t.Fatalf("the page does not say %q with a retry and the other methods:\n%s", tc.page, body)
			}
			if !strings.Contains(body, `href="http://issuer.test/login?challenge=good"`) {
				t.Fatalf("the page does not link the chooser on the issuer:\n%s", body)
			}
			if got := cb.logs.reasons(); !slices.Equal(got, []string{string(tc.reason)}) {
				t.Fatalf("logged reasons %v, want [%s]; log:\n%s", got, tc.reason, cb.logs.text())
			}
			st, _ := cns.StatusOf(cb.method)
			if st.Counters.Refusals[tc.reason] != 1 || st.Counters.Logins != 0 {
				t.Fatalf("counters %+v, want one refusal %s", st.Counters, tc.reason)
			}
			if len(cb.host.states) != 0 {
				t.Fatal("a refused card left an identity behind")
			}
			if tc.status == http.StatusServiceUnavailable && resp.Header.Get("Retry-After") == "" {
				t.Error("503 without Retry-After")
			}
		})
	}
}

func cardMods(m func(*cnstest.Card)) []func(*cnstest.Card) {
	if m == nil {
		return nil
	}
	return []func(*cnstest.Card){m}
}

// TestAccepted: good cards, including those that a failing source does not
// stop when another one answers; each reaches the issuer's completion page
// with its identity kept for the browser, and nothing is refused.
func TestAccepted(t *testing.T) {
	now := time.Now()
	crlDir := func(t *testing.T, lists ...[]byte) string {
		dir := t.TempDir()
		for i, l := range lists {
			writeFile(t, filepath.Join(dir, fmt.Sprintf("%d.crl", i)), l)
		}
		return dir
	}
	for _, tc := range []struct {
		name  string
		card  func(*cnstest.Card)
		setup func(p *pki, card *x509.Certificate)
		cfg   func(t *testing.T, p *pki, c *cns.Config)
		// forgiven is the failure revocation.fail_open let through.
		forgiven cns.Reason
	}{
		{name: "ECDSA card, OCSP"},
		{name: "RSA-2048 card, OCSP", card: func(c *cnstest.Card) { c.Key = cnstest.RSA }},
		{name: "CRL only", cfg: func(_ *testing.T, _ *pki, c *cns.Config) { crlOnly(c) }},
		{name: "OCSP down, the CRL answers", setup: func(p *pki, _ *x509.Certificate) { p.ocsp.Set(cnstest.Faults{Down: true}) }},
		{name: "OCSP without nonce (pre-produced), fresh", cfg: func(_ *testing.T, _ *pki, c *cns.Config) { ocspOnly(c) },
			setup: func(p *pki, _ *x509.Certificate) { p.ocsp.Set(cnstest.Faults{NoNonce: true}) }},
		{name: "OCSP nonce off", cfg: func(_ *testing.T, _ *pki, c *cns.Config) { ocspOnly(c); c.Revocation.OCSPNonce = false }},
		{name: "OCSP by a delegated responder", cfg: func(_ *testing.T, _ *pki, c *cns.Config) { ocspOnly(c) }, setup: func(p *pki, _ *x509.Certificate) {
			p.ocsp.UseSigner(must(p.issuing.ResponderCert("Test OCSP responder", false)))
		}},
		{name: "the configured responder in place of the card's", card: func(c *cnstest.Card) { c.OCSPServer = []string{"http://127.0.0.1:9/nowhere"} },
			cfg: func(_ *testing.T, p *pki, c *cns.Config) { ocspOnly(c); c.Revocation.OCSPURL = p.rev.url("/ocsp") }},
		{name: "a CRL file, no responder or distribution point", card: func(c *cnstest.Card) { c.OCSPServer, c.CRLDistributionPoints = nil, nil },
			cfg: func(t *testing.T, p *pki, c *cns.Config) {
				c.Revocation.CRLDir = crlDir(t, must(p.issuing.CRL(cnstest.CRLOptions{})))
			}},
		{name: "a stale CRL file and a fresh download", card: func(c *cnstest.Card) { c.OCSPServer = nil },
			cfg: func(t *testing.T, p *pki, c *cns.Config) {
				c.Revocation.CRLDir = crlDir(t, must(p.issuing.CRL(cnstest.CRLOptions{ThisUpdate: now.Add(-48 * time.Hour), NextUpdate: now.Add(-24 * time.Hour)})))
			}},
		{name: "a partitioned CRL that covers the card", cfg: func(_ *testing.T, _ *pki, c *cns.Config) { crlOnly(c) }, setup: func(p *pki, _ *x509.Certificate) {
			p.publishCRLs(cnstest.CRLOptions{DistributionPoint: p.rev.url("/issuing.crl")})
		}},
		{name: "serialNumber fallback", card: func(c *cnstest.Card) { c.CN, c.SerialNumber = "ROSSI MARIO", "TINIT-"+citizenCF },
			cfg: func(_ *testing.T, _ *pki, c *cns.Config) { c.SerialNumberFallback = true }},
		{name: "fail open: OCSP down, no CRL", cfg: func(_ *testing.T, _ *pki, c *cns.Config) { ocspOnly(c); c.Revocation.FailOpen = true },
			setup: func(p *pki, _ *x509.Certificate) { p.ocsp.Set(cnstest.Faults{Down: true}) }, forgiven: cns.ReasonOCSPUnavailable},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p := newPKI(t)
			c := p.card(cardMods(tc.card)...)
			if tc.setup != nil {
				tc.setup(p, c.Leaf)
			}
			cb := newCardBench(t, p, func(cfg *cns.Config) {
				if tc.cfg != nil {
					tc.cfg(t, p, cfg)
				}
			})
			resp, body := cb.get(t, &c)
			loc := resp.Header.Get("Location")
			if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(loc, "http://issuer.test/login/cns/done?r=") {
				t.Fatalf("%d %s, want the issuer's completion; log:\n%s\n%s", resp.StatusCode, loc, cb.logs.text(), body)
			}
			if got := cb.logs.reasons(); len(got) != 0 {
				t.Fatalf("refusals logged: %v", got)
			}
			st, _ := cns.StatusOf(cb.method)
			if st.Counters.Logins != 1 {
				t.Fatalf("counters %+v", st.Counters)
			}
			if tc.forgiven != "" && (st.Counters.FailOpen != 1 || !strings.Contains(cb.logs.text(), "reason="+string(tc.forgiven))) {
				t.Fatalf("fail open not counted or logged: %+v\n%s", st.Counters, cb.logs.text())
			}
		})
	}
}

func writeFile(t testing.TB, path string, data []byte) {
	t.Helper()
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}
