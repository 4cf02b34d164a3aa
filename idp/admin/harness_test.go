package admin_test

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ponte-id/ponte/api"
	"github.com/ponte-id/ponte/idp/admin"
	"github.com/ponte-id/ponte/idp/clients"
	"github.com/ponte-id/ponte/idp/keys"
	"github.com/ponte-id/ponte/idp/provider"
	"github.com/ponte-id/ponte/idp/staff"
	"github.com/ponte-id/ponte/internal/codicefiscale"
	"github.com/ponte-id/ponte/internal/ratelimit"
	"github.com/ponte-id/ponte/internal/seal"
	"github.com/ponte-id/ponte/storage"
	"github.com/ponte-id/ponte/storage/sqlstore"
)

// clock is a settable clock shared by the services of a fixture.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) { c.mu.Lock(); defer c.mu.Unlock(); c.t = c.t.Add(d) }

// fixture is the admin API on a real listener over a real store, with one
// API token per role and an admin named by codice fiscale.
type fixture struct {
	t      *testing.T
	store  *sqlstore.Store
	svc    *admin.Service
	staff  *staff.Service
	clock  *clock
	srv    *httptest.Server
	doc    *openAPI
	tokens map[string]string // role (or "revoked", "expired") -> token
	ids    map[string]string // role -> token ID
	seq    atomic.Int64
}

