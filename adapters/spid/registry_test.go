package spid

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
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

// registryDoc is the registry's metadata as AgID publishes it: an
// EntitiesDescriptor with attrs (validUntil, cacheDuration), holding the
// identity providers of entities (each changed by its mutate, if any),
// signed by kp.
func registryDoc(t *testing.T, kp Keypair, attrs map[string]string, entities []string, mutate map[string]func(*etree.Element)) []byte {
	t.Helper()
	fixed, err := ParseKeypair(mustRead(t, "testdata/idp.crt"), mustRead(t, "testdata/idp.key"))
	if err != nil {
		t.Fatal(err)
	}
	doc := etree.NewDocument()
	root := doc.CreateElement("md:EntitiesDescriptor")
	root.CreateAttr("xmlns:md", nsMetadata)
	root.CreateAttr("xmlns:ds", nsDSig)
	root.CreateAttr("ID", newID())
	for k, v := range attrs {
		root.CreateAttr(k, v)
	}
	for _, entity := range entities {
		p, err := testidp.New(testidp.Config{EntityID: entity, BaseURL: entity, Keypair: &testidp.Keypair{Key: fixed.Key, Cert: fixed.Cert}})
		if err != nil {
			t.Fatal(err)
		}
		ed := etree.NewDocument()
		if err := ed.ReadFromBytes(p.Metadata()); err != nil {
			t.Fatal(err)
		}
		if m := mutate[entity]; m != nil {
			m(ed.Root())
		}
		root.AddChild(ed.Root())
	}
	if err := signEnveloped(root, kp, 0); err != nil {
		t.Fatal(err)
	}
	b, err := doc.WriteToBytes()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// registryServer serves whatever doc holds, counting the requests.
type registryServer struct {
	*httptest.Server
	doc  atomic.Pointer[[]byte]
	hits atomic.Int32
}

func newRegistryServer(t *testing.T, doc []byte) *registryServer {
	rs := &registryServer{}
	rs.doc.Store(&doc)
	rs.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		rs.hits.Add(1)
		_, _ = w.Write(*rs.doc.Load())
	}))
	t.Cleanup(rs.Close)
	return rs
}

