package clientcert_test

import (
	"crypto/x509"
	"encoding/base64"
	"strings"
	"testing"

	"github.com/ponte-id/ponte/internal/clientcert"
)

func TestParseRFC9440(t *testing.T) {
	p := newPKI(t)
	leaf, inter, root := sfBinary(p.leaf), sfBinary(p.inter), sfBinary(p.root)
	unpadded := ":" + base64.RawStdEncoding.EncodeToString(p.leaf.Raw) + ":"
	junk := ":" + base64.StdEncoding.EncodeToString([]byte("not a certificate")) + ":"
	for _, tc := range []struct {
		name        string
		cert, chain string
		want        []*x509.Certificate
		wantErr     string
	}{
		{name: "no certificate", want: nil},
		{name: "leaf only", cert: leaf, want: []*x509.Certificate{p.leaf}},
		{name: "leaf and chain", cert: leaf, chain: inter + ", " + root, want: []*x509.Certificate{p.leaf, p.inter, p.root}},
		{name: "chain in TLS order, no spaces", cert: leaf, chain: inter + "," + root, want: []*x509.Certificate{p.leaf, p.inter, p.root}},
		{name: "spaces around", cert: "  " + leaf + " ", chain: " " + inter + " \t, " + root + " ", want: []*x509.Certificate{p.leaf, p.inter, p.root}},
		{name: "unpadded base64 (RFC 8941 §4.2.7)", cert: unpadded, want: []*x509.Certificate{p.leaf}},
		{name: "parameters ignored", cert: leaf + `;a=1;b="x \" y";c=?1;d=tok/en:x;e=:AA==:;f=-1.5;*g`, chain: inter + ";h", want: []*x509.Certificate{p.leaf, p.inter}},

		{name: "chain without Client-Cert (§2.3)", chain: inter, wantErr: "Client-Cert-Chain without Client-Cert"},
		{name: "bare base64", cert: strings.Trim(leaf, ":"), wantErr: "expected a Byte Sequence"},
		{name: "no closing colon", cert: strings.TrimSuffix(leaf, ":"), wantErr: "closing ':'"},
		{name: "base64url alphabet", cert: ":ab-_:", wantErr: "in a Byte Sequence"},
		{name: "corrupt base64", cert: ":A=A:", wantErr: "base64"},
		{name: "two items in Client-Cert", cert: leaf + ", " + leaf, wantErr: "after the item"},
		{name: "not a certificate", cert: junk, wantErr: "certificate 1"},
		{name: "chain member not a certificate", cert: leaf, chain: inter + ", " + junk, wantErr: "certificate 3"},
		{name: "trailing comma", cert: leaf, chain: inter + ",", wantErr: "trailing comma"},
		{name: "inner list", cert: leaf, chain: "(" + inter + ")", wantErr: "expected a Byte Sequence"},
		{name: "token instead of bytes", cert: "MIIB", wantErr: "expected a Byte Sequence"},
		{name: "members without comma", cert: leaf, chain: inter + " " + root, wantErr: "expected ','"},
		{name: "uppercase parameter key", cert: leaf + ";A=1", wantErr: "parameter key"},
		{name: "bad parameter value", cert: leaf + ";a=%", wantErr: "parameter value"},
		{name: "unterminated string parameter", cert: leaf + `;a="x`, wantErr: "closing quote"},
		{name: "bad boolean", cert: leaf + ";a=?2", wantErr: "boolean"},
		{name: "integer too long", cert: leaf + ";a=1234567890123456", wantErr: "15 digits"},
		{name: "decimal without fraction", cert: leaf + ";a=1.", wantErr: "decimal"},
		{name: "Client-Cert too long", cert: ":" + strings.Repeat("A", clientcert.MaxHeaderBytes) + ":", wantErr: "longer than"},
		{name: "chain too long", cert: leaf, chain: strings.Repeat(inter+",", clientcert.MaxHeaderBytes/len(inter)+1), wantErr: "longer than"},
		{name: "too many certificates", cert: leaf, chain: strings.TrimSuffix(strings.Repeat(inter+",", clientcert.MaxCertificates), ","), wantErr: "more than 10 certificates"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := clientcert.ParseRFC9440(tc.cert, tc.chain)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want one with %q", err, tc.wantErr)
				}
				if got != nil {
					t.Errorf("a chain with the error: %v", names(got))
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

// TestParseRFC9440MaxChain: MaxCertificates, leaf included, is accepted.
func TestParseRFC9440MaxChain(t *testing.T) {
	p := newPKI(t)
	chain := strings.TrimSuffix(strings.Repeat(sfBinary(p.inter)+",", clientcert.MaxCertificates-1), ",")
	got, err := clientcert.ParseRFC9440(sfBinary(p.leaf), chain)
	if err != nil || len(got) != clientcert.MaxCertificates {
		t.Fatalf("%d certificates, %v; want %d", len(got), err, clientcert.MaxCertificates)
	}
}

func FuzzParseRFC9440(f *testing.F) {
	p := newPKI(f)
	f.Add(sfBinary(p.leaf), sfBinary(p.inter)+", "+sfBinary(p.root))
	f.Add(sfBinary(p.leaf)+`;a=1;b="x";c=?0;d=t;e=:AA:;f=1.5`, "")
	f.Add("", sfBinary(p.inter))
	f.Add(":AAAA", "(:AA:), :BB:")
	f.Fuzz(func(t *testing.T, cert, chain string) {
		got, err := clientcert.ParseRFC9440(cert, chain)
		checkChain(t, got, err)
	})
}
