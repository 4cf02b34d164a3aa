package clientcert_test

import (
	"crypto/x509"
	"encoding/pem"
	"net/url"
	"strings"
	"testing"

	"github.com/ponte-id/ponte/internal/clientcert"
	"github.com/ponte-id/ponte/internal/clientcert/certtest"
)

func TestParseNginx(t *testing.T) {
	p := newPKI(t)
	leafPEM := certtest.PEM(p.leaf)
	// url.PathEscape leaves '+' and '=' as they are, as some proxies do:
	// QueryUnescape would read that '+' as a space.
	lenient := url.PathEscape(leafPEM)
	if !strings.Contains(lenient, "+") {
		t.Fatal("the test certificate's base64 has no '+': the case below proves nothing")
	}
	junkPEM := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte("junk")}))
	keyPEM := string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: []byte("junk")}))
	for _, tc := range []struct {
		name    string
		value   string
		want    []*x509.Certificate
		wantErr string
	}{
		{name: "no certificate", value: "", want: nil},
		{name: "nginx escaping", value: clientcert.EscapeNginx(leafPEM), want: []*x509.Certificate{p.leaf}},
		{name: "'+' left unescaped", value: lenient, want: []*x509.Certificate{p.leaf}},
		{name: "leaf and intermediate", value: clientcert.EscapeNginx(certtest.PEM(p.leaf, p.inter)), want: []*x509.Certificate{p.leaf, p.inter}},
		{name: "CRLF line ends", value: clientcert.EscapeNginx(strings.ReplaceAll(leafPEM, "\n", "\r\n")), want: []*x509.Certificate{p.leaf}},

		{name: "bad escape", value: "%zz" + clientcert.EscapeNginx(leafPEM), wantErr: "URL escaping"},
		{name: "text before the block", value: clientcert.EscapeNginx("hello\n" + leafPEM), wantErr: "text outside a PEM block"},
		{name: "text after the block", value: clientcert.EscapeNginx(leafPEM + "trailer"), wantErr: "text outside a PEM block"},
		{name: "a private key", value: clientcert.EscapeNginx(keyPEM), wantErr: `"PRIVATE KEY"`},
		{name: "truncated", value: clientcert.EscapeNginx(leafPEM[:len(leafPEM)/2]), wantErr: "malformed PEM"},
		{name: "malformed block before a good one", value: clientcert.EscapeNginx("-----BEGIN CERTIFICATE-----\n!!!\n" + leafPEM), wantErr: "malformed PEM"},
		{name: "block with headers", value: clientcert.EscapeNginx(strings.Replace(leafPEM, "-----\n", "-----\nProc-Type: 4,ENCRYPTED\n\n", 1)), wantErr: "headers"},
		{name: "not a certificate", value: clientcert.EscapeNginx(junkPEM), wantErr: "certificate 1"},
		{name: "too many certificates", value: clientcert.EscapeNginx(strings.Repeat(leafPEM, clientcert.MaxCertificates+1)), wantErr: "more than 10"},
		{name: "too long", value: strings.Repeat("A", clientcert.MaxHeaderBytes+1), wantErr: "longer than"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := clientcert.ParseNginx(tc.value)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want one with %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !sameChain(got, tc.want) {
				t.Errorf("chain %v, want %v", names(got), names(tc.want))
			}
		})
	}
}

// TestParseNginxNotQueryUnescape: a value with a bare '+' read with
// QueryUnescape loses the certificate (the '+' becomes a space); ParseNginx,
// which uses PathUnescape, keeps it.
func TestParseNginxNotQueryUnescape(t *testing.T) {
	p := newPKI(t)
	lenient := url.PathEscape(certtest.PEM(p.leaf))
	q, err := url.QueryUnescape(lenient)
	if err != nil {
		t.Fatal(err)
	}
	if block, _ := pem.Decode([]byte(q)); block != nil {
		if _, err := x509.ParseCertificate(block.Bytes); err == nil {
			t.Fatal("QueryUnescape kept the certificate whole: the '+' case proves nothing")
		}
	}
	if _, err := clientcert.ParseNginx(lenient); err != nil {
		t.Fatalf("ParseNginx: %v", err)
	}
}

func FuzzParseNginx(f *testing.F) {
	p := newPKI(f)
	f.Add(clientcert.EscapeNginx(certtest.PEM(p.leaf, p.inter)))
	f.Add(url.PathEscape(certtest.PEM(p.leaf)))
	f.Add("-----BEGIN CERTIFICATE-----\n%zz\n-----END CERTIFICATE-----\n")
	f.Add("-----BEGIN X-----\n-----BEGIN CERTIFICATE-----\n")
	f.Fuzz(func(t *testing.T, value string) {
		got, err := clientcert.ParseNginx(value)
		checkChain(t, got, err)
	})
}
