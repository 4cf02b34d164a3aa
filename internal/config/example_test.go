package config

import (
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

const examplePath = "../../config.example.yaml"

// TestExampleIsDefault loads the shipped example: it must validate and state
// exactly the defaults.
func TestExampleIsDefault(t *testing.T) {
	got, err := Load(examplePath, []string{"PONTE_MASTER_KEY=" + testKey})
	if err != nil {
		t.Fatalf("Load(%s): %v", examplePath, err)
	}
	got.Sections, got.environ = nil, nil // the methods' sections: each method's tests check its own
	want := Default()
	want.MasterKey = testKey
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("example =\n%+v\nwant Default()\n%+v", got, want)
	}
}

// TestExampleListsEverySetting checks the example, the environment bindings
// and the Config struct name the same settings, and that each line of the
// example documents its variable.
func TestExampleListsEverySetting(t *testing.T) {
	data, err := os.ReadFile(examplePath)
	if err != nil {
		t.Fatal(err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	exampleKeys := map[string]string{} // path → line comment
	collectLeaves(doc.Content[0], "", exampleKeys)
	own := yamlFields(reflect.TypeFor[Config]())
	for path := range exampleKeys {
		top, _, _ := strings.Cut(path, ".")
		if _, ok := own[top]; !ok {
			delete(exampleKeys, path) // a login method's section, checked by its own tests
		}
	}

	var bound, structPaths []string
	for _, b := range bindings() {
		bound = append(bound, b.path)
		comment, ok := exampleKeys[b.path]
		if !ok {
			t.Errorf("example lacks %s", b.path)
			continue
		}
		if !strings.Contains(comment, b.env) {
			t.Errorf("example comment for %s does not name %s: %q", b.path, b.env, comment)
		}
	}
	for path := range exampleKeys {
		if !slices.Contains(bound, path) {
			t.Errorf("example sets %s, which has no environment binding", path)
		}
	}
	collectStructPaths(reflect.TypeFor[Config](), "", &structPaths)
	slices.Sort(bound)
	slices.Sort(structPaths)
	if !slices.Equal(bound, structPaths) {
		t.Errorf("bindings %v\ndiffer from Config fields %v", bound, structPaths)
	}
}

func collectLeaves(n *yaml.Node, prefix string, out map[string]string) {
	for i := 0; i+1 < len(n.Content); i += 2 {
		key, val := n.Content[i], n.Content[i+1]
		path := prefix + key.Value
		if val.Kind == yaml.MappingNode {
			collectLeaves(val, path+".", out)
			continue
		}
		out[path] = val.LineComment
	}
}

func collectStructPaths(t reflect.Type, prefix string, out *[]string) {
	for f := range t.Fields() {
		if !f.IsExported() || strings.HasSuffix(f.Tag.Get("yaml"), ",inline") {
			continue
		}
		path := prefix + f.Tag.Get("yaml")
		if f.Type.Kind() == reflect.Struct {
			collectStructPaths(f.Type, path+".", out)
			continue
		}
		*out = append(*out, path)
	}
}
