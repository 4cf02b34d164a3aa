package cns_test

import (
	"crypto/tls"
	"html"
	"net/http"
	"syscall"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/ponte-id/ponte/adapters/cns"
	"github.com/ponte-id/ponte/adapters/cns/cnstest"
	"github.com/ponte-id/ponte/idp"
	"github.com/ponte-id/ponte/idp/clients"
	"github.com/ponte-id/ponte/internal/oidctest"
	"github.com/ponte-id/ponte/storage/storagetest"
)

// cpuTime is the process's user and system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// benchCases are the cards and revocation conditions measured. Cached: one
// card, its OCSP answer cached after the first login. Uncached: two cards
// taking turns in a cache of one, so every login asks the responder (on
// loopback, in this process: its signature counts in the CPU figures).
var benchCases = []struct {
	name   string
	key    cnstest.KeyType
	cached bool
}{
	{"ECDSA/cached", cnstest.ECDSA, true},
	{"ECDSA/uncached", cnstest.ECDSA, false},
	{"RSA-2048/cached", cnstest.RSA, true},
	{"RSA-2048/uncached", cnstest.RSA, false},
}

// BenchmarkCNSLogin measures whole CNS logins, one after another: the
// relying party's authorization, the chooser, the card listener with a new
// TLS handshake presenting the card (a new connection each login), the
// chain and revocation check, the completion on the issuer, the code back
// to the relying party and its exchange for tokens (SQLite).
func BenchmarkCNSLogin(b *testing.B) {
	for _, bc := range benchCases {
		b.Run(bc.name, func(b *testing.B) {
			p := newPKI(b)
			pt := startBenchPonte(b, p, bc.cached)
			r := pt.NewRP(clients.Spec{Scopes: []string{"openid", "inps.dispositivo"}})
			r.Conf.Scopes = []string{"openid", "inps.dispositivo"}
			cards := []tls.Certificate{p.card(func(c *cnstest.Card) { c.Key = bc.key }), p.card(func(c *cnstest.Card) { c.Key = bc.key })}
			login := func(i int) {
				card := cards[i%2]
				if bc.cached {
					card = cards[0]
				}
				br := benchBrowser(b, pt, &card)
				verifier := oauth2.GenerateVerifier()
				resp, body := br.Get(r.Conf.AuthCodeURL(oidctest.RandomString(), oauth2.S256ChallengeOption(verifier)))
				m := cnsLinkRE.FindStringSubmatch(body)
				if m == nil {
					b.Fatalf("chooser: %d", resp.StatusCode)
				}
				resp, _ = br.Get(pt.Issuer + html.UnescapeString(m[1]))
				loc := oidctest.RPRedirect(resp)
				if loc == nil {
					b.Fatalf("login: %d %s\n%s", resp.StatusCode, resp.Request.URL, pt.logs.text())
				}
				if _, err := r.Conf.Exchange(r.Ctx(), loc.Query().Get("code"), oauth2.VerifierOption(verifier)); err != nil {
					b.Fatal(err)
				}
				br.Client.CloseIdleConnections()
			}
			login(0) // warm: keys, discovery, the first OCSP answer
			cpu := cpuTime()
			b.ResetTimer()
			for i := range b.N {
				login(i + 1)
			}
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "logins/s")
			b.ReportMetric(float64((cpuTime()-cpu).Microseconds())/float64(b.N), "cpu-µs/login")
		})
	}
}

