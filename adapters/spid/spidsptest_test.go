//go:build !fuzzing

package spid_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/oauth2"

	"github.com/ponte-id/ponte/idp/clients"
	"github.com/ponte-id/ponte/internal/oidctest"
	"github.com/ponte-id/ponte/storage/storagetest"
)

// Environment of TestSPIDSPTest.
const (
	// envSPIDSPTest is the path of spid-sp-test's run.sh (installed by
	// shared/tools/spid-sp-test/install.sh); the test skips without it.
	envSPIDSPTest = "PONTE_SPID_SP_TEST"
	// envSPIDSPTestReport is where the JSON report goes (a temporary file
	// if unset).
	envSPIDSPTestReport = "PONTE_SPID_SP_TEST_REPORT"
)

// TestSPIDSPTest runs the SPID community's checker, spid-sp-test, against
// Ponte's SP on loopback: the metadata (profile spid-sp-public, extra checks
// included), the AuthnRequest, and every crafted response (-tr) posted to the
// ACS by spid-sp-test's own fake identity provider, which Ponte trusts through
// the metadata spid-sp-test prints. It wants 0 failures.
func TestSPIDSPTest(t *testing.T) {
	run := os.Getenv(envSPIDSPTest)
	if run == "" {
		t.Skipf("%s is not set (the path of spid-sp-test's run.sh)", envSPIDSPTest)
	}
	dir := t.TempDir()
	fake, err := exec.Command(run, "--idp-metadata").Output()
	if err != nil {
		t.Fatalf("spid-sp-test --idp-metadata: %v", err)
	}
	fakeFile := filepath.Join(dir, "spid-sp-test-idp.xml")
	if err := os.WriteFile(fakeFile, fake, 0o600); err != nil {
		t.Fatal(err)
	}
	s := newSite(t, storagetest.SQLite(t), fakeFile)

	// The relying party's redirect URI answers 200, as spid-sp-test wants of
	// an accepted response at the end of its redirects.
	rpSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("code") == "" {
			http.Error(w, "no code", http.StatusBadRequest)
			return
		}
		_, _ = w.Write([]byte("logged in"))
	}))
	t.Cleanup(rpSrv.Close)
	r := s.env.NewRP(clients.Spec{RedirectURIs: []string{rpSrv.URL + "/cb"}, Scopes: []string{"openid", "inps.dispositivo"}})
	r.Conf.Scopes = []string{"openid", "inps.dispositivo"}
	authURL := r.Conf.AuthCodeURL(oidctest.RandomString(), oauth2.S256ChallengeOption(oauth2.GenerateVerifier()),
		oauth2.SetAuthURLParam("idp_hint", "spid:"+fakeEntityID()))

	report := os.Getenv(envSPIDSPTestReport)
	if report == "" {
		report = filepath.Join(dir, "report.json")
	} else if report, err = filepath.Abs(report); err != nil {
		t.Fatal(err)
	}
	_ = os.MkdirAll(filepath.Dir(report), 0o755)
	plugins, _ := filepath.Abs("testdata")
	cmd := exec.Command(run, "--metadata-url", s.env.Issuer+"/login/spid/metadata", "--authn-url", authURL,
		"-ap", "ponte_plugin.Ponte", "-pr", "spid-sp-public", "--extra", "-tr", "-rf", "json", "-o", report, "-d", "ERROR")
	cmd.Env = append(os.Environ(), "PYTHONPATH="+plugins)
	cmd.Dir = dir
	out, runErr := cmd.CombinedOutput()
	passed, failed, failures, byCategory := readReport(t, report)
	t.Logf("spid-sp-test: %d passed, %d failed %v (report %s)", passed, failed, byCategory, report)
	t.Logf("spid-sp-test's output:\n%s", tail(string(out), 3000))
	// A check that cannot run (the AuthnRequest not found, say) is not a
	// failure to spid-sp-test: it skips what follows. Every part must be there.
	for _, part := range []string{"metadata_extra", "authnrequest_extra", "response"} {
		if byCategory[part] == 0 {
			t.Errorf("spid-sp-test ran no %s check", part)
		}
	}
	for _, f := range failures {
		t.Errorf("spid-sp-test failure: %s", f)
	}
	if runErr != nil || failed > 0 || passed == 0 {
		t.Fatalf("spid-sp-test: %v\n%s", runErr, tail(string(out), 4000))
	}
}

// fakeEntityID is spid-sp-test's fake identity provider.
func fakeEntityID() string {
	if e := os.Getenv("IDP_ENTITYID"); e != "" {
		return e
	}
	return "https://localhost:8443"
}

// readReport counts the checks of spid-sp-test's JSON report.
func readReport(t *testing.T, path string) (passed, failed int, failures []string, byCategory map[string]int) {
	t.Helper()
	byCategory = map[string]int{}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Logf("no report: %v", err)
		return 0, 0, nil, byCategory
	}
	var doc struct {
		Test struct {
			SP map[string]any `json:"sp"`
		} `json:"test"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatalf("report: %v", err)
	}
	var walk func(v any)
	walk = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			if res, ok := x["result"].(string); ok {
				switch res {
				case "success":
					passed++
				case "failure":
					failed++
					failures = append(failures, strings.TrimSpace(fmtAny(x["test"])+" "+fmtAny(x["value"])))
				}
			}
			for _, c := range x {
				walk(c)
			}
		case []any:
			for _, c := range x {
				walk(c)
			}
		}
	}
	for cat, v := range doc.Test.SP {
		before := passed + failed
		walk(v)
		byCategory[cat] = passed + failed - before
	}
	return passed, failed, failures, byCategory
}

func fmtAny(v any) string {
	if v == nil {
		return ""
	}
	b, _ := json.Marshal(v)
	return string(b)
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}
