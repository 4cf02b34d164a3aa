package clientcert_test

import (
	"crypto/x509"
	"strings"
	"testing"

	"github.com/ponte-id/ponte/internal/clientcert"
	"github.com/ponte-id/ponte/internal/clientcert/certtest"
)

func TestParseXFCC(t *testing.T) {
	p := newPKI(t)
	other := newPKI(t) // a card the client forged an element for
	cert := `Cert="` + clientcert.EscapeNginx(certtest.PEM(p.leaf)) + `"`
	chain := `Chain="` + clientcert.EscapeNginx(certtest.PEM(p.leaf, p.inter)) + `"`
	forged := `By=spiffe://front;Cert="` + clientcert.EscapeNginx(certtest.PEM(other.leaf)) + `"`
	const meta = `By=spiffe://ponte.inps.it;Hash=468ed33be74eee6556d90c0149c1309e9ba61d6425303443c0748a02dd8de688`
	const subject = `Subject="CN=Rossi\, Mario;O=\"INPS\" = test"`
	for _, tc := range []struct {
		name    string
		value   string
		want    []*x509.Certificate
		wantErr string
	}{
		{name: "no certificate", value: "", want: nil},
		{name: "Cert", value: meta + ";" + cert, want: []*x509.Certificate{p.leaf}},
		{name: "Cert unquoted", value: meta + ";Cert=" + clientcert.EscapeNginx(certtest.PEM(p.leaf)), want: []*x509.Certificate{p.leaf}},
		{name: "Chain (leaf included)", value: meta + ";" + chain, want: []*x509.Certificate{p.leaf, p.inter}},
		{name: "Cert and Chain", value: meta + ";" + cert + ";" + chain, want: []*x509.Certificate{p.leaf, p.inter}},
		{name: "quoted values with , ; = and escaped quotes", value: meta + ";" + subject + ";" + cert + `;URI=spiffe://x;DNS=a.example`, want: []*x509.Certificate{p.leaf}},
		{name: "keys in any case", value: "cert=" + clientcert.EscapeNginx(certtest.PEM(p.leaf)), want: []*x509.Certificate{p.leaf}},
		{name: "the last element is the proxy next to Ponte", value: forged + "," + meta + ";" + cert, want: []*x509.Certificate{p.leaf}},
		{name: "lines joined", value: forged + ", " + meta + ";" + cert, want: []*x509.Certificate{p.leaf}},

		{name: "the last element has no certificate", value: meta + ";" + cert + "," + meta, wantErr: "element 2 (the last): no Cert or Chain"},
		{name: "Cert is not the chain's leaf", value: `Cert="` + clientcert.EscapeNginx(certtest.PEM(other.leaf)) + `";` + chain, wantErr: "not the first certificate"},
		{name: "Cert holds two", value: `Cert="` + clientcert.EscapeNginx(certtest.PEM(p.leaf, p.inter)) + `"`, wantErr: "holds 2 certificates"},
		{name: "Cert twice", value: cert + ";" + cert, wantErr: "Cert twice"},
		{name: "Chain twice", value: chain + ";" + chain, wantErr: "Chain twice"},
		{name: "bad Cert", value: `Cert="%zz"`, wantErr: "key Cert: URL escaping"},
		{name: "bad Chain", value: `Chain="hello"`, wantErr: "key Chain: text outside"},
		{name: "a bad earlier element", value: `By=a"b,` + cert, wantErr: "quote inside a bare value"},
		{name: "unterminated quote", value: `Cert="abc`, wantErr: "closing quote"},
		{name: "escape at the end", value: `Cert="abc\`, wantErr: "escape at the end"},
		{name: "pair without =", value: "Hash;" + cert, wantErr: "expected key=value"},
		{name: "quote in a bare value", value: meta + `;By=a"b`, wantErr: "quote inside a bare value"},
		{name: "text after a quoted value", value: `By="a"b;` + cert, wantErr: `'b' after a quoted value`},
		{name: "trailing comma", value: meta + ";" + cert + ",", wantErr: "expected key=value"},
		{name: "trailing semicolon", value: meta + ";" + cert + ";", wantErr: "expected key=value"},
		{name: "too long", value: "By=" + strings.Repeat("a", clientcert.MaxHeaderBytes), wantErr: "longer than"},
		{name: "too many certificates", value: `Chain="` + clientcert.EscapeNginx(strings.Repeat(certtest.PEM(p.leaf), clientcert.MaxCertificates+1)) + `"`, wantErr: "more than 10"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := clientcert.ParseXFCC(tc.value)
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

func FuzzParseXFCC(f *testing.F) {
	p := newPKI(f)
	f.Add(`By=spiffe://a;Hash=ab;Subject="CN=x\"y, z";Cert="` + clientcert.EscapeNginx(certtest.PEM(p.leaf)) + `"`)
	f.Add(`By=x,Cert="` + clientcert.EscapeNginx(certtest.PEM(p.leaf)) + `";Chain="` + clientcert.EscapeNginx(certtest.PEM(p.leaf, p.inter)) + `"`)
	f.Add(`Cert="\`)
	f.Add(`a=b;c="d\"e",f=g`)
	f.Fuzz(func(t *testing.T, value string) {
		got, err := clientcert.ParseXFCC(value)
		checkChain(t, got, err)
	})
}
