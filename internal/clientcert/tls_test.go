package clientcert_test

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
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
	return cardListenerWith(t, h, maxVersion, nil)
}

// cardListenerWith is cardListener with the TLS configuration changed by
// tweak (if not nil).
func cardListenerWith(t *testing.T, h http.Handler, maxVersion uint16, tweak func(*tls.Config)) (string, *x509.CertPool) {
	t.Helper()
	ca := certtest.NewCA(t, "Test server CA")
	certFile, keyFile := certtest.WriteKeyPair(t, t.TempDir(), ca.Server(t))
	cfg, err := clientcert.CardTLSConfig(certFile, keyFile, maxVersion)
	if err != nil {
		t.Fatal(err)
	}
	if tweak != nil {
		tweak(cfg)
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

// TestCardListenerNeverResumes: the card is presented once, then the same
// browser (its TLS session cache kept) connects again without it. The card
// listener must not resume the first session: a resumed connection carries
// the first handshake's certificates (DidResume), so the next person at a
// shared browser would be the card's holder without the card. And should a
// listener be configured to resume, Source hands out no chain for a resumed
// session. TLS 1.2 and 1.3.
func TestCardListenerNeverResumes(t *testing.T) {
	p := newPKI(t)
	card := p.issuer.Card(t, "RSSMRA80A01H501U/card")
	src, err := clientcert.New(clientcert.Options{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	resumed := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Resumed", strconv.FormatBool(r.TLS.DidResume))
		observer.ServeHTTP(w, r)
	})
	for _, tc := range []struct {
		name        string
		version     uint16
		tweak       func(*tls.Config)
		wantResumed string
	}{
		{name: "TLS 1.2", version: tls.VersionTLS12, wantResumed: "false"},
		{name: "TLS 1.3", version: tls.VersionTLS13, wantResumed: "false"},
		{name: "TLS 1.2, a listener that resumes: no chain", version: tls.VersionTLS12, tweak: resumes, wantResumed: "true"},
		{name: "TLS 1.3, a listener that resumes: no chain", version: tls.VersionTLS13, tweak: resumes, wantResumed: "true"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			url, roots := cardListenerWith(t, src.Handler(resumed), 0, tc.tweak)
			cache := tls.NewLRUClientSessionCache(8)
			visit := func(card *tls.Certificate) (seen, string) {
				t.Helper()
				cfg := &tls.Config{RootCAs: roots, MinVersion: tc.version, MaxVersion: tc.version, ClientSessionCache: cache}
				if card != nil {
					cfg.Certificates = []tls.Certificate{*card}
				}
				// A new transport each time: a new connection, the session cache shared.
				tr := &http.Transport{TLSClientConfig: cfg, ForceAttemptHTTP2: true}
				defer tr.CloseIdleConnections()
				resp, err := (&http.Client{Transport: tr}).Get(url)
				if err != nil {
					t.Fatal(err)
				}
				defer resp.Body.Close()
				var s seen
				if err := json.NewDecoder(resp.Body).Decode(&s); err != nil {
					t.Fatal(err)
				}
				return s, resp.Header.Get("X-Resumed")
			}
			if got, _ := visit(&card); len(got.Chain) == 0 {
				t.Fatal("the card was not seen")
			}
			got, resumed := visit(nil)
			if len(got.Chain) > 0 || resumed != tc.wantResumed {
				t.Fatalf("without the card: chain %q, resumed %s; want no chain, resumed %s", got.Chain, resumed, tc.wantResumed)
			}
		})
	}
}

// resumes configures a card listener to resume sessions, as Ponte's never does.
func resumes(c *tls.Config) { c.SessionTicketsDisabled = false }

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
	if !cfg.SessionTicketsDisabled || cfg.WrapSession != nil || cfg.UnwrapSession != nil {
		t.Error("the card listener would resume sessions")
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
