package main

import (
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/ponte-id/ponte/internal/clientcert/certtest"
)

// TestServeCardListener: with card_listener set, `ponte serve` also listens
// with TLS and asks for a client certificate: a browser with a card and one
// without both complete the handshake and reach the provider, over TLS 1.2
// too (cards that cannot sign for TLS 1.3).
func TestServeCardListener(t *testing.T) {
	root := certtest.NewCA(t, "test root")
	certFile, keyFile := certtest.WriteKeyPair(t, t.TempDir(), root.Server(t))
	free, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cardAddr := free.Addr().String()
	free.Close()
	startLiveNode(t, "http://127.0.0.1:8080", func(*app) {
		t.Setenv("PONTE_CARD_ADDR", cardAddr)
		t.Setenv("PONTE_CARD_CERT_FILE", certFile)
		t.Setenv("PONTE_CARD_KEY_FILE", keyFile)
	})
	pool := x509.NewCertPool()
	pool.AddCert(root.Cert)
	card := root.Client(t, "RSSMRA80A01H501U/1")
	for _, tc := range []struct {
		name  string
		certs []tls.Certificate
		max   uint16
	}{
		{"with a card", []tls.Certificate{card}, 0},
		{"without a card", nil, 0},
		{"with a card over TLS 1.2", []tls.Certificate{card}, tls.VersionTLS12},
	} {
		c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, Certificates: tc.certs, MaxVersion: tc.max}}}
		resp, err := c.Get("https://" + cardAddr + "/.well-known/openid-configuration")
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
			t.Fatalf("%s: %d %s", tc.name, resp.StatusCode, resp.Header.Get("Content-Type"))
		}
		if !resp.Close && resp.ProtoMajor == 1 {
			t.Fatalf("%s: the card listener kept the connection open", tc.name)
		}
	}
}

// TestDemoRefusesRealDeployments: `ponte demo` seeds citizens with known PINs
// and a test identity provider; it refuses PostgreSQL and a public issuer.
func TestDemoRefusesRealDeployments(t *testing.T) {
	for name, env := range map[string][]string{
		"postgres":      {"PONTE_DB=postgres://postgres@127.0.0.1:5432/test?sslmode=disable"},
		"public issuer": {"PONTE_ISSUER=https://login.example.it", "PONTE_ADDR=0.0.0.0:8443"},
	} {
		t.Run(name, func(t *testing.T) {
			t.Chdir(t.TempDir()) // the demo makes its card files in the working directory
			t.Setenv("PONTE_DEV", "true")
			t.Setenv("PONTE_DB", t.TempDir()+"/ponte.db")
			t.Setenv("PONTE_MASTER_KEY_FILE", t.TempDir()+"/key")
			for _, kv := range env {
				k, v, _ := strings.Cut(kv, "=")
				t.Setenv(k, v)
			}
			err := cmdDemo(t.Context(), nil, io.Discard, io.Discard)
			if err == nil || !strings.Contains(err.Error(), "loopback issuer") {
				t.Fatalf("demo against %s: %v", name, err)
			}
		})
	}
}