// services builds the admin service on store, as cmd/ponte does.
func services(t testing.TB, store *sqlstore.Store, box *seal.Box, now func() time.Time) (*admin.Service, *staff.Service, *clients.Registry) {
	t.Helper()
	km, err := keys.New(store, box, keys.Options{PublishDelay: time.Minute, Retention: time.Hour, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	if err := km.EnsureKeys(t.Context(), keys.ES256, keys.RS256); err != nil {
		t.Fatal(err)
	}
	hasher, err := clients.NewHasher(box.Derive("client-secret", 32))
	if err != nil {
		t.Fatal(err)
	}
	st, err := staff.New(store, staff.Options{TokenKey: box.Derive("api-token", 32), ValidFiscalNumber: codicefiscale.Valid, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	reg := clients.NewRegistry(store, hasher, now)
	return admin.New(store, reg, km, st, provider.SessionEnder{Store: store, Now: now}, now), st, reg
}

func newBox(t testing.TB) *seal.Box {
	master := make([]byte, 32)
	_, _ = rand.Read(master)
	box, err := seal.New(master)
	if err != nil {
		t.Fatal(err)
	}
	return box
}

const (
	adminCF = "RSSMRA80A01H501U"
	otherCF = "BNCLGU70B02F205F"
)

var allRoles = []string{staff.RoleAdmin, staff.RoleAuditor, staff.RoleOperatorSede, staff.RoleOperatorContactCenter}

func newFixture(t *testing.T, store *sqlstore.Store) *fixture {
	t.Helper()
	clk := &clock{t: time.Now().UTC().Truncate(time.Second)}
	svc, st, _ := services(t, store, newBox(t), clk.now)
	f := &fixture{t: t, store: store, svc: svc, staff: st, clock: clk, doc: loadOpenAPI(t),
		tokens: map[string]string{}, ids: map[string]string{}}
	// The tests send many wrong tokens from one address: a limit above
	// their count (the limit's own test builds its handler).
	f.srv = httptest.NewServer(admin.Handler(svc, api.OpenAPI, nil, ratelimit.Failures{Limit: 1 << 20}))
	t.Cleanup(f.srv.Close)
	ctx := t.Context()
	for _, role := range append(slicesOf(allRoles), "revoked", "expired") {
		roles, ttl := []string{role}, time.Hour
		switch role {
		case "revoked":
			roles = []string{staff.RoleAdmin}
		case "expired":
			roles, ttl = []string{staff.RoleAdmin}, time.Minute
		}
		rec, tok, err := st.CreateToken(ctx, staff.CLI, staff.TokenSpec{Name: role, Roles: roles, TTL: ttl})
		if err != nil {
			t.Fatal(err)
		}
		f.tokens[role], f.ids[role] = tok, rec.ID
		if role == "revoked" {
			if err := st.RevokeToken(ctx, staff.CLI, rec.ID); err != nil {
				t.Fatal(err)
			}
		}
	}
	clk.add(2 * time.Minute) // "expired" is now past its minute
	if _, err := st.Grant(ctx, staff.CLI, adminCF, staff.RoleAdmin); err != nil {
		t.Fatal(err)
	}
	return f
}

func slicesOf(s []string) []string { return append([]string(nil), s...) }

// uniq returns a fresh name.
func (f *fixture) uniq(prefix string) string {
	return fmt.Sprintf("%s-%d", prefix, f.seq.Add(1))
}

// resp is an answer of the API.
type resp struct {
	status int
	header http.Header
	raw    []byte
	body   map[string]any
}

func (r resp) field(name string) string {
	fs, _ := r.body["fields"].(map[string]any)
	s, _ := fs[name].(string)
	return s
}

// call sends a request and checks the answer against the OpenAPI document:
// its status must be documented for the operation, a JSON body must match
// the status's schema, and a request body the API accepted must match the
// operation's request schema. body is marshalled to JSON unless it is a
// string (sent as is); contentType defaults to application/json.
func (f *fixture) call(method, path, token string, body any, contentType ...string) resp {
	f.t.Helper()
	var raw []byte
	switch b := body.(type) {
	case nil:
	case string:
		raw = []byte(b)
	default:
		raw, _ = json.Marshal(b)
	}
	req, _ := http.NewRequest(method, f.srv.URL+admin.Prefix+path, bytes.NewReader(raw))
	if body != nil {
		ct := "application/json"
		if len(contentType) > 0 {
			ct = contentType[0]
		}
		req.Header.Set("Content-Type", ct)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	hr, err := http.DefaultClient.Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	defer hr.Body.Close()
	out := resp{status: hr.StatusCode, header: hr.Header}
	out.raw, _ = io.ReadAll(hr.Body)
	if hr.Header.Get("Cache-Control") != "no-store" {
		f.t.Errorf("%s %s: Cache-Control %q", method, path, hr.Header.Get("Cache-Control"))
	}
	isJSON := strings.HasPrefix(hr.Header.Get("Content-Type"), "application/json")
	var decoded any
	if isJSON && len(out.raw) > 0 {
		if err := json.Unmarshal(out.raw, &decoded); err != nil {
			f.t.Fatalf("%s %s: answer is not JSON: %v %s", method, path, err, out.raw)
		}
		out.body, _ = decoded.(map[string]any)
	}
	key, op := f.doc.find(method, path)
	if op == nil {
		return out // an undocumented path: the caller checks 404/405
	}
	documented, schema := f.doc.responseSchema(op, out.status)
	if !documented {
		f.t.Errorf("%s answered %d, not documented: %s", key, out.status, out.raw)
	}
	if schema != nil && isJSON {
		for _, p := range f.doc.validate(schema, decoded, "response") {
			f.t.Errorf("%s %d: %s", key, out.status, p)
		}
	}
	if out.status < 300 && len(raw) > 0 {
		var sent any
		_ = json.Unmarshal(raw, &sent)
		for _, p := range f.doc.validate(f.doc.requestSchema(op), sent, "request") {
			f.t.Errorf("%s accepted a body the document refuses: %s", key, p)
		}
	}
	return out
}

// snapshot is everything the API can change, to check that a refused
// request changed nothing.
func (f *fixture) snapshot() string {
	f.t.Helper()
	ctx := f.t.Context()
	cl, err1 := f.store.ListClients(ctx)
	tk, err2 := f.store.ListAPITokens(ctx)
	gr, err3 := f.store.ListStaffGrants(ctx)
	ks, err4 := f.store.ListKeys(ctx)
	events := 0
	err5 := f.store.SearchAudit(ctx, storage.AuditQuery{}, func(storage.AuditEvent) error { events++; return nil })
	for _, err := range []error{err1, err2, err3, err4, err5} {
		if err != nil {
			f.t.Fatal(err)
		}
	}
	b, _ := json.Marshal([]any{cl, tk, gr, ks, events})
	return string(b)
}

// newClient registers a confidential client through the service.
func (f *fixture) newClient() storage.Client {
	f.t.Helper()
	c, _, err := f.svc.CreateClient(f.t.Context(), staff.CLI, clients.Spec{ID: f.uniq("rp"), RedirectURIs: []string{"https://rp.example.it/cb"}})
	if err != nil {
		f.t.Fatal(err)
	}
	return c
}

// clientSpecPublic is a public client's settings.
func clientSpecPublic(id string) clients.Spec {
	return clients.Spec{ID: id, AuthMethod: clients.AuthNone, RedirectURIs: []string{"http://127.0.0.1/cb"}}
}

// clientSpecConfidential is a confidential client of oidctest's relying party.
func clientSpecConfidential() clients.Spec {
	return clients.Spec{RedirectURIs: []string{"http://127.0.0.1:9/callback"}}
}