// openRegistry opens the method reading the registry at url, signed by kp,
// logging to logs.
func openRegistry(t *testing.T, url string, kp Keypair, logs *bytes.Buffer) *authenticator {
	t.Helper()
	certFile := filepath.Join(t.TempDir(), "registry.crt")
	_ = os.WriteFile(certFile, kp.CertPEM(), 0o600)
	cfg, err := config.Load("", []string{"PONTE_MASTER_KEY=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=", "PONTE_SPID_ENABLED=true",
		"PONTE_SPID_IDP_METADATA_URL=" + url, "PONTE_SPID_IDP_METADATA_CERT_FILE=" + certFile})
	if err != nil {
		t.Fatal(err)
	}
	m, err := Open(cfg.Section(section), method.Deps{Issuer: "https://login.example.it", Dev: true, Logger: slog.New(slog.NewTextHandler(logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	return m.(*authenticator)
}

// TestRegistryValidUntil: metadata past its validUntil (the registry's, or
// one identity provider's in it) is refused, and a refresh that finds it
// keeps the identity providers the registry had, and says why in the log; a
// validUntil to come is fine, one that does not parse is refused.
func TestRegistryValidUntil(t *testing.T) {
	kp, err := ParseKeypair(mustRead(t, "testdata/idp.crt"), mustRead(t, "testdata/idp.key"))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	ahead, past := now.Add(time.Hour).UTC().Format(time.RFC3339), now.Add(-time.Hour).UTC().Format(time.RFC3339)
	a := []string{"https://a.example.it"}
	expire := func(ed *etree.Element) { ed.CreateAttr("validUntil", past) }
	for _, tc := range []struct {
		name    string
		attrs   map[string]string
		mutate  map[string]func(*etree.Element)
		wantErr string
	}{
		{name: "no validUntil"},
		{name: "validUntil to come", attrs: map[string]string{"validUntil": ahead}},
		{name: "validUntil to come, with an offset", attrs: map[string]string{"validUntil": now.Add(time.Hour).In(time.FixedZone("CET", 3600)).Format(time.RFC3339)}},
		{name: "past validUntil", attrs: map[string]string{"validUntil": past}, wantErr: "no longer valid"},
		{name: "an identity provider past its validUntil", attrs: map[string]string{"validUntil": ahead},
			mutate: map[string]func(*etree.Element){a[0]: expire}, wantErr: "EntityDescriptor https://a.example.it: no longer valid"},
		{name: "validUntil without a time zone", attrs: map[string]string{"validUntil": "2999-01-01T00:00:00"}, wantErr: "not an xs:dateTime"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := parseIDPMetadata(registryDoc(t, kp, tc.attrs, a, tc.mutate), kp.Cert, clockOf(time.Now))
			if (err == nil) != (tc.wantErr == "") || (err != nil && !strings.Contains(err.Error(), tc.wantErr)) {
				t.Fatalf("%v, want %q", err, tc.wantErr)
			}
		})
	}

	t.Run("a refresh finds it expired", func(t *testing.T) {
		rs := newRegistryServer(t, registryDoc(t, kp, map[string]string{"validUntil": ahead}, a, nil))
		var logs bytes.Buffer
		m := openRegistry(t, rs.URL, kp, &logs)
		if err := m.reload(context.Background()); err != nil {
			t.Fatal(err)
		}
		expired := registryDoc(t, kp, map[string]string{"validUntil": past}, []string{"https://b.example.it"}, nil)
		rs.doc.Store(&expired)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { m.refresh(ctx, 10*time.Millisecond); close(done) }()
		waitFor(t, func() bool { return rs.hits.Load() >= 3 })
		cancel()
		<-done
		if _, ok := m.registry.get("https://a.example.it"); !ok {
			t.Fatal("expired metadata emptied the registry")
		}
		if _, ok := m.registry.get("https://b.example.it"); ok {
			t.Fatal("expired metadata was loaded")
		}
		if !strings.Contains(logs.String(), "not refreshed") || !strings.Contains(logs.String(), "no longer valid") {
			t.Fatalf("the log does not say why: %s", logs.String())
		}
	})
}

// TestRegistryCacheDuration: the registry's cacheDuration bounds how long
// the runner waits before reading it again (spid.refresh is a day), though
// never below the floor; the shortest cacheDuration in the document counts.
func TestRegistryCacheDuration(t *testing.T) {
	kp, err := ParseKeypair(mustRead(t, "testdata/idp.crt"), mustRead(t, "testdata/idp.key"))
	if err != nil {
		t.Fatal(err)
	}
	a := []string{"https://a.example.it"}
	for _, tc := range []struct {
		name   string
		attrs  map[string]string
		mutate map[string]func(*etree.Element)
		want   time.Duration
	}{
		{name: "none", want: 24 * time.Hour},
		{name: "PT2H", attrs: map[string]string{"cacheDuration": "PT2H"}, want: 2 * time.Hour},
		{name: "P2D: longer than refresh", attrs: map[string]string{"cacheDuration": "P2D"}, want: 24 * time.Hour},
		{name: "PT10S: the floor", attrs: map[string]string{"cacheDuration": "PT10S"}, want: time.Minute},
		{name: "an identity provider's shorter one", attrs: map[string]string{"cacheDuration": "PT6H"},
			mutate: map[string]func(*etree.Element){a[0]: func(ed *etree.Element) { ed.CreateAttr("cacheDuration", "PT1H30M") }}, want: 90 * time.Minute},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rs := newRegistryServer(t, registryDoc(t, kp, tc.attrs, a, tc.mutate))
			m := openRegistry(t, rs.URL, kp, &bytes.Buffer{})
			if err := m.reload(context.Background()); err != nil {
				t.Fatal(err)
			}
			if got := m.nextRefresh(m.cfg.Refresh); got != tc.want {
				t.Fatalf("next refresh in %v, want %v", got, tc.want)
			}
		})
	}
	if _, _, err := parseIDPMetadata(registryDoc(t, kp, map[string]string{"cacheDuration": "two hours"}, a, nil), kp.Cert, nil); err == nil {
		t.Fatal("a cacheDuration that does not parse was taken")
	}

	t.Run("the runner reads the registry again when it says", func(t *testing.T) {
		rs := newRegistryServer(t, registryDoc(t, kp, map[string]string{"cacheDuration": "PT0.05S"}, a, nil))
		m := openRegistry(t, rs.URL, kp, &bytes.Buffer{})
		m.minRefresh = 10 * time.Millisecond // the floor is a minute
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { _ = m.Run(ctx); close(done) }()
		defer func() { cancel(); <-done }()
		waitFor(t, func() bool { return rs.hits.Load() >= 4 })
	})
}

// TestParseXSDuration: xs:duration as metadata's cacheDuration uses it.
func TestParseXSDuration(t *testing.T) {
	for in, want := range map[string]time.Duration{
		"PT2H": 2 * time.Hour, "P1D": 24 * time.Hour, "P1DT12H": 36 * time.Hour, "PT1H30M": 90 * time.Minute,
		"PT0.5S": 500 * time.Millisecond, "P1Y": 365 * 24 * time.Hour, "P1M": 30 * 24 * time.Hour, "PT604800S": 7 * 24 * time.Hour,
	} {
		if got, err := parseXSDuration(in); err != nil || got != want {
			t.Errorf("%s: %v %v, want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "P", "PT", "-PT1H", "PT0S", "1H", "PT1H2", "P1H", "PT1.5H", "P999999999999Y", "PT99999999999999999999S", "P1DT"} {
		if got, err := parseXSDuration(in); err == nil {
			t.Errorf("%q: %v, want an error", in, got)
		}
	}
}

// TestRegistryHTTPS: the registry is read over https; plain http only on
// loopback (a test's server), and no redirect leaves https.
func TestRegistryHTTPS(t *testing.T) {
	for u, ok := range map[string]bool{
		"https://registry.spid.gov.it/entities-idp": true,
		"http://registry.spid.gov.it/entities-idp":  false,
		"http://127.0.0.1:8080/idps.xml":            true,
		"http://[::1]:8080/idps.xml":                true,
		"http://localhost/idps.xml":                 true,
		"http://127.0.0.1.evil.example/idps.xml":    false,
		"ftp://registry.spid.gov.it/idps.xml":       false,
	} {
		c := DefaultConfig()
		c.Enabled, c.CertFile, c.KeyFile = true, "sp.crt", "sp.key"
		c.IDPMetadataURL, c.IDPMetadataCertFile = u, "registry.crt"
		err := c.Validate(false)
		if bad := err != nil && strings.Contains(err.Error(), "idp_metadata_url"); bad == ok {
			t.Errorf("%s: %v", u, err)
		}
	}
	// An https registry that redirects to http elsewhere is not followed.
	srv := httptest.NewTLSServer(http.RedirectHandler("http://registry.example.invalid/idps.xml", http.StatusFound))
	defer srv.Close()
	src := metadataSource{url: srv.URL, client: registryClient(srv.Client().Transport)}
	if _, err := src.fetch(context.Background()); err == nil || !strings.Contains(err.Error(), "https only") {
		t.Fatalf("a redirect to http: %v, want it refused", err)
	}
}
