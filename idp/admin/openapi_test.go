package admin_test

import (
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/ponte-id/ponte/api"
	"github.com/ponte-id/ponte/idp/admin"
	"github.com/ponte-id/ponte/internal/ratelimit"
)

// openAPI is api/openapi.yaml, read for the tests: the operations it
// documents, their status codes and the schemas of their bodies, checked
// with a small validator of the JSON Schema keywords the document uses.
type openAPI struct {
	root map[string]any
}

func loadOpenAPI(t testing.TB) *openAPI {
	t.Helper()
	var root map[string]any
	if err := yaml.Unmarshal(api.OpenAPI, &root); err != nil {
		t.Fatalf("api/openapi.yaml: %v", err)
	}
	if root["openapi"] != "3.1.0" {
		t.Fatalf("api/openapi.yaml is OpenAPI %v, want 3.1.0", root["openapi"])
	}
	return &openAPI{root: root}
}

func obj(v any) map[string]any { m, _ := v.(map[string]any); return m }

// operations returns "METHOD /path" of every documented operation.
func (d *openAPI) operations() map[string]map[string]any {
	out := map[string]map[string]any{}
	for path, item := range obj(d.root["paths"]) {
		for method, op := range obj(item) {
			if method == "parameters" {
				continue
			}
			out[strings.ToUpper(method)+" "+path] = obj(op)
		}
	}
	return out
}

// find returns the operation serving a concrete request, or nil.
func (d *openAPI) find(method, path string) (string, map[string]any) {
	path, _, _ = strings.Cut(strings.TrimPrefix(path, admin.Prefix), "?")
	segs := strings.Split(path, "/")
	for key, op := range d.operations() {
		m, tmpl, _ := strings.Cut(key, " ")
		if m != method {
			continue
		}
		ts := strings.Split(tmpl, "/")
		if len(ts) != len(segs) {
			continue
		}
		ok := true
		for i := range ts {
			if !(strings.HasPrefix(ts[i], "{") && segs[i] != "") && ts[i] != segs[i] {
				ok = false
				break
			}
		}
		if ok {
			return key, op
		}
	}
	return "", nil
}

// resolve follows a $ref ("#/components/...").
func (d *openAPI) resolve(s map[string]any) map[string]any {
	for s != nil {
		ref, ok := s["$ref"].(string)
		if !ok {
			return s
		}
		var cur any = d.root
		for _, part := range strings.Split(strings.TrimPrefix(ref, "#/"), "/") {
			cur = obj(cur)[part]
		}
		s = obj(cur)
	}
	return s
}

// responseSchema is the JSON schema of op's answer with status, or nil.
func (d *openAPI) responseSchema(op map[string]any, status int) (documented bool, schema map[string]any) {
	resp, ok := obj(op["responses"])[strconv.Itoa(status)]
	if !ok {
		return false, nil
	}
	content := obj(d.resolve(obj(resp))["content"])
	return true, obj(obj(content["application/json"])["schema"])
}

func (d *openAPI) requestSchema(op map[string]any) map[string]any {
	return obj(obj(obj(obj(op["requestBody"])["content"])["application/json"])["schema"])
}

