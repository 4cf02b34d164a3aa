package cns_test

import (
	"crypto/tls"
	"encoding/base64"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"

	"golang.org/x/oauth2"

	"github.com/ponte-id/ponte/adapters/cns"
	"github.com/ponte-id/ponte/adapters/cns/cnstest"
	"github.com/ponte-id/ponte/idp"
	"github.com/ponte-id/ponte/idp/clients"
	"github.com/ponte-id/ponte/idp/provider"
	"github.com/ponte-id/ponte/internal/clientcert"
	"github.com/ponte-id/ponte/internal/edge"
	"github.com/ponte-id/ponte/internal/oidctest"
	"github.com/ponte-id/ponte/storage"
)

// proxyHeaders is what a TLS-terminating proxy in front of Ponte sends for
// card, in format.
func proxyHeaders(t testing.TB, format string, card tls.Certificate) http.Header {
	chain := must(cnstest.Chain(card))
	h := http.Header{}
	switch format {
	case clientcert.FormatRFC9440:
		h.Set(clientcert.HeaderClientCert, ":"+base64.StdEncoding.EncodeToString(chain[0].Raw)+":")
		var rest []string
		for _, c := range chain[1:] {
			rest = append(rest, ":"+base64.StdEncoding.EncodeToString(c.Raw)+":")
		}
		h.Set(clientcert.HeaderClientCertChain, strings.Join(rest, ", "))
	case clientcert.FormatNginx:
		// $ssl_client_escaped_cert: the leaf only, every reserved byte escaped.
		h.Set(clientcert.HeaderNginx, clientcert.EscapeNginx(string(cnstest.PEM(chain[0]))))
	case clientcert.FormatEnvoy:
		h.Set(clientcert.HeaderXFCC, `By=spiffe://ponte;Hash=00;Cert="`+clientcert.EscapeNginx(string(cnstest.PEM(chain[0])))+
			`";Chain="`+clientcert.EscapeNginx(string(cnstest.PEM(chain...)))+`"`)
	default:
		t.Fatalf("format %q", format)
	}
	return h
}

// proxyBench is a method alone behind the edge on a plain loopback
// listener, as behind a TLS-terminating proxy: the TCP peer is 127.0.0.1.
type proxyBench struct {
	method idp.Authenticator
	logs   *logBook
	url    string
}

func newProxyBench(t *testing.T, p *pki, opts clientcert.Options) *proxyBench {
	logs := &logBook{}
	m := must(cns.New(p.config("https://carta.example.it", "http://issuer.test"), cns.Deps{Logger: logs.logger()}))
	src := must(clientcert.New(opts, logs.logger()))
	h := must(edge.New([]provider.Route{methodRoute(m.Handler(&fakeHost{}))}, edge.Options{ClientCerts: src}))
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return &proxyBench{method: m, logs: logs, url: srv.URL}
}

func (pb *proxyBench) get(t *testing.T, header http.Header) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, pb.url+"/login/cns"+cns.PathCard+"?challenge=good", nil)
	req.Header = header
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, string(body)
}

