package cnstest_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/ponte-id/ponte/adapters/cns/cnstest"
)

// TestPKCS12: OpenSSL (when installed) reads the file with the password,
// checks its MAC, decrypts the key, and finds the card's certificate; a
// wrong password fails the MAC.
func TestPKCS12(t *testing.T) {
	openssl, err := exec.LookPath("openssl")
	if err != nil {
		t.Skip("openssl not installed")
	}
	ca, err := cnstest.NewRoot("Test CNS root")
	if err != nil {
		t.Fatal(err)
	}
	card, err := ca.Issue(cnstest.Card{FiscalNumber: "RSSMRA80A01H501U", Key: cnstest.RSA})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cnstest.PKCS12(card, ""); err == nil {
		t.Fatal("a file without a password")
	}
	der, err := cnstest.PKCS12(card, "pàssword")
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "card.p12")
	if err := os.WriteFile(file, der, 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(openssl, "pkcs12", "-in", file, "-passin", "pass:pàssword", "-nodes").CombinedOutput()
	if err != nil {
		t.Fatalf("openssl: %v\n%s", err, out)
	}
	keyPEM, _ := cnstest.KeyPEM(card.PrivateKey)
	if !bytes.Contains(out, cnstest.PEM(card.Leaf)) || !bytes.Contains(out, bytes.TrimSpace(keyPEM)[:64]) {
		t.Fatalf("openssl did not find the certificate and key:\n%s", out)
	}
	if out, err := exec.Command(openssl, "pkcs12", "-in", file, "-passin", "pass:wrong", "-nodes").CombinedOutput(); err == nil {
		t.Fatalf("a wrong password was accepted:\n%s", out)
	}
}
