package main

import (
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/ponte-id/ponte/adapters/cns/cnstest"
	"github.com/ponte-id/ponte/storage"
)

// The CNS part of `ponte demo`: a CNS certificate authority of its own, a
// card for a demo citizen that a browser can import, and the card listener.

const (
	// demoCNSDir holds the demo's CNS files, kept across runs so that a card
	// imported into a browser goes on working.
	demoCNSDir = "ponte-demo-cns"
	// demoCardAddr is where the demo's card listener listens.
	demoCardAddr = "127.0.0.1:8443"
	// demoCardPassword protects the card's .p12 file.
	demoCardPassword = "ponte"
)

// cnsDemo prepares the CNS for the demo, before the configuration is read:
// in demoCNSDir a CNS CA and a card for c (made once, reused while valid),
// the card listener's TLS certificate from a CA of its own, and a CRL made
// afresh; and the PONTE_CARD_* and PONTE_CNS_* variables that use them. It
// returns what to print once the demo runs. When the environment configures
// the CNS or the card listener itself, or a file cannot be made, it says so
// on stderr and the demo runs without a card.
func cnsDemo(stderr io.Writer, c storage.PINAccount) func(w io.Writer, issuer string) {
	nothing := func(io.Writer, string) {}
	if os.Getenv("PONTE_CNS_ENABLED") != "" || os.Getenv("PONTE_CARD_ADDR") != "" {
		fmt.Fprintln(stderr, "demo: the CNS or the card listener is configured by the environment: no demo card")
		return nothing
	}
	dir, err := filepath.Abs(demoCNSDir)
	if err == nil {
		err = makeCNSDemo(dir, c)
	}
	if err != nil {
		fmt.Fprintf(stderr, "demo: no demo card: %v\n", err)
		return nothing
	}
	for k, v := range map[string]string{
		"PONTE_CARD_ADDR": demoCardAddr, "PONTE_CARD_CERT_FILE": filepath.Join(dir, "card-listener.pem"),
		"PONTE_CARD_KEY_FILE": filepath.Join(dir, "card-listener.key"),
		"PONTE_CNS_ENABLED":   "true", "PONTE_CNS_CARD_URL": "https://" + demoCardAddr,
		"PONTE_CNS_CA_FILE": filepath.Join(dir, "cns-ca.pem"), "PONTE_CNS_CRL_DIR": filepath.Join(dir, "crl"),
		// The demo card names no responder or distribution point: its CA's CRL file answers.
		"PONTE_CNS_OCSP": "false", "PONTE_CNS_CRL_FETCH": "false",
	} {
		os.Setenv(k, v)
	}
	return func(w io.Writer, issuer string) {
		f := func(name string) string { return filepath.Join(demoCNSDir, name) }
		fmt.Fprintf(w, "\nCNS smart card: a demo card for %s %s (codice fiscale %s) reaches the dispositivo level.\n", c.GivenName, c.FamilyName, c.FiscalNumber)
		fmt.Fprintf(w, "  1. Import %s (password %q) into the browser's own certificates\n", f("card.p12"), demoCardPassword)
		fmt.Fprintf(w, "     (Firefox: Settings > Privacy & Security > Certificates > View Certificates > Your Certificates > Import;\n")
		fmt.Fprintf(w, "     Chrome and Edge: the system's certificate manager, personal certificates).\n")
		fmt.Fprintf(w, "  2. Open https://%s/ once: its TLS certificate is from the demo's own CA (%s); accept it for this address.\n", demoCardAddr, f("tls-ca.pem"))
		fmt.Fprintf(w, "  3. At %s/demo/, log in at the dispositivo level, choose the CNS, and pick the card when the browser asks.\n", issuer)
		fmt.Fprintf(w, "  With curl, the same login with the card's key and certificate (prints the level reached):\n")
		fmt.Fprintf(w, "    J=$(mktemp) && curl -s -b \"$J\" -c \"$J\" -L --cacert %s --cert %s --key %s \\\n", f("tls-ca.pem"), f("card.pem"), f("card.key"))
		fmt.Fprintf(w, "      \"$(curl -s -b \"$J\" -c \"$J\" -L -o /dev/null -w '%%{url_effective}' '%s/demo/login?level=dispositivo' | sed 's#/login?#/login/cns/?#')\" \\\n", issuer)
		fmt.Fprintf(w, "      | grep -o 'urn:inps:loa:[a-z]*' | sort -u\n")
	}
}

