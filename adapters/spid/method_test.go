package spid

import (
	"bytes"
	"crypto/rsa"
	"crypto/x509"
	"log/slog"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/ponte-id/ponte/idp"
	"github.com/ponte-id/ponte/internal/config"
	"github.com/ponte-id/ponte/internal/method"
)

// mountHost is the part of idp.Host that Handler asks at once: where the
// core mounts the method. Nothing else of it is called here.
type mountHost struct {
	idp.Host
	mount string
}

func (h mountHost) MethodURL(p string) string { return h.mount + p }

// TestMetadataBuiltInOpen: Open builds and signs the SP metadata (for the
// pages at /login/spid) before any page is served, and the test identity
// provider trusts it there; Handler serves exactly those bytes. A host that
// mounts the pages elsewhere than the metadata says gets nothing served and
// an error in the log. A metadata that cannot be signed is an error that
// names the SP's key, for Open to return (it was logged by Handler, which
// then served an empty metadata).
func TestMetadataBuiltInOpen(t *testing.T) {
	cfg, err := config.Load("", []string{"PONTE_MASTER_KEY=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=", "PONTE_SPID_TEST_IDP=true", "PONTE_DEV=true"})
	if err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	m, err := Open(cfg.Section(section), method.Deps{Issuer: "https://login.example.it", Dev: true,
		Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	a := m.(*authenticator)
	if len(a.metadata) == 0 {
		t.Fatal("Open built no SP metadata")
	}
	root, err := parseXML(a.metadata)
	if err != nil {
		t.Fatal(err)
	}
	signed, err := verifySigned(root, []*x509.Certificate{a.kp.Cert}, a.clock)
	if err != nil {
		t.Fatalf("the metadata is not signed by the SP: %v", err)
	}
	acs := signed.FindElement("./SPSSODescriptor/AssertionConsumerService")
	if acs == nil || acs.SelectAttrValue("Location", "") != "https://login.example.it/login/spid/acs" {
		t.Fatalf("the ACS is not below the mount: %v", acs)
	}

	rec := httptest.NewRecorder()
	a.Handler(mountHost{mount: "/login/spid"}).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metadata", nil))
	if rec.Code != http.StatusOK || !bytes.Equal(rec.Body.Bytes(), a.metadata) {
		t.Fatalf("the metadata served (%d, %d bytes) is not the one Open built", rec.Code, rec.Body.Len())
	}

	rec = httptest.NewRecorder()
	a.Handler(mountHost{mount: "/sso/spid"}).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metadata", nil))
	if rec.Code != http.StatusNotFound || !strings.Contains(logs.String(), "mounted elsewhere than the SP metadata says") {
		t.Fatalf("mounted elsewhere: %d, log %q", rec.Code, logs.String())
	}

	// A key that cannot sign (its private exponent broken in memory: a
	// file with such a key does not load).
	broken := *a.kp.Key
	broken.D = new(big.Int).Add(broken.D, big.NewInt(2))
	broken.Precomputed = rsa.PrecomputedValues{}
	a.kp.Key = &broken
	if _, err := a.buildMetadata(); err == nil || !strings.Contains(err.Error(), "SP metadata") || !strings.Contains(err.Error(), "spid.key_file") {
		t.Fatalf("a key that cannot sign: %v, want an error naming the SP metadata and key", err)
	}
}
