package cns_test

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/ponte-id/ponte/adapters/cns"
	"github.com/ponte-id/ponte/idp"
	"github.com/ponte-id/ponte/internal/config"
	"github.com/ponte-id/ponte/internal/method"
)

const examplePath = "../../config.example.yaml"

// load reads the example configuration with environ and decodes its "cns"
// section as Open does.
func load(t *testing.T, environ ...string) (config.Section, cns.Config, error) {
	t.Helper()
	c, err := config.Load(examplePath, append([]string{"PONTE_MASTER_KEY=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="}, environ...))
	if err != nil {
		t.Fatal(err)
	}
	sec := c.Section(cns.Plug.Section)
	got := cns.DefaultConfig()
	return sec, got, config.Decode(sec, &got, cns.Settings())
}

// TestConfigExample: the example's "cns" section states exactly the
// defaults, and every line names its variable, which sets the setting.
func TestConfigExample(t *testing.T) {
	_, got, err := load(t)
	if err != nil {
		t.Fatal(err)
	}
	if want := cns.DefaultConfig(); !reflect.DeepEqual(got, want) {
		t.Fatalf("example section =\n%+v\nwant the defaults\n%+v", got, want)
	}
	data, err := os.ReadFile(examplePath)
	if err != nil {
		t.Fatal(err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	leaves := map[string]string{}
	root := doc.Content[0]
	for i := 0; i+1 < len(root.Content); i += 2 {
		if root.Content[i].Value == "cns" {
			collect(root.Content[i+1], "", leaves)
		}
	}
	for _, st := range cns.Settings() {
		comment, ok := leaves[st.Path]
		if !ok || !strings.HasPrefix(comment, "# "+st.Env+":") {
			t.Errorf("the example's cns.%s does not document %s: %q", st.Path, st.Env, comment)
		}
		delete(leaves, st.Path)
	}
	for path := range leaves {
		t.Errorf("the example sets cns.%s, which has no variable", path)
	}
}

func collect(n *yaml.Node, prefix string, out map[string]string) {
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if v.Kind == yaml.MappingNode {
			collect(v, prefix+k.Value+".", out)
			continue
		}
		out[prefix+k.Value] = v.LineComment
	}
}

// TestConfigVariables: every variable sets its setting.
func TestConfigVariables(t *testing.T) {
	_, got, err := load(t,
		"PONTE_CNS_ENABLED=true", "PONTE_CNS_CARD_URL=https://carta.login.example.it:8443", "PONTE_CNS_CA_FILE=/etc/ponte/cns.pem",
		"PONTE_CNS_POLICY_OID=1.3.76.16.2.1.9", "PONTE_CNS_SERIAL_NUMBER_FALLBACK=1", "PONTE_CNS_RELOAD_INTERVAL=5m",
		"PONTE_CNS_OCSP=false", "PONTE_CNS_OCSP_URL=http://ocsp.example.it", "PONTE_CNS_OCSP_NONCE=false", "PONTE_CNS_CRL=true",
		"PONTE_CNS_CRL_DIR=/var/lib/ponte/crl", "PONTE_CNS_CRL_FETCH=false", "PONTE_CNS_CRL_REFRESH=30m", "PONTE_CNS_CRL_MAX_BYTES=1048576",
		"PONTE_CNS_REVOCATION_MAX_AGE=12h", "PONTE_CNS_CLOCK_SKEW=1m", "PONTE_CNS_REVOCATION_TIMEOUT=2s",
		"PONTE_CNS_REVOCATION_RETRY_AFTER=1m", "PONTE_CNS_CACHE_SIZE=50", "PONTE_CNS_FAIL_OPEN=true",
	)
	if err != nil {
		t.Fatal(err)
	}
	want := cns.Config{
		Enabled: true, CardURL: "https://carta.login.example.it:8443", CAFile: "/etc/ponte/cns.pem", PolicyOID: "1.3.76.16.2.1.9",
		SerialNumberFallback: true, ReloadInterval: 5 * time.Minute,
		Revocation: cns.Revocation{
			OCSP: false, OCSPURL: "http://ocsp.example.it", OCSPNonce: false, CRL: true, CRLDir: "/var/lib/ponte/crl", CRLFetch: false,
			CRLRefresh: 30 * time.Minute, CRLMaxBytes: 1 << 20, MaxAge: 12 * time.Hour, ClockSkew: time.Minute, Timeout: 2 * time.Second,
			RetryAfter: time.Minute, CacheSize: 50, FailOpen: true,
		},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("decoded\n%+v\nwant\n%+v", got, want)
	}
	if len(cns.Settings()) != 20 {
		t.Fatalf("%d settings: this test sets 20", len(cns.Settings()))
	}
}

// TestConfigErrors: an enabled method with bad settings is refused at
// start, every problem at once, by its path and its variable.
func TestConfigErrors(t *testing.T) {
	sec, _, err := load(t, "PONTE_CNS_ENABLED=true", "PONTE_CNS_CARD_URL=http://carta.example.it", "PONTE_CNS_POLICY_OID=cns",
		"PONTE_CNS_RELOAD_INTERVAL=0s", "PONTE_CNS_CACHE_SIZE=0", "PONTE_CNS_CLOCK_SKEW=2h", "PONTE_CNS_OCSP_URL=ldap://x",
		"PONTE_CNS_CRL_MAX_BYTES=10")
	if err != nil {
		t.Fatal(err)
	}
	_, err = cns.Plug.Open(sec, method.Deps{Issuer: "https://login.example.it"})
	var fe *config.FieldError
	if !errors.As(err, &fe) {
		t.Fatalf("want field errors, got %v", err)
	}
	for _, want := range []string{
		"cns.card_url (PONTE_CNS_CARD_URL): must be https", "cns.ca_file (PONTE_CNS_CA_FILE): is required",
		"cns.policy_oid (PONTE_CNS_POLICY_OID)", "cns.reload_interval (PONTE_CNS_RELOAD_INTERVAL)",
		"cns.revocation.cache_size (PONTE_CNS_CACHE_SIZE)", "cns.revocation.clock_skew (PONTE_CNS_CLOCK_SKEW)",
		"cns.revocation.ocsp_url (PONTE_CNS_OCSP_URL)", "cns.revocation.crl_max_bytes (PONTE_CNS_CRL_MAX_BYTES)",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the error does not say %s:\n%v", want, err)
		}
	}
	for env, want := range map[string]string{
		"PONTE_CNS_ENABLED=maybe":                   "PONTE_CNS_ENABLED (cns.enabled): want true or false",
		"PONTE_CNS_CARD_URL=https://carta.it/login": "must be scheme://host[:port] only",
		"PONTE_CNS_CA_FILE=/nonexistent/cns.pem":    "cns.ca_file (PONTE_CNS_CA_FILE)",
	} {
		// The variable under test first: of two values of one variable, the first counts.
		sec, _, err := load(t, env, "PONTE_CNS_ENABLED=true", "PONTE_CNS_CARD_URL=https://carta.example.it", "PONTE_CNS_CA_FILE="+newPKI(t).caFile)
		if err == nil {
			_, err = cns.Plug.Open(sec, method.Deps{Issuer: "https://login.example.it"})
		}
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want %q", env, err, want)
		}
	}
	// Both sources off without fail_open would refuse every card.
	sec, _, _ = load(t, "PONTE_CNS_ENABLED=true", "PONTE_CNS_CARD_URL=https://carta.example.it", "PONTE_CNS_CA_FILE="+newPKI(t).caFile,
		"PONTE_CNS_OCSP=false", "PONTE_CNS_CRL=false")
	if _, err := cns.Plug.Open(sec, method.Deps{Issuer: "https://login.example.it"}); err == nil || !strings.Contains(err.Error(), "both off") {
		t.Errorf("OCSP and CRL off: %v", err)
	}
}

// TestDisabled: without a cns section (as every deployment that does not
// read cards), the method opens, reaches no level (so the chooser never
// lists it) and its pages answer 404.
func TestDisabled(t *testing.T) {
	sec, _, err := load(t)
	if err != nil {
		t.Fatal(err)
	}
	a, err := cns.Plug.Open(sec, method.Deps{Issuer: "https://login.example.it"})
	if err != nil {
		t.Fatal(err)
	}
	if a.MaxLevel() != idp.LevelNone || a.Method() != idp.MethodCNS {
		t.Fatalf("a method that is off: %v %v", a.Method(), a.MaxLevel())
	}
	rec := httptest.NewRecorder()
	a.Handler(&fakeHost{}).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/card?challenge=x", nil))
	if rec.Code != http.StatusNotFound {
		t.Fatalf("a page of a method that is off: %d", rec.Code)
	}
	if st, _ := cns.StatusOf(a); st.Enabled {
		t.Fatal("status says enabled")
	}
}