// makeCNSDemo makes (or renews) the demo's CNS files in dir.
func makeCNSDemo(dir string, c storage.PINAccount) error {
	if err := os.MkdirAll(filepath.Join(dir, "crl"), 0o700); err != nil {
		return err
	}
	path := func(name string) string { return filepath.Join(dir, name) }
	cnsCA, err := cnsDemoCA(path("cns-ca.pem"), path("cns-ca.key"), "Ponte demo CNS CA")
	if err != nil {
		return err
	}
	tlsCA, err := cnsDemoCA(path("tls-ca.pem"), path("tls-ca.key"), "Ponte demo TLS CA")
	if err != nil {
		return err
	}
	if !cnsStillValid(path("card-listener.pem"), tlsCA) {
		server, err := tlsCA.Server("127.0.0.1", "localhost")
		if err != nil {
			return err
		}
		if err := cnsWriteKeyPair(path("card-listener.pem"), path("card-listener.key"), server); err != nil {
			return err
		}
	}
	if !cnsStillValid(path("card.pem"), cnsCA) || !cnsExists(path("card.p12")) {
		card, err := cnsCA.Issue(cnstest.Card{FiscalNumber: c.FiscalNumber, GivenName: c.GivenName, FamilyName: c.FamilyName,
			SerialNumber: "TINIT-" + c.FiscalNumber, Key: cnstest.RSA})
		if err != nil {
			return err
		}
		p12, err := cnstest.PKCS12(card, demoCardPassword)
		if err != nil {
			return err
		}
		if err := cnsWriteKeyPair(path("card.pem"), path("card.key"), card); err != nil {
			return err
		}
		if err := os.WriteFile(path("card.p12"), p12, 0o600); err != nil {
			return err
		}
	}
	now := time.Now()
	crl, err := cnsCA.CRL(cnstest.CRLOptions{ThisUpdate: now.Add(-time.Minute), NextUpdate: now.Add(30 * 24 * time.Hour)})
	if err != nil {
		return err
	}
	return os.WriteFile(path("crl/cns-ca.crl"), crl, 0o600)
}

// cnsDemoCA loads the CA in certFile and keyFile, or makes and writes one.
func cnsDemoCA(certFile, keyFile, cn string) (*cnstest.CA, error) {
	certPEM, err1 := os.ReadFile(certFile)
	keyPEM, err2 := os.ReadFile(keyFile)
	if err1 == nil && err2 == nil {
		pair, err := tls.X509KeyPair(certPEM, keyPEM)
		if err != nil {
			return nil, fmt.Errorf("%s: %w (delete %s to start over)", certFile, err, demoCNSDir)
		}
		signer, ok := pair.PrivateKey.(crypto.Signer)
		if !ok || time.Now().After(pair.Leaf.NotAfter) {
			return nil, fmt.Errorf("%s: unusable (delete %s to start over)", certFile, demoCNSDir)
		}
		return &cnstest.CA{Cert: pair.Leaf, Key: signer}, nil
	}
	ca, err := cnstest.NewRoot(cn)
	if err != nil {
		return nil, err
	}
	keyPEM, err = cnstest.KeyPEM(ca.Key)
	if err != nil {
		return nil, err
	}
	return ca, errors.Join(os.WriteFile(certFile, cnstest.PEM(ca.Cert), 0o600), os.WriteFile(keyFile, keyPEM, 0o600))
}

// cnsStillValid reports whether the certificate in file was issued by ca and
// is valid for another week.
func cnsStillValid(file string, ca *cnstest.CA) bool {
	data, err := os.ReadFile(file)
	if err != nil {
		return false
	}
	block, _ := pem.Decode(data)
	if block == nil {
		return false
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	return err == nil && cert.CheckSignatureFrom(ca.Cert) == nil && time.Now().Add(7*24*time.Hour).Before(cert.NotAfter)
}

// cnsWriteKeyPair writes a chain and its key as PEM files.
func cnsWriteKeyPair(certFile, keyFile string, c tls.Certificate) error {
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

func cnsExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
