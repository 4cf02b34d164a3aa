package edge_test

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/ponte-id/ponte/idp/provider"
	"github.com/ponte-id/ponte/internal/clientcert"
	"github.com/ponte-id/ponte/internal/clientcert/certtest"
	"github.com/ponte-id/ponte/internal/edge"
)

// view is what a login method can read of a request.
type view struct {
	Chain   []string // subject CNs from clientcert.From, leaf first
	Headers []string // certificate headers left on the request
	Client  string   // the client address it is given
}

// method stands in for a login method that reads certificates (CNS).
var method = provider.Route{Path: "/login/cns", Prefix: true, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	var v view
	for _, c := range clientcert.From(r.Context()) {
		v.Chain = append(v.Chain, c.Subject.CommonName)
	}
	for _, h := range []string{clientcert.HeaderClientCert, clientcert.HeaderClientCertChain, clientcert.HeaderNginx, clientcert.HeaderXFCC} {
		if len(r.Header.Values(h)) > 0 {
			v.Headers = append(v.Headers, h)
		}
	}
	v.Client, _, _ = net.SplitHostPort(r.RemoteAddr)
	json.NewEncoder(w).Encode(v)
})}

func look(t *testing.T, client *http.Client, url string, header http.Header) view {
	t.Helper()
	req := newRequest(t, http.MethodGet, url+"/login/cns/", nil)
	req.Header = header
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
	var v view
	if err := json.NewDecoder(resp.Body).Decode(&v); err != nil {
		t.Fatal(err)
	}
	return v
}

// card is a smart card issued by an intermediate below a root.
type card struct {
	pair  tls.Certificate
	chain []string // CNs, leaf first
}

func newCard(t *testing.T, cn string) card {
	t.Helper()
	inter := certtest.NewCA(t, "Test CNS root").Intermediate(t, "Test CNS issuing CA")
	c := inter.Card(t, cn)
	return card{pair: c, chain: []string{c.Leaf.Subject.CommonName, inter.Cert.Subject.CommonName}}
}

// forged is every certificate header, in every format, carrying c.
func forged(c card) http.Header {
	leaf := c.pair.Leaf
	pemEscaped := url.PathEscape(certtest.PEM(leaf))
	return http.Header{
		clientcert.HeaderClientCert:      {":" + base64.StdEncoding.EncodeToString(leaf.Raw) + ":"},
		clientcert.HeaderClientCertChain: {":" + base64.StdEncoding.EncodeToString(c.pair.Certificate[1]) + ":"},
		clientcert.HeaderNginx:           {pemEscaped},
		clientcert.HeaderXFCC:            {`By=spiffe://proxy;Cert="` + pemEscaped + `"`},
	}
}

// cardServer serves the edge on 127.0.0.1 as the card listener: ServeTLS
// with clientcert.CardTLSConfig.
func cardServer(t *testing.T, opts edge.Options, maxVersion uint16) (string, *x509.CertPool) {
	t.Helper()
	h, err := edge.New([]provider.Route{method}, opts)
	if err != nil {
		t.Fatal(err)
	}
	ca := certtest.NewCA(t, "Test server CA")
	certFile, keyFile := certtest.WriteKeyPair(t, t.TempDir(), ca.Server(t))
	cfg, err := clientcert.CardTLSConfig(certFile, keyFile, maxVersion)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h, TLSConfig: cfg, ErrorLog: log.New(io.Discard, "", 0)}
	done := make(chan error, 1)
	go func() { done <- srv.ServeTLS(ln, "", "") }()
	t.Cleanup(func() {
		srv.Close()
		if err := <-done; !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("serve: %v", err)
		}
	})
	roots := x509.NewCertPool()
	roots.AddCert(ca.Cert)
	return "https://" + ln.Addr().String(), roots
}