// validate returns the problems of v (decoded JSON) against schema.
func (d *openAPI) validate(schema map[string]any, v any, at string) []string {
	s := d.resolve(schema)
	if s == nil {
		return nil
	}
	var errs []string
	bad := func(format string, a ...any) { errs = append(errs, at+": "+fmt.Sprintf(format, a...)) }
	if enum, ok := s["enum"].([]any); ok && !slices.ContainsFunc(enum, func(e any) bool { return fmt.Sprint(e) == fmt.Sprint(v) }) {
		bad("%v not in %v", v, enum)
	}
	switch s["type"] {
	case "object":
		m, ok := v.(map[string]any)
		if !ok {
			bad("not an object")
			break
		}
		props := obj(s["properties"])
		for _, r := range asList(s["required"]) {
			if _, ok := m[r]; !ok {
				bad("lacks required %q", r)
			}
		}
		for k, val := range m {
			switch ps, ap := props[k], s["additionalProperties"]; {
			case ps != nil:
				errs = append(errs, d.validate(obj(ps), val, at+"."+k)...)
			case ap == false:
				bad("property %q is not documented", k)
			case obj(ap) != nil:
				errs = append(errs, d.validate(obj(ap), val, at+"."+k)...)
			}
		}
	case "array":
		l, ok := v.([]any)
		if !ok {
			bad("not an array")
			break
		}
		if n, ok := s["maxItems"].(int); ok && len(l) > n {
			bad("more than %d items", n)
		}
		for i, item := range l {
			errs = append(errs, d.validate(obj(s["items"]), item, fmt.Sprintf("%s[%d]", at, i))...)
		}
	case "string":
		str, ok := v.(string)
		if !ok {
			bad("not a string")
			break
		}
		if n, ok := s["maxLength"].(int); ok && len([]rune(str)) > n {
			bad("longer than %d", n)
		}
		if s["format"] == "date-time" {
			if _, err := time.Parse(time.RFC3339, str); err != nil {
				bad("not a date-time: %q", str)
			}
		}
	case "integer":
		if f, ok := v.(float64); !ok || f != float64(int64(f)) {
			bad("not an integer")
		}
	case "boolean":
		if _, ok := v.(bool); !ok {
			bad("not a boolean")
		}
	}
	return errs
}

func asList(v any) []string {
	var out []string
	l, _ := v.([]any)
	for _, x := range l {
		out = append(out, x.(string))
	}
	return out
}

// TestOpenAPIMatchesRoutes: every route is documented with its roles and
// every documented operation is served; an operation behind a role
// documents 401, 403, 429 and 503 (the database unavailable), and a JSON
// body its 415.
func TestOpenAPIMatchesRoutes(t *testing.T) {
	doc := loadOpenAPI(t)
	ops := doc.operations()
	routes := map[string]admin.Route{}
	for _, rt := range admin.Routes() {
		routes[rt.Method+" "+rt.Path] = rt
	}
	for key, rt := range routes {
		op, ok := ops[key]
		if !ok {
			t.Errorf("route %s is not documented", key)
			continue
		}
		roles, _ := op["x-roles"].([]any)
		got := make([]string, len(roles))
		for i, r := range roles {
			got[i] = r.(string)
		}
		want := slices.Clone(rt.Roles)
		sort.Strings(got)
		sort.Strings(want)
		if !slices.Equal(got, want) {
			t.Errorf("%s: documented roles %v, served %v", key, got, want)
		}
		for _, status := range []int{401, 403, 429, 503} {
			if documented, _ := doc.responseSchema(op, status); documented != (len(rt.Roles) > 0) {
				t.Errorf("%s: %d documented %t, want %t", key, status, documented, len(rt.Roles) > 0)
			}
		}
		if doc.requestSchema(op) != nil {
			for _, status := range []int{400, 413, 415} {
				if documented, _ := doc.responseSchema(op, status); !documented {
					t.Errorf("%s takes a body but does not document %d", key, status)
				}
			}
		}
	}
	for _, key := range slices.Sorted(maps.Keys(ops)) {
		if _, ok := routes[key]; !ok {
			t.Errorf("documented %s is not served", key)
		}
	}
	// Every documented operation is reached on a real handler (not 404/405).
	h := admin.Handler(nil, api.OpenAPI, nil, ratelimit.Failures{})
	for key := range ops {
		method, path, _ := strings.Cut(key, " ")
		path = strings.NewReplacer("{id}", "x", "{fiscal_number}", "x", "{role}", "x").Replace(path)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(method, admin.Prefix+path, nil))
		if rec.Code == http.StatusNotFound || rec.Code == http.StatusMethodNotAllowed {
			t.Errorf("%s: %d", key, rec.Code)
		}
	}
}

// TestOpenAPIServed: the document is served, unauthenticated, as it is in the repository.
func TestOpenAPIServed(t *testing.T) {
	h := admin.Handler(nil, api.OpenAPI, nil, ratelimit.Failures{})
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", admin.Prefix+"/openapi.yaml", nil))
	if rec.Code != 200 || rec.Body.String() != string(api.OpenAPI) || rec.Header().Get("Content-Type") != "application/yaml" {
		t.Fatalf("GET openapi.yaml: %d %s", rec.Code, rec.Header())
	}
}
