//go:build !fuzzing

package spid_test

import (
	"errors"
	"os"
	"reflect"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/ponte-id/ponte/adapters/spid"
	"github.com/ponte-id/ponte/idp"
	"github.com/ponte-id/ponte/internal/config"
	"github.com/ponte-id/ponte/internal/method"
)

const examplePath = "../../config.example.yaml"

func openExample(t *testing.T, environ []string, dev bool) (idp.Authenticator, error) {
	t.Helper()
	cfg, err := config.Load(examplePath, append([]string{"PONTE_MASTER_KEY=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="}, environ...))
	if err != nil {
		t.Fatal(err)
	}
	return spid.Plug.Open(cfg.Section(spid.Plug.Section), method.Deps{Issuer: "https://login.example.it", Dev: dev, Logger: quietLog()})
}

// TestConfigExample: the example's "spid" section states exactly the
// defaults, every line names its variable, which sets the setting; with it
// SPID is off: a method that reaches no level, which the chooser never lists.
func TestConfigExample(t *testing.T) {
	a, err := openExample(t, nil, false)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := spid.ConfigOf(a)
	if len(got.IDPMetadataFiles) == 0 {
		got.IDPMetadataFiles = nil
	}
	if want := spid.DefaultConfig(); !reflect.DeepEqual(got, want) {
		t.Fatalf("example section =\n%+v\nwant the defaults\n%+v", got, want)
	}
	if a.MaxLevel() != idp.LevelNone {
		t.Fatalf("SPID switched off reaches %v", a.MaxLevel())
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
		if root.Content[i].Value == "spid" {
			collect(root.Content[i+1], "", leaves)
		}
	}
	for _, st := range spid.Settings() {
		comment, ok := leaves[st.Path]
		if !ok || !strings.HasPrefix(comment, "# "+st.Env) {
			t.Errorf("the example's spid.%s does not document %s: %q", st.Path, st.Env, comment)
		}
		delete(leaves, st.Path)
	}
	for path := range leaves {
		t.Errorf("the example sets spid.%s, which has no variable", path)
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

// TestConfigErrors: every bad setting is reported at once, by its path and
// its variable; the test identity provider only in dev mode.
func TestConfigErrors(t *testing.T) {
	_, err := openExample(t, []string{
		"PONTE_SPID_ENABLED=true", "PONTE_SPID_COMPARISON=better", "PONTE_SPID_BINDING=soap", "PONTE_SPID_REQUEST_TTL=2h",
		"PONTE_SPID_IDP_METADATA_URL=https://registry.spid.gov.it/metadata/idp/spid-entities-idps.xml", "PONTE_SPID_CONTACT_IPA_CODE=not an ipa code",
		"PONTE_SPID_CONTACT_PHONE=06 1234", "PONTE_SPID_TEST_IDP=true",
	}, false)
	var fe *config.FieldError
	if !errors.As(err, &fe) {
		t.Fatalf("want field errors, got %v", err)
	}
	for _, want := range []string{
		"spid.comparison (PONTE_SPID_COMPARISON)", "spid.binding (PONTE_SPID_BINDING)", "spid.request_ttl (PONTE_SPID_REQUEST_TTL)",
		"spid.idp_metadata_cert_file (PONTE_SPID_IDP_METADATA_CERT_FILE)", "spid.contact.ipa_code (PONTE_SPID_CONTACT_IPA_CODE)",
		"spid.contact.phone (PONTE_SPID_CONTACT_PHONE)", "spid.cert_file (PONTE_SPID_CERT_FILE)", "spid.test_idp (PONTE_SPID_TEST_IDP)",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the error does not name %s:\n%v", want, err)
		}
	}
	// Files, comma-separated in the variable.
	if _, err := openExample(t, []string{"PONTE_SPID_ENABLED=true", "PONTE_SPID_IDP_METADATA_FILES=/nonexistent/a.xml, /nonexistent/b.xml"}, true); err == nil ||
		!strings.Contains(err.Error(), "/nonexistent/a.xml") {
		t.Fatalf("a missing metadata file: %v", err)
	}
}

// TestDevTestIDP: in dev mode, test_idp alone turns SPID on with a
// generated SP certificate and the test identity provider in the registry.
func TestDevTestIDP(t *testing.T) {
	a, err := openExample(t, []string{"PONTE_SPID_TEST_IDP=true"}, true)
	if err != nil {
		t.Fatal(err)
	}
	if a.MaxLevel() != idp.LevelDispositivo || spid.TestIDP(a) == nil {
		t.Fatalf("test_idp in dev mode: level %v, test IdP %v", a.MaxLevel(), spid.TestIDP(a))
	}
}