func source(t *testing.T, opts clientcert.Options, log *slog.Logger) *clientcert.Source {
	t.Helper()
	s, err := clientcert.New(opts, log)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestCardListener runs the edge behind real TLS handshakes on the card
// listener: the method sees the card's chain, or nil without a card (the
// handshake succeeding), over TLS 1.3 and 1.2, with or without a Source; a
// header sent along never reaches it.
func TestCardListener(t *testing.T) {
	c, other := newCard(t, "RSSMRA80A01H501U/card"), newCard(t, "VRDGPP80A01H501X/forged")
	for _, tc := range []struct {
		name      string
		certs     *clientcert.Source
		serverMax uint16
		clientMax uint16
		card      bool
		want      []string
	}{
		{name: "card", card: true, want: c.chain},
		{name: "card, client at TLS 1.2", card: true, clientMax: tls.VersionTLS12, want: c.chain},
		{name: "card, listener at TLS 1.2", card: true, serverMax: tls.VersionTLS12, want: c.chain},
		{name: "card, with a Source for proxies", card: true, certs: source(t, clientcert.Options{TrustedProxies: []string{"10.0.0.0/8"}, Header: clientcert.FormatRFC9440}, nil), want: c.chain},
		{name: "no card: no chain, no TLS failure"},
		{name: "no card, TLS 1.2", clientMax: tls.VersionTLS12},
	} {
		t.Run(tc.name, func(t *testing.T) {
			url, roots := cardServer(t, edge.Options{ClientCerts: tc.certs}, tc.serverMax)
			cfg := &tls.Config{RootCAs: roots, MaxVersion: tc.clientMax}
			if tc.card {
				cfg.Certificates = []tls.Certificate{c.pair}
			}
			client := &http.Client{Transport: &http.Transport{TLSClientConfig: cfg}}
			// Without a header, and with every header carrying another card.
			for _, header := range []http.Header{{}, forged(other)} {
				got := look(t, client, url, header)
				if strings.Join(got.Chain, "|") != strings.Join(tc.want, "|") {
					t.Errorf("chain %q, want %q", got.Chain, tc.want)
				}
				if len(got.Headers) > 0 {
					t.Errorf("certificate headers reached the method: %v", got.Headers)
				}
			}
		})
	}
}

// TestClientCertHeaders runs the edge over a plain loopback listener, as
// behind a TLS-terminating proxy: the TCP peer is 127.0.0.1, a certificate
// proxy in some cases and not in others, and an X-Forwarded-For proxy in
// others again.
func TestClientCertHeaders(t *testing.T) {
	c := newCard(t, "RSSMRA80A01H501U/card")
	all := forged(c)
	only := func(names ...string) http.Header {
		h := http.Header{}
		for _, n := range names {
			h[n] = all[n]
		}
		return h
	}
	rfc := only(clientcert.HeaderClientCert, clientcert.HeaderClientCertChain)
	loopback := []string{"127.0.0.1"}
	trusted := func(format string) *clientcert.Source {
		return source(t, clientcert.Options{TrustedProxies: loopback, Header: format}, nil)
	}
	for _, tc := range []struct {
		name       string
		opts       edge.Options
		header     http.Header
		want       []string
		wantClient string
	}{
		{name: "no Source: every header forged by a browser removed", header: all, wantClient: "127.0.0.1"},
		{name: "the peer is not a certificate proxy", opts: edge.Options{ClientCerts: source(t, clientcert.Options{TrustedProxies: []string{"10.0.0.0/8"}, Header: clientcert.FormatRFC9440}, nil)},
			header: all, wantClient: "127.0.0.1"},
		{name: "RFC 9440 from the certificate proxy", opts: edge.Options{ClientCerts: trusted(clientcert.FormatRFC9440)}, header: all, want: c.chain, wantClient: "127.0.0.1"},
		{name: "nginx from the certificate proxy", opts: edge.Options{ClientCerts: trusted(clientcert.FormatNginx)}, header: only(clientcert.HeaderNginx), want: c.chain[:1], wantClient: "127.0.0.1"},
		{name: "Envoy from the certificate proxy", opts: edge.Options{ClientCerts: trusted(clientcert.FormatEnvoy)}, header: only(clientcert.HeaderXFCC), want: c.chain[:1], wantClient: "127.0.0.1"},
		{name: "X-Forwarded-For naming a certificate proxy does not make the header trusted",
			opts:   edge.Options{TrustedProxies: loopback, ClientCerts: source(t, clientcert.Options{TrustedProxies: []string{"10.0.0.0/8"}, Header: clientcert.FormatRFC9440}, nil)},
			header: withXFF(rfc, "10.1.2.3"), wantClient: "10.1.2.3"},
		{name: "the certificate proxy is judged before the X-Forwarded-For rewrite",
			opts:   edge.Options{TrustedProxies: loopback, ClientCerts: trusted(clientcert.FormatRFC9440)},
			header: withXFF(rfc, "203.0.113.7"), want: c.chain, wantClient: "203.0.113.7"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			url, _ := server(t, []provider.Route{method}, tc.opts)
			got := look(t, http.DefaultClient, url, tc.header.Clone())
			if strings.Join(got.Chain, "|") != strings.Join(tc.want, "|") {
				t.Errorf("chain %q, want %q", got.Chain, tc.want)
			}
			if len(got.Headers) > 0 {
				t.Errorf("certificate headers reached the method: %v", got.Headers)
			}
			if got.Client != tc.wantClient {
				t.Errorf("client %q, want %q", got.Client, tc.wantClient)
			}
		})
	}
}

// TestClientCertMalformed: a bad header from a trusted proxy is logged and
// the request goes on without a chain, never a 500.
func TestClientCertMalformed(t *testing.T) {
	logs := &syncBuffer{}
	certs := source(t, clientcert.Options{TrustedProxies: []string{"127.0.0.1"}, Header: clientcert.FormatEnvoy},
		slog.New(slog.NewJSONHandler(logs, nil)))
	url, _ := server(t, []provider.Route{method}, edge.Options{ClientCerts: certs})
	got := look(t, http.DefaultClient, url, http.Header{clientcert.HeaderXFCC: {`By=x;Cert="%zz`}})
	if len(got.Chain) > 0 || len(got.Headers) > 0 {
		t.Errorf("chain %q, headers %q", got.Chain, got.Headers)
	}
	if out := logs.String(); !strings.Contains(out, `"level":"INFO","msg":"client certificate header ignored"`) {
		t.Errorf("not logged at Info: %s", out)
	}
}

func withXFF(h http.Header, addr string) http.Header {
	h = h.Clone()
	h.Set("X-Forwarded-For", addr)
	return h
}
