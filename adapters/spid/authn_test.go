package spid

import (
	"bytes"
	"compress/flate"
	"crypto/rsa"
	"encoding/base64"
	"net/url"
	"strings"
	"testing"
	"time"
)

// TestReadRedirect: a message of the HTTP-Redirect binding is decoded once,
// and the XML read is the XML whose signature verifies: another message
// under the same signature, another key, another algorithm, a parameter
// twice, no signature, an oversized or a deflate-bomb payload are refused.
func TestReadRedirect(t *testing.T) {
	kp, err := ParseKeypair(mustRead(t, "testdata/idp.crt"), mustRead(t, "testdata/idp.key"))
	if err != nil {
		t.Fatal(err)
	}
	other := otherTestKey(t)
	const max = 64 << 10
	msg := []byte(`<samlp:LogoutRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" ID="_a"/>`)
	signedQuery := func(m []byte, relay string) string {
		u, err := redirectURL("https://sp.example.it/slo", "SAMLRequest", m, relay, kp)
		if err != nil {
			t.Fatal(err)
		}
		pu, _ := url.Parse(u)
		return pu.RawQuery
	}
	good := signedQuery(msg, "r1")
	param := func(q, name string) string {
		for part := range strings.SplitSeq(q, "&") {
			if k, v, _ := strings.Cut(part, "="); k == name {
				return v
			}
		}
		return ""
	}
	deflated := func(b []byte) string {
		var buf bytes.Buffer
		w, _ := flate.NewWriter(&buf, flate.BestCompression)
		_, _ = w.Write(b)
		_ = w.Close()
		return url.QueryEscape(base64.StdEncoding.EncodeToString(buf.Bytes()))
	}

	m, err := readRedirect(good, "SAMLRequest", max)
	if err != nil || !bytes.Equal(m.XML, msg) {
		t.Fatalf("the good message: %q %v", m.XML, err)
	}
	if err := m.verify([]*rsa.PublicKey{&other.PublicKey, &kp.Key.PublicKey}); err != nil {
		t.Fatalf("the good signature: %v", err)
	}
	if err := m.verify([]*rsa.PublicKey{&other.PublicKey}); err == nil {
		t.Fatal("verified with another key")
	}

	forged := []byte(`<samlp:LogoutRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" ID="_b"/>`)
	swapped := strings.Replace(good, "SAMLRequest="+param(good, "SAMLRequest"), "SAMLRequest="+deflated(forged), 1)
	if m, err := readRedirect(swapped, "SAMLRequest", max); err != nil || !bytes.Equal(m.XML, forged) || m.verify([]*rsa.PublicKey{&kp.Key.PublicKey}) == nil {
		t.Fatalf("another message under the signature: %q %v, want it read and not verified", m.XML, err)
	}
	relayed := strings.Replace(good, "RelayState=r1", "RelayState=r2", 1)
	if m, err := readRedirect(relayed, "SAMLRequest", max); err != nil || m.verify([]*rsa.PublicKey{&kp.Key.PublicKey}) == nil {
		t.Fatalf("another RelayState under the signature verified (%v)", err)
	}

	bomb := deflated(bytes.Repeat([]byte("A"), 10<<20))
	for name, q := range map[string]string{
		"SHA-1":             strings.Replace(good, "rsa-sha256", "rsa-sha1", 1),
		"no signature":      strings.Replace(good, "&Signature="+param(good, "Signature"), "", 1),
		"no message":        strings.Replace(good, "SAMLRequest="+param(good, "SAMLRequest"), "SAMLRequest=", 1),
		"the message twice": good + "&SAMLRequest=" + deflated(forged),
		"RelayState twice":  good + "&RelayState=r2",
		"not base64":        strings.Replace(good, "SAMLRequest="+param(good, "SAMLRequest"), "SAMLRequest=%25%25", 1),
		"a deflate bomb":    strings.Replace(good, "SAMLRequest="+param(good, "SAMLRequest"), "SAMLRequest="+bomb, 1),
		"bad escaping":      good + "&x=%zz",
	} {
		if _, err := readRedirect(q, "SAMLRequest", max); err == nil {
			t.Errorf("%s: read", name)
		}
	}
}

func otherTestKey(t *testing.T) *rsa.PrivateKey {
	t.Helper()
	kp, err := NewSPKeypair(SPCertificate{EntityID: "https://evil.example.it", IPACode: "evil", Organization: "Evil"}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return kp.Key
}
