package clientcert_test

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"testing"

	"github.com/ponte-id/ponte/internal/clientcert"
	"github.com/ponte-id/ponte/internal/clientcert/certtest"
)

// pki is a client certificate issued by an intermediate below a root. Its
// key is ECDSA, quick to make (the fuzz targets make one in every worker);
// the card tests ask issuer for an RSA card.
type pki struct {
	root, inter, leaf *x509.Certificate
	client            tls.Certificate
	issuer            *certtest.CA
}

func newPKI(t testing.TB) pki {
	t.Helper()
	root := certtest.NewCA(t, "Test CNS root")
	inter := root.Intermediate(t, "Test CNS issuing CA")
	client := inter.Client(t, "RSSMRA80A01H501U/1234567890.abcdef")
	return pki{root: root.Cert, inter: inter.Cert, leaf: client.Leaf, client: client, issuer: inter}
}

// sfBinary is c as an RFC 8941 Byte Sequence.
func sfBinary(c *x509.Certificate) string {
	return ":" + base64.StdEncoding.EncodeToString(c.Raw) + ":"
}

// sameChain reports whether got holds exactly want, in order.
func sameChain(got, want []*x509.Certificate) bool {
	if len(got) != len(want) {
		return false
	}
	for i := range got {
		if got[i] == nil || !got[i].Equal(want[i]) {
			return false
		}
	}
	return true
}

func names(chain []*x509.Certificate) []string {
	out := make([]string, len(chain))
	for i, c := range chain {
		out[i] = c.Subject.CommonName
	}
	return out
}

// checkChain is the invariant of every parser, for the fuzz targets: an
// answer without error is at most MaxCertificates parsed certificates.
func checkChain(t *testing.T, chain []*x509.Certificate, err error) {
	t.Helper()
	if err != nil {
		if chain != nil {
			t.Fatalf("an error (%v) and a chain", err)
		}
		return
	}
	if len(chain) > clientcert.MaxCertificates {
		t.Fatalf("%d certificates", len(chain))
	}
	for i, c := range chain {
		if c == nil || len(c.Raw) == 0 {
			t.Fatalf("certificate %d is empty", i)
		}
	}
}
