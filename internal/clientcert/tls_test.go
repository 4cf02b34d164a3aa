package clientcert_test

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ponte-id/ponte/internal/clientcert"
	"github.com/ponte-id/ponte/internal/clientcert/certtest"
)

// cardListener serves h on 127.0.0.1 with CardTLSConfig, as cmd serves the
// card listener: http.Server.ServeTLS with the configuration and no files.
// It returns the URL and the pool that trusts the server.
func cardListener(t *testing.T, h http.Handler, maxVersion uint16) (string, *x509.CertPool) {
	t.Helper()
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
	// The refused handshake below is logged by the server: not in the test's output.
	srv := &http.Server{Handler: h, TLSConfig: cfg, ErrorLog: log.New(io.Discard, "", 0)}
	done := make(chan error, 1)
	go func() { done <- srv.ServeTLS(ln, "", "") }()
	t.Cleanup(func() {
		srv.Close()
		if err := <-done; !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("serve: %v", err)
		}
	})
	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert)
	return "https://" + ln.Addr().String(), pool
}

// browser is a client that trusts roots and presents card, if any.
func browser(roots *x509.CertPool, card *tls.Certificate, minVersion, maxVersion uint16) *http.Client {
	cfg := &tls.Config{RootCAs: roots, MinVersion: minVersion, MaxVersion: maxVersion}
	if card != nil {
		cfg.Certificates = []tls.Certificate{*card}
	}
	return &http.Client{Transport: &http.Transport{TLSClientConfig: cfg, ForceAttemptHTTP2: true}}
}

// versioned adds the negotiated TLS version and protocol to what observer reports.
func versioned(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-TLS-Version", tls.VersionName(r.TLS.Version))
		w.Header().Set("X-Proto", r.Proto)
		h.ServeHTTP(w, r)
	})
}

// TestCardListener: real handshakes with CardTLSConfig. A card is asked for
// and handed to the method unverified; no card, or a card of an unknown CA,
// never fails the handshake; TLS 1.2 works; below 1.2 does not.
func TestCardListener(t *testing.T) {
	p := newPKI(t)
	card := p.issuer.Card(t, "RSSMRA80A01H501U/card")
	stranger := certtest.NewCA(t, "Unknown CA").Card(t, "stranger")
	chain := []string{card.Leaf.Subject.CommonName, p.inter.Subject.CommonName}
	src, err := clientcert.New(clientcert.Options{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name        string
		serverMax   uint16
		card        *tls.Certificate
		clientMax   uint16
		wantChain   []string
		wantVersion string
	}{
		{name: "card, TLS 1.3", card: &card, wantChain: chain, wantVersion: "TLS 1.3"},
		{name: "card, client held at TLS 1.2", card: &card, clientMax: tls.VersionTLS12, wantChain: chain, wantVersion: "TLS 1.2"},
		{name: "card, server held at TLS 1.2", serverMax: tls.VersionTLS12, card: &card, wantChain: chain, wantVersion: "TLS 1.2"},
		{name: "no card: the handshake succeeds, no chain", wantVersion: "TLS 1.3"},
		{name: "no card, TLS 1.2", clientMax: tls.VersionTLS12, wantVersion: "TLS 1.2"},
		{name: "a card of an unknown CA is handed on, for the method to refuse", card: &stranger, wantChain: []string{"stranger"}, wantVersion: "TLS 1.3"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			url, roots := cardListener(t, versioned(src.Handler(observer)), tc.serverMax)
			// The card's holder also sends a forged header: the TLS chain wins, the header goes.
			h := http.Header{clientcert.HeaderClientCert: {sfBinary(p.root)}}
			client := browser(roots, tc.card, 0, tc.clientMax)
			req, _ := http.NewRequest(http.MethodGet, url, nil)
			req.Header = h
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if v := resp.Header.Get("X-TLS-Version"); v != tc.wantVersion {
				t.Errorf("version %s, want %s", v, tc.wantVersion)
			}
			if resp.Header.Get("X-Proto") != "HTTP/2.0" {
				t.Errorf("protocol %s: ServeTLS should offer h2", resp.Header.Get("X-Proto"))
			}
			got := get(t, client, url, h.Clone())
			if strings.Join(got.Chain, "|") != strings.Join(tc.wantChain, "|") {
				t.Errorf("chain %q, want %q", got.Chain, tc.wantChain)
			}
			if len(got.Headers) > 0 {
				t.Errorf("certificate headers reached the handler: %v", got.Headers)
			}
		})
	}
	t.Run("TLS 1.1 refused", func(t *testing.T) {
		url, roots := cardListener(t, observer, 0)
		_, err := browser(roots, &card, tls.VersionTLS10, tls.VersionTLS11).Get(url)
		if err == nil {
			t.Fatal("a TLS 1.1 handshake succeeded")
		}
	})
}

func TestCardTLSConfig(t *testing.T) {
	ca := certtest.NewCA(t, "Test server CA")
	certFile, keyFile := certtest.WriteKeyPair(t, t.TempDir(), ca.Server(t))
	cfg, err := clientcert.CardTLSConfig(certFile, keyFile, 0)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.ClientAuth != tls.RequestClientCert || cfg.MinVersion != tls.VersionTLS12 || cfg.MaxVersion != tls.VersionTLS13 {
		t.Errorf("ClientAuth %v, versions %x..%x", cfg.ClientAuth, cfg.MinVersion, cfg.MaxVersion)
	}
	for _, id := range cfg.CipherSuites {
		for _, weak := range tls.InsecureCipherSuites() {
			if id == weak.ID {
				t.Errorf("insecure suite %s", weak.Name)
			}
		}
		if name := tls.CipherSuiteName(id); !strings.Contains(name, "ECDHE") || strings.Contains(name, "CBC") {
			t.Errorf("suite %s: want ECDHE with an AEAD", name)
		}
	}
	for _, tc := range []struct {
		name              string
		certFile, keyFile string
		max               uint16
		wantErr           string
	}{
		{"TLS 1.1 as the maximum", certFile, keyFile, tls.VersionTLS11, "want TLS 1.2 or 1.3"},
		{"an unknown version", certFile, keyFile, 0x0305, "want TLS 1.2 or 1.3"},
		{"no certificate file", filepath.Join(t.TempDir(), "none.pem"), keyFile, 0, "card listener certificate"},
		{"key and certificate swapped", keyFile, certFile, 0, "card listener certificate"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := clientcert.CardTLSConfig(tc.certFile, tc.keyFile, tc.max); err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("error %v, want one with %q", err, tc.wantErr)
			}
		})
	}
}

func TestParseTLSVersion(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want uint16
		ok   bool
	}{
		{"", 0, true}, {"1.2", tls.VersionTLS12, true}, {"1.3", tls.VersionTLS13, true},
		{"1.1", 0, false}, {"TLS1.2", 0, false}, {"1.4", 0, false},
	} {
		got, err := clientcert.ParseTLSVersion(tc.in)
		if got != tc.want || (err == nil) != tc.ok {
			t.Errorf("ParseTLSVersion(%q) = %x, %v", tc.in, got, err)
		}
	}
}
