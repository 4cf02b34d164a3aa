package idp_test

import (
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/ponte-id/ponte/"

// TestDependencyDirections keeps the tree's flow true (STYLE.md rule 1): the
// seam uses the standard library only; storage speaks no protocol; adapters
// know the contract, not the core's implementation; gin stays at the edge;
// nothing imports cmd.
func TestDependencyDirections(t *testing.T) {
	out, err := exec.Command("go", "list", "-f", `{{.ImportPath}} {{join .Imports " "}}`, "github.com/ponte-id/ponte/...").Output()
	if err != nil {
		t.Skipf("go list unavailable: %v", err)
	}
	imports := map[string][]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line)
		imports[f[0]] = f[1:]
	}
	forbidden := []struct {
		pkgPrefix string
		imports   []string
	}{
		{module + "storage", []string{"github.com/ory/fosite", module + "idp", module + "adapters"}},
		{module + "adapters/", []string{module + "idp/provider", module + "idp/keys", module + "storage/sqlstore", module + "internal/edge", module + "cmd", "github.com/ory/fosite"}},
		{module + "idp/provider", []string{module + "adapters", module + "storage/sqlstore"}},
	}
	for pkg, imps := range imports {
		for _, imp := range imps {
			if strings.HasPrefix(imp, module+"cmd") {
				t.Errorf("%s imports %s: nothing imports cmd", pkg, imp)
			}
			if strings.HasPrefix(imp, "github.com/gin-gonic/gin") && pkg != module+"internal/edge" {
				t.Errorf("%s imports gin: gin stays at the edge", pkg)
			}
			for _, rule := range forbidden {
				if !strings.HasPrefix(pkg, rule.pkgPrefix) {
					continue
				}
				for _, bad := range rule.imports {
					if strings.HasPrefix(imp, bad) && !strings.HasPrefix(pkg, bad) {
						t.Errorf("%s imports %s", pkg, imp)
					}
				}
			}
		}
	}
	seam, err := exec.Command("go", "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", module+"idp").Output()
	if err != nil {
		t.Fatal(err)
	}
	if deps := strings.Fields(string(seam)); len(deps) != 1 || deps[0] != module+"idp" {
		t.Errorf("the seam must use the standard library only; it depends on %v", deps)
	}
}