// TestProxyHeaders: behind a TLS-terminating proxy trusted for it, the card
// arrives in the proxy's header (RFC 9440, nginx, Envoy) and is verified
// again in full; a header from an address not trusted for it, a malformed
// one, or one that carries a certificate of no CNS CA, logs nobody in, each
// with its reason in the log.
func TestProxyHeaders(t *testing.T) {
	loopback := []string{"127.0.0.1/32", "::1/128"}
	for _, format := range []string{clientcert.FormatRFC9440, clientcert.FormatNginx, clientcert.FormatEnvoy} {
		t.Run(format, func(t *testing.T) {
			t.Parallel()
			p := newPKI(t)
			card := p.card(func(c *cnstest.Card) { c.Key = cnstest.ECDSA })
			if format == clientcert.FormatNginx {
				p.trustIssuing() // nginx forwards the leaf alone
			}
			pb := newProxyBench(t, p, clientcert.Options{TrustedProxies: loopback, Header: format})
			resp, body := pb.get(t, proxyHeaders(t, format, card))
			if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), "http://issuer.test/login/cns/done?r=") {
				t.Fatalf("a card from a trusted proxy: %d %.300s\n%s", resp.StatusCode, body, pb.logs.text())
			}
		})
	}
	for _, tc := range []struct {
		name   string
		opts   clientcert.Options
		header func(p *pki) http.Header
		reason cns.Reason
		logged string
	}{
		{name: "header from an address not trusted for it", opts: clientcert.Options{TrustedProxies: []string{"10.0.0.0/8"}, Header: clientcert.FormatRFC9440},
			header: func(p *pki) http.Header { return proxyHeaders(t, clientcert.FormatRFC9440, p.card()) }, reason: cns.ReasonNoCertificate,
			logged: "client certificate header from an untrusted peer removed"},
		{name: "no proxy configured (a browser forging the header)", opts: clientcert.Options{},
			header: func(p *pki) http.Header { return proxyHeaders(t, clientcert.FormatNginx, p.card()) }, reason: cns.ReasonNoCertificate},
		{name: "malformed header from the trusted proxy", opts: clientcert.Options{TrustedProxies: loopback, Header: clientcert.FormatRFC9440},
			header: func(*pki) http.Header {
				return http.Header{clientcert.HeaderClientCert: {":bm90IGEgY2VydGlmaWNhdGU=:"}}
			}, reason: cns.ReasonNoCertificate, logged: "client certificate header ignored"},
		{name: "a header in another format than the proxy's", opts: clientcert.Options{TrustedProxies: loopback, Header: clientcert.FormatEnvoy},
			header: func(p *pki) http.Header { return proxyHeaders(t, clientcert.FormatNginx, p.card()) }, reason: cns.ReasonNoCertificate},
		{name: "forged certificate (a CA of its own) from the trusted proxy", opts: clientcert.Options{TrustedProxies: loopback, Header: clientcert.FormatNginx},
			header: func(*pki) http.Header {
				forger := must(cnstest.NewRoot("Test CNS root")) // the real root's name, another key
				return proxyHeaders(t, clientcert.FormatNginx, must(forger.Issue(cnstest.Card{FiscalNumber: citizenCF})))
			}, reason: cns.ReasonUnknownIssuer},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p := newPKI(t)
			pb := newProxyBench(t, p, tc.opts)
			resp, body := pb.get(t, tc.header(p))
			if resp.StatusCode != http.StatusForbidden || resp.Header.Get("Location") != "" {
				t.Fatalf("%d %s %.300s", resp.StatusCode, resp.Header.Get("Location"), body)
			}
			if got := pb.logs.reasons(); !slices.Equal(got, []string{string(tc.reason)}) {
				t.Fatalf("logged reasons %v, want [%s]\n%s", got, tc.reason, pb.logs.text())
			}
			if tc.logged != "" && !strings.Contains(pb.logs.text(), tc.logged) {
				t.Fatalf("the log does not say %q:\n%s", tc.logged, pb.logs.text())
			}
		})
	}
}

// TestEndToEndBehindProxy: the whole login, SQLite and PostgreSQL, with the
// card read by a TLS-terminating proxy that forwards it in RFC 9440 headers
// to a node's plain listener (the edge with a clientcert.Source trusting the
// proxy's address), then completed on the issuer.
func TestEndToEndBehindProxy(t *testing.T) {
	backends(t, func(t *testing.T, store storage.Store) {
		p := newPKI(t)
		logs := &logBook{}
		const proxyURL = "https://carta.example.it"
		e := oidctest.Start(t, store, oidctest.Options{Methods: func(issuer string) []idp.Authenticator {
			return []idp.Authenticator{must(cns.New(p.config(proxyURL, issuer), cns.Deps{Logger: logs.logger()}))}
		}})
		src := must(clientcert.New(clientcert.Options{TrustedProxies: []string{"127.0.0.1"}, Header: clientcert.FormatRFC9440}, logs.logger()))
		behind := httptest.NewServer(must(edge.New(e.Provider.Routes(), edge.Options{ClientCerts: src})))
		t.Cleanup(behind.Close)

		r := e.NewRP(clients.Spec{Scopes: []string{"openid", "inps.dispositivo"}})
		r.Conf.Scopes = []string{"openid", "inps.dispositivo"}
		b := oidctest.NewBrowser(t)
		verifier := oauth2.GenerateVerifier()
		_, body := b.Get(r.Conf.AuthCodeURL(oidctest.RandomString(), oauth2.S256ChallengeOption(verifier)))
		m := cnsLinkRE.FindStringSubmatch(body)
		if m == nil {
			t.Fatalf("chooser: %.300s", body)
		}
		stop := noRedirects(b)
		resp, err := stop.Get(e.Issuer + strings.ReplaceAll(m[1], "&amp;", "&"))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		loc, _ := url.Parse(resp.Header.Get("Location"))
		if loc == nil || loc.Scheme+"://"+loc.Host != proxyURL {
			t.Fatalf("the chooser's link goes to %v, want the proxy", loc)
		}
		// The proxy: TLS with the card ended there; the request goes on to
		// the node's plain listener with the card in Client-Cert.
		req, _ := http.NewRequest(http.MethodGet, behind.URL+loc.RequestURI(), nil)
		req.Header = proxyHeaders(t, clientcert.FormatRFC9440, p.card())
		resp, err = stop.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		done := resp.Header.Get("Location")
		if !strings.HasPrefix(done, e.Issuer+"/login/cns/done?r=") {
			t.Fatalf("behind the proxy: %d %q\n%s", resp.StatusCode, done, logs.text())
		}
		resp, body = b.Get(done)
		_, _, c := exchange(t, r, oidctest.RPRedirect(resp), verifier)
		if c.ACR != idp.ACRDispositivo || c.AuthMethod != "cns" {
			t.Fatalf("claims %+v (%d %.300s)", c, resp.StatusCode, body)
		}
	})
}
