package spid

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/beevik/etree"

	"github.com/ponte-id/ponte/adapters/spid/testidp"
	"github.com/ponte-id/ponte/internal/config"
	"github.com/ponte-id/ponte/internal/method"
)

// TestRegistryRefresh: the runner reads the identity providers' metadata
// again on schedule; a file that became unreadable keeps the registry as it
// was.
func TestRegistryRefresh(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "idps.xml")
	fixed, err := ParseKeypair(mustRead(t, "testdata/idp.crt"), mustRead(t, "testdata/idp.key"))
	if err != nil {
		t.Fatal(err)
	}
	idpFor := func(entity string) []byte {
		p, err := testidp.New(testidp.Config{EntityID: entity, BaseURL: entity, Keypair: &testidp.Keypair{Key: fixed.Key, Cert: fixed.Cert}})
		if err != nil {
			t.Fatal(err)
		}
		return p.Metadata()
	}
	if err := os.WriteFile(file, idpFor("https://a.example.it"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load("", []string{"PONTE_MASTER_KEY=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=", "PONTE_SPID_ENABLED=true",
		"PONTE_SPID_IDP_METADATA_FILES=" + file})
	if err != nil {
		t.Fatal(err)
	}
	m, err := Open(cfg.Section(section), method.Deps{Issuer: "https://login.example.it", Dev: true})
	if err != nil {
		t.Fatal(err)
	}
	a := m.(*authenticator)
	if _, ok := a.registry.get("https://a.example.it"); !ok {
		t.Fatal("the first identity provider is not in the registry")
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { a.refresh(ctx, 10*time.Millisecond); close(done) }()
	defer func() { cancel(); <-done }()
	if err := os.WriteFile(file, idpFor("https://b.example.it"), 0o600); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { _, ok := a.registry.get("https://b.example.it"); return ok })
	if _, ok := a.registry.get("https://a.example.it"); ok {
		t.Fatal("the identity provider gone from the metadata is still in the registry")
	}
	if err := os.WriteFile(file, []byte("<broken"), 0o600); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	if _, ok := a.registry.get("https://b.example.it"); !ok {
		t.Fatal("a failed refresh emptied the registry")
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("timed out")
		}
	}
}

// TestRegistryURL: with the registry's URL, Open reads nothing (no network
// I/O); the runner fetches the metadata, checks its signature against the
// registry's certificate, and loads it.
func TestRegistryURL(t *testing.T) {
	fixed, err := ParseKeypair(mustRead(t, "testdata/idp.crt"), mustRead(t, "testdata/idp.key"))
	if err != nil {
		t.Fatal(err)
	}
	p, _ := testidp.New(testidp.Config{EntityID: "https://idp.example.it", BaseURL: "https://idp.example.it", Keypair: &testidp.Keypair{Key: fixed.Key, Cert: fixed.Cert}})
	doc := etree.NewDocument()
	if err := doc.ReadFromBytes(p.Metadata()); err != nil {
		t.Fatal(err)
	}
	if err := signEnveloped(doc.Root(), fixed, 0); err != nil {
		t.Fatal(err)
	}
	signed, _ := doc.WriteToBytes()
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		hits.Add(1)
		_, _ = w.Write(signed)
	}))
	defer srv.Close()
	dir := t.TempDir()
	certFile := filepath.Join(dir, "registry.crt")
	_ = os.WriteFile(certFile, fixed.CertPEM(), 0o600)
	cfg, err := config.Load("", []string{"PONTE_MASTER_KEY=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=", "PONTE_SPID_ENABLED=true",
		"PONTE_SPID_IDP_METADATA_URL=" + srv.URL, "PONTE_SPID_IDP_METADATA_CERT_FILE=" + certFile})
	if err != nil {
		t.Fatal(err)
	}
	m, err := Open(cfg.Section(section), method.Deps{Issuer: "https://login.example.it", Dev: true})
	if err != nil {
		t.Fatal(err)
	}
	if hits.Load() != 0 {
		t.Fatal("Open fetched the registry")
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = m.(*authenticator).Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	waitFor(t, func() bool { _, ok := m.(*authenticator).registry.get("https://idp.example.it"); return ok })
}