// BenchmarkCardCheck measures what the card listener does for one card: a
// new TLS handshake (TLS 1.3, the card's CertificateVerify checked), then
// the card page's chain, policy, subject and revocation check, up to the
// redirect to the issuer. The client's half of the handshake (its signature
// with the card's key) runs in this process too and counts in cpu-µs/op.
func BenchmarkCardCheck(b *testing.B) {
	for _, bc := range benchCases {
		b.Run(bc.name, func(b *testing.B) {
			p := newPKI(b)
			cb := newCardBench(b, p, func(c *cns.Config) { benchRevocation(c, bc.cached) })
			cards := []tls.Certificate{p.card(func(c *cnstest.Card) { c.Key = bc.key }), p.card(func(c *cnstest.Card) { c.Key = bc.key })}
			check := func(i int) {
				card := cards[i%2]
				if bc.cached {
					card = cards[0]
				}
				if resp, _ := cb.get(b, &card); resp.StatusCode != http.StatusSeeOther {
					b.Fatalf("%d\n%s", resp.StatusCode, cb.logs.text())
				}
			}
			check(0)
			cpu := cpuTime()
			b.ResetTimer()
			for i := range b.N {
				check(i + 1)
			}
			b.StopTimer()
			b.ReportMetric(float64((cpuTime()-cpu).Microseconds())/float64(b.N), "cpu-µs/op")
			st, _ := cns.StatusOf(cb.method)
			if bc.cached && st.Counters.OCSPRequests != 1 || !bc.cached && st.Counters.OCSPCacheHits != 0 {
				b.Fatalf("the cache did not behave as the case says: %+v", st.Counters)
			}
		})
	}
}

// benchRevocation: OCSP only (the card's CRL would answer from memory
// anyway), cached or not.
func benchRevocation(c *cns.Config, cached bool) {
	c.Revocation.CRL = false
	if !cached {
		c.Revocation.CacheSize = 1
	}
}

func startBenchPonte(b *testing.B, p *pki, cached bool) *ponte {
	ln := listen(b)
	pt := &ponte{cardURL: "https://" + ln.Addr().String(), logs: &logBook{}}
	pt.Env = oidctest.Start(b, storagetest.SQLite(b), oidctest.Options{Methods: func(issuer string) []idp.Authenticator {
		cfg := p.config(pt.cardURL, issuer)
		benchRevocation(&cfg, cached)
		pt.method = must(cns.New(cfg, cns.Deps{Logger: pt.logs.logger()}))
		return []idp.Authenticator{pt.method}
	}})
	pt.pool = tlsListener(b, ln, pt.Server.Config.Handler)
	return pt
}

// benchBrowser is a fresh browser (new cookie jar, new connections).
func benchBrowser(b *testing.B, pt *ponte, card *tls.Certificate) *oidctest.Browser {
	br := oidctest.NewBrowser(b)
	br.Client.Transport = &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pt.pool, Certificates: []tls.Certificate{*card}}}
	return br
}

// BenchmarkHandshake is the baseline of BenchmarkCardCheck: the same TLS
// handshake presenting the card and one request, answered without any check
// (both halves of the handshake in this process).
func BenchmarkHandshake(b *testing.B) {
	for _, key := range []struct {
		name string
		key  cnstest.KeyType
	}{{"ECDSA", cnstest.ECDSA}, {"RSA-2048", cnstest.RSA}} {
		b.Run(key.name, func(b *testing.B) {
			p := newPKI(b)
			card := p.card(func(c *cnstest.Card) { c.Key = key.key })
			ln := listen(b)
			pool := tlsListener(b, ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if len(r.TLS.PeerCertificates) == 0 {
					http.Error(w, "no card", http.StatusForbidden)
					return
				}
				w.WriteHeader(http.StatusSeeOther)
			}))
			url := "https://" + ln.Addr().String() + "/"
			cpu := cpuTime()
			b.ResetTimer()
			for range b.N {
				c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{card}}},
					CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
				resp, err := c.Get(url)
				if err != nil || resp.StatusCode != http.StatusSeeOther {
					b.Fatal(err)
				}
				resp.Body.Close()
				c.CloseIdleConnections()
			}
			b.StopTimer()
			b.ReportMetric(float64((cpuTime()-cpu).Microseconds())/float64(b.N), "cpu-µs/op")
		})
	}
}
