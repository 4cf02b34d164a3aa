package main

import (
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/ponte-id/ponte/adapters/cns/cnstest"
	"github.com/ponte-id/ponte/adapters/spid"
)

// The files `loadtest pki` writes in its folder.
const (
	fileCNSCA       = "cns-ca.pem" // the CNS CA: the nodes' cns.ca_file, and what `run` issues cards with
	fileCNSCAKey    = "cns-ca.key"
	fileCRL         = "crl/cns-ca.crl" // its CRL (no card revoked): the cards' status
	fileTLSCA       = "tls-ca.pem"     // the CA of the card host's TLS certificate, trusted by `run`
	fileCardHost    = "card-host.pem"  // the card host's (loadtest lb -card-listen) certificate and key
	fileCardHostKey = "card-host.key"
	fileSPCert      = "sp.pem" // the SPID SP's certificate and key, the same on both nodes
	fileSPKey       = "sp.key"
)

// pkiCmd writes the certificates the SPID and CNS logins need: a CNS CA
// and its CRL, the card host's TLS certificate from a TLS CA, and the SPID
// SP's certificate (SPID notice 29 v3) for the issuer's entityID.
func pkiCmd(args []string) error {
	fs := flag.NewFlagSet("pki", flag.ContinueOnError)
	dir := fs.String("dir", "", "folder to write into")
	issuer := fs.String("issuer", "http://127.0.0.1:18600", "Ponte's issuer (the SP's entityID is <issuer>/login/spid/metadata)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *dir == "" {
		return errors.New("-dir is required")
	}
	if err := os.MkdirAll(filepath.Join(*dir, "crl"), 0o700); err != nil {
		return err
	}
	path := func(name string) string { return filepath.Join(*dir, name) }
	cnsCA, err := cnstest.NewRoot("Ponte loadtest CNS CA")
	if err != nil {
		return err
	}
	now := time.Now()
	crl, err := cnsCA.CRL(cnstest.CRLOptions{ThisUpdate: now.Add(-time.Minute), NextUpdate: now.Add(7 * 24 * time.Hour)})
	if err != nil {
		return err
	}
	tlsCA, err := cnstest.NewRoot("Ponte loadtest TLS CA")
	if err != nil {
		return err
	}
	host, err := tlsCA.Server("127.0.0.1", "localhost")
	if err != nil {
		return err
	}
	sp, err := spid.NewSPKeypair(spid.SPCertificate{EntityID: *issuer + "/login/spid/metadata", IPACode: "inps",
		Organization: "Istituto Nazionale della Previdenza Sociale"}, now)
	if err != nil {
		return err
	}
	caKey, err := cnstest.KeyPEM(cnsCA.Key)
	if err != nil {
		return err
	}
	return errors.Join(
		os.WriteFile(path(fileCNSCA), cnstest.PEM(cnsCA.Cert), 0o600), os.WriteFile(path(fileCNSCAKey), caKey, 0o600),
		os.WriteFile(path(fileCRL), crl, 0o600), os.WriteFile(path(fileTLSCA), cnstest.PEM(tlsCA.Cert), 0o600),
		writeKeyPair(path(fileCardHost), path(fileCardHostKey), host),
		os.WriteFile(path(fileSPCert), sp.CertPEM(), 0o600), os.WriteFile(path(fileSPKey), sp.KeyPEM(), 0o600))
}

// writeKeyPair writes a chain and its key as PEM files.
func writeKeyPair(certFile, keyFile string, c tls.Certificate) error {
	chain, err := cnstest.Chain(c)
	if err != nil {
		return err
	}
	key, err := cnstest.KeyPEM(c.PrivateKey)
	if err != nil {
		return err
	}
	return errors.Join(os.WriteFile(certFile, cnstest.PEM(chain...), 0o600), os.WriteFile(keyFile, key, 0o600))
}

// cards issues a CNS card (ECDSA, quick to make and to present) for each
// of the first n citizens, from the CNS CA `loadtest pki` wrote in dir, and
// returns them with the pool that trusts the card host.
func cards(dir string, n int) ([]tls.Certificate, *x509.CertPool, error) {
	pair, err := tls.LoadX509KeyPair(filepath.Join(dir, fileCNSCA), filepath.Join(dir, fileCNSCAKey))
	if err != nil {
		return nil, nil, err
	}
	signer, ok := pair.PrivateKey.(crypto.Signer)
	if !ok {
		return nil, nil, errors.New("the CNS CA's key cannot sign")
	}
	ca := &cnstest.CA{Cert: pair.Leaf, Key: signer}
	out := make([]tls.Certificate, n)
	for i := range n {
		cf, _, _, _ := citizen(i)
		if out[i], err = ca.Issue(cnstest.Card{FiscalNumber: cf, GivenName: "LAURA", FamilyName: fmt.Sprintf("BIANCHI%d", i),
			SerialNumber: "TINIT-" + cf, Key: cnstest.ECDSA}); err != nil {
			return nil, nil, err
		}
	}
	roots := x509.NewCertPool()
	b, err := os.ReadFile(filepath.Join(dir, fileTLSCA))
	if err != nil {
		return nil, nil, err
	}
	if !roots.AppendCertsFromPEM(b) {
		return nil, nil, errors.New("no certificate in " + fileTLSCA)
	}
	return out, roots, nil
}
