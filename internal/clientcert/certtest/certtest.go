// Package certtest makes a small PKI for tests: a certificate authority, an
// intermediate below it, a server certificate for the loopback address and
// client ("card") certificates, as the CNS tests of SPEC §5 need, and writes
// them as PEM. It is test support: only _test files import it.
package certtest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// CA is a certificate authority: a root, or an intermediate below one.
type CA struct {
	// Cert is the CA's certificate: the trust anchor, for a root.
	Cert *x509.Certificate
	// Key signs what the CA issues.
	Key crypto.Signer
	// chain is the DER of this CA and the intermediates above it, the root
	// excluded: what a leaf it issues sends after itself.
	chain [][]byte
}

// NewCA returns a self-signed root named cn.
func NewCA(tb testing.TB, cn string) *CA {
	tb.Helper()
	key := ecKey(tb)
	tmpl := caTemplate(tb, cn)
	cert := create(tb, tmpl, tmpl, key.Public(), key)
	return &CA{Cert: cert, Key: key}
}

// Intermediate returns a CA named cn issued by ca.
func (ca *CA) Intermediate(tb testing.TB, cn string) *CA {
	tb.Helper()
	key := ecKey(tb)
	cert := create(tb, caTemplate(tb, cn), ca.Cert, key.Public(), ca.Key)
	return &CA{Cert: cert, Key: key, chain: append([][]byte{cert.Raw}, ca.chain...)}
}

// Server returns a server certificate for 127.0.0.1 and localhost, with the
// chain up to (not including) the root.
func (ca *CA) Server(tb testing.TB) tls.Certificate {
	tb.Helper()
	key := ecKey(tb)
	tmpl := leafTemplate(tb, "localhost", x509.ExtKeyUsageServerAuth)
	tmpl.DNSNames = []string{"localhost"}
	tmpl.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback}
	return ca.keyPair(tb, tmpl, key)
}

// Card returns a client certificate with an RSA key, as a smart card holds,
// for subject cn, with the chain up to (not including) the root.
func (ca *CA) Card(tb testing.TB, cn string) tls.Certificate {
	tb.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		tb.Fatal(err)
	}
	tmpl := leafTemplate(tb, cn, x509.ExtKeyUsageClientAuth)
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature
	return ca.keyPair(tb, tmpl, key)
}

// Client returns a client certificate with an ECDSA key, quicker to make
// than a Card, for subject cn, with the chain up to (not including) the root.
func (ca *CA) Client(tb testing.TB, cn string) tls.Certificate {
	tb.Helper()
	return ca.keyPair(tb, leafTemplate(tb, cn, x509.ExtKeyUsageClientAuth), ecKey(tb))
}

// PEM encodes certificates as CERTIFICATE blocks, in order.
func PEM(certs ...*x509.Certificate) string {
	var b strings.Builder
	for _, c := range certs {
		b.Write(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw}))
	}
	return b.String()
}

// Chain returns the parsed certificates of c, leaf first.
func Chain(tb testing.TB, c tls.Certificate) []*x509.Certificate {
	tb.Helper()
	out := make([]*x509.Certificate, 0, len(c.Certificate))
	for _, der := range c.Certificate {
		cert, err := x509.ParseCertificate(der)
		if err != nil {
			tb.Fatal(err)
		}
		out = append(out, cert)
	}
	return out
}

// WriteKeyPair writes c's chain and key as PEM files in dir and returns their paths.
func WriteKeyPair(tb testing.TB, dir string, c tls.Certificate) (certFile, keyFile string) {
	tb.Helper()
	keyDER, err := x509.MarshalPKCS8PrivateKey(c.PrivateKey)
	if err != nil {
		tb.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, []byte(PEM(Chain(tb, c)...)), 0o600); err != nil {
		tb.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		tb.Fatal(err)
	}
	return certFile, keyFile
}

func (ca *CA) keyPair(tb testing.TB, tmpl *x509.Certificate, key crypto.Signer) tls.Certificate {
	tb.Helper()
	leaf := create(tb, tmpl, ca.Cert, key.Public(), ca.Key)
	return tls.Certificate{Certificate: append([][]byte{leaf.Raw}, ca.chain...), PrivateKey: key, Leaf: leaf}
}

func ecKey(tb testing.TB) *ecdsa.PrivateKey {
	tb.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	return key
}

func serial(tb testing.TB) *big.Int {
	tb.Helper()
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		tb.Fatal(err)
	}
	return n
}

func caTemplate(tb testing.TB, cn string) *x509.Certificate {
	tb.Helper()
	now := time.Now()
	return &x509.Certificate{
		SerialNumber:          serial(tb),
		Subject:               pkix.Name{CommonName: cn, Organization: []string{"Ponte test"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
}

func leafTemplate(tb testing.TB, cn string, usage x509.ExtKeyUsage) *x509.Certificate {
	tb.Helper()
	now := time.Now()
	return &x509.Certificate{
		SerialNumber:          serial(tb),
		Subject:               pkix.Name{CommonName: cn, Organization: []string{"Ponte test"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{usage},
		BasicConstraintsValid: true,
	}
}

func create(tb testing.TB, tmpl, parent *x509.Certificate, pub crypto.PublicKey, signer crypto.Signer) *x509.Certificate {
	tb.Helper()
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, signer)
	if err != nil {
		tb.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		tb.Fatal(err)
	}
	return cert
}
