package pin_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/ponte-id/ponte/idp"
	"github.com/ponte-id/ponte/idp/operators"
	"github.com/ponte-id/ponte/internal/ratelimit"
	"github.com/ponte-id/ponte/storage"
	"github.com/ponte-id/ponte/storage/storagetest"
)

// TestOperatorRoles: every procedure of the operator API is open to its role
// and refused (403, before anything is done) to the other; a token without an
// operator role is refused by the core (403), none at all is 401.
func TestOperatorRoles(t *testing.T) {
	f := newFixture(t, storagetest.SQLite(t), after2021)
	tokens := map[string][]string{
		"sede":    {idp.RoleOperatorSede},
		"cc":      {idp.RoleOperatorContactCenter},
		"auditor": nil,
	}
	check := func(_ context.Context, token string) (string, []string, bool, error) {
		roles, ok := tokens[token]
		return "op-" + token, roles, ok, nil
	}
	// Every case sends an unknown token: a limit above their count, so that
	// each is answered 401 (the limit has its own test, in idp/operators).
	srv := httptest.NewServer(operators.Require(nil, check, nil, ratelimit.Failures{Limit: 1000})(f.svc.OperatorHandler()))
	t.Cleanup(srv.Close)

	const cf = "RSSMRA80A01H501U"
	const (
		sede = 1 << iota
		cc
	)
	// A refused procedure does nothing: the contact center cannot issue at the sede.
	if code, _ := call(t, "POST", srv.URL+"/requests", "cc", map[string]any{"channel": "sede", "document": "CI AB1234567", "request": mario()}); code != http.StatusForbidden {
		t.Fatalf("contact center issuing at the sede: %d", code)
	}
	if _, err := f.store.GetPINAccount(t.Context(), cf); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("a refused issue left an account: %v", err)
	}
	cases := []struct {
		method, path string
		body         any
		open         int // the roles allowed
	}{
		{"POST", "/requests", map[string]any{"channel": "sede", "document": "CI AB1234567", "request": mario()}, sede},
		{"POST", "/requests", map[string]any{"channel": "contact_center", "request": mario()}, cc},
		{"POST", "/revocations", map[string]any{"fiscal_number": cf, "channel": "sede"}, sede},
		{"POST", "/revocations", map[string]any{"fiscal_number": cf, "channel": "contact_center"}, cc},
		{"POST", "/unlocks", map[string]any{"fiscal_number": cf, "channel": "sede"}, sede},
		{"POST", "/unlocks", map[string]any{"fiscal_number": cf, "channel": "contact_center"}, cc},
		{"GET", "/callbacks", nil, cc},
		{"POST", "/callbacks", map[string]any{"request_id": "nope", "confirmed": false}, cc},
		{"GET", "/conversions", nil, sede},
		{"GET", "/conversions/nope/form", nil, sede},
		{"POST", "/conversions/nope/review", map[string]any{"approve": false, "reason": "x"}, sede},
		{"GET", "/audit/" + cf, nil, sede | cc},
		{"GET", "/outbox/parked", nil, sede | cc},
		{"POST", "/outbox/nope/requeue", nil, sede | cc},
		{"GET", "/locks/" + cf, nil, sede | cc},
	}
	for _, c := range cases {
		for token, bit := range map[string]int{"sede": sede, "cc": cc} {
			t.Run(c.method+c.path+"/"+token, func(t *testing.T) {
				code, body := call(t, c.method, srv.URL+c.path, token, c.body)
				if c.open&bit != 0 && (code == http.StatusForbidden || code == http.StatusUnauthorized) {
					t.Fatalf("%s refused to its role: %d %s", token, code, body)
				}
				if c.open&bit == 0 && code != http.StatusForbidden {
					t.Fatalf("%s let through to another role: %d %s", token, code, body)
				}
			})
		}
		if code, _ := call(t, c.method, srv.URL+c.path, "auditor", c.body); code != http.StatusForbidden {
			t.Errorf("%s %s with a token without operator role: %d, want 403", c.method, c.path, code)
		}
		if code, _ := call(t, c.method, srv.URL+c.path, "unknown", c.body); code != http.StatusUnauthorized {
			t.Errorf("%s %s with an unknown token: %d, want 401", c.method, c.path, code)
		}
	}
}
