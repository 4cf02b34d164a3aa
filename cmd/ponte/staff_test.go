package main

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
)

const staffCF = "RSSMRA80A01H501U"

// TestStaffCommands: the first admin is bootstrapped with the command line;
// a bad codice fiscale or role is refused by name; the last admin keeps the
// role; every action is in the audit trail under "cli".
func TestStaffCommands(t *testing.T) {
	setup(t)
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"staff", "grant", "--cf", "RSSMRA80A01H501X", "--role", "admin"}, "fiscal_number: not a valid codice fiscale"},
		{[]string{"staff", "grant", "--cf", staffCF, "--role", "root"}, `role: unknown role "root"`},
		{[]string{"staff", "revoke", "--cf", staffCF, "--role", "auditor"}, "not found"},
		{[]string{"staff", "token", "create", "--name", "x", "--role", "root"}, `roles[0]: unknown role "root"`},
		{[]string{"staff", "token", "create", "--name", "x", "--role", "admin", "--ttl", "9000h"}, "ttl: must be between"},
		{[]string{"staff", "token", "revoke", "--id", "nope"}, "not found"},
		{[]string{"staff", "nope"}, `unknown subcommand "nope"`},
	} {
		if _, _, err := ponte(t, c.args...); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("ponte %s: %v, want %q", strings.Join(c.args, " "), err, c.want)
		}
	}
	if out := mustPonte(t, "staff", "grant", "--cf", strings.ToLower(staffCF), "--role", "admin"); !strings.Contains(out, staffCF+" now holds admin") {
		t.Fatalf("grant: %q", out)
	}
	if _, _, err := ponte(t, "staff", "grant", "--cf", staffCF, "--role", "admin"); err == nil {
		t.Fatal("a role granted twice")
	}
	if _, _, err := ponte(t, "staff", "revoke", "--cf", staffCF, "--role", "admin"); err == nil || !strings.Contains(err.Error(), "last admin") {
		t.Fatalf("last admin revoked: %v", err)
	}
	mustPonte(t, "staff", "grant", "--cf", staffCF, "--role", "auditor")
	mustPonte(t, "staff", "revoke", "--cf", staffCF, "--role", "auditor")
	if out := mustPonte(t, "staff", "list"); !strings.Contains(out, staffCF+"  admin") || strings.Contains(out, "auditor") {
		t.Fatalf("list:\n%s", out)
	}
	var tok struct{ ID, Token string }
	if err := json.Unmarshal([]byte(mustPonte(t, "staff", "token", "create", "--name", "ci", "--role", "admin")), &tok); err != nil || !strings.HasPrefix(tok.Token, "pt_"+tok.ID+"_") {
		t.Fatalf("token create: %+v %v", tok, err)
	}
	list := mustPonte(t, "staff", "token", "list")
	if !strings.Contains(list, tok.ID) || strings.Contains(list, tok.Token[len("pt_"+tok.ID+"_"):]) {
		t.Fatalf("token list shows the secret or misses the token:\n%s", list)
	}
	mustPonte(t, "staff", "token", "revoke", "--id", tok.ID)
	if _, _, err := ponte(t, "staff", "token", "revoke", "--id", tok.ID); err == nil {
		t.Fatal("a token revoked twice")
	}
}

// TestOperatorAPITokens: on a running `ponte serve`, API tokens issued with
// `ponte staff token create` call the PIN operator API with their roles
// beside the static bootstrap list; a token without an operator role is
// refused (403), a revoked or unknown one is 401.
func TestOperatorAPITokens(t *testing.T) {
	tokens := map[string]string{}
	n := startLiveNode(t, "http://127.0.0.1:8080", func(*app) {
		for _, role := range []string{"operator-sede", "operator-contact-center", "auditor", "revoked"} {
			r := role
			if role == "revoked" {
				r = "operator-sede"
			}
			var tok struct{ ID, Token string }
			if err := json.Unmarshal([]byte(mustPonte(t, "staff", "token", "create", "--name", role, "--role", r)), &tok); err != nil {
				t.Fatal(err)
			}
			tokens[role] = tok.Token
			if role == "revoked" {
				mustPonte(t, "staff", "token", "revoke", "--id", tok.ID)
			}
		}
	})
	for _, c := range []struct {
		token, path string
		want        int
	}{
		{tokens["operator-sede"], "/operator/pin/conversions", http.StatusOK},
		{tokens["operator-contact-center"], "/operator/pin/conversions", http.StatusForbidden},
		{tokens["operator-contact-center"], "/operator/pin/callbacks", http.StatusOK},
		{tokens["operator-sede"], "/operator/pin/callbacks", http.StatusForbidden},
		{tokens["auditor"], "/operator/pin/outbox/parked", http.StatusForbidden},
		{tokens["revoked"], "/operator/pin/conversions", http.StatusUnauthorized},
		{tokens["operator-sede"] + "x", "/operator/pin/conversions", http.StatusUnauthorized},
		{"pt_", "/operator/pin/conversions", http.StatusUnauthorized},
		{"operator-token", "/operator/pin/conversions", http.StatusOK},
		{"operator-token", "/operator/pin/callbacks", http.StatusOK},
	} {
		req, _ := http.NewRequest(http.MethodGet, n.base+c.path, nil)
		req.Header.Set("Authorization", "Bearer "+c.token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != c.want {
			t.Errorf("GET %s with %.12s…: %d, want %d", c.path, c.token, resp.StatusCode, c.want)
		}
	}
	if strings.Contains(n.logs.String(), tokens["operator-sede"]) {
		t.Fatal("a token reached the log")
	}
}

// TestAdminAPIServed: `ponte serve` mounts the admin API and its document;
// what the command line does is in the trail the API searches, under "cli".
func TestAdminAPIServed(t *testing.T) {
	var token string
	n := startLiveNode(t, "http://127.0.0.1:8080", func(*app) {
		var tok struct{ Token string }
		if err := json.Unmarshal([]byte(mustPonte(t, "staff", "token", "create", "--name", "ci", "--role", "admin")), &tok); err != nil {
			t.Fatal(err)
		}
		token = tok.Token
		mustPonte(t, "client", "create", "--id", "cassetto", "--redirect-uri", "https://cassetto.inps.it/cb")
		mustPonte(t, "client", "rotate-secret", "--id", "cassetto", "--overlap", "1h")
		mustPonte(t, "keys", "rotate")
	})
	get := func(path, token string) (int, string) {
		req, _ := http.NewRequest(http.MethodGet, n.base+path, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := get("/admin/api/v1/openapi.yaml", ""); code != 200 || !strings.HasPrefix(body, "openapi: 3.1.0") {
		t.Fatalf("openapi.yaml: %d", code)
	}
	if code, _ := get("/admin/api/v1/clients", ""); code != 401 {
		t.Fatalf("clients without a token: %d", code)
	}
	if code, body := get("/admin/api/v1/clients/cassetto", token); code != 200 || !strings.Contains(body, `"previous_secret_expires_at"`) {
		t.Fatalf("client: %d %s", code, body)
	}
	code, body := get("/admin/api/v1/audit?actor=cli", token)
	for _, want := range []string{"token.created", "client.created", "client.secret_rotated", "key.rotated"} {
		if code != 200 || !strings.Contains(body, `"action":"`+want+`"`) {
			t.Errorf("audit of the command line lacks %s: %d %s", want, code, body)
		}
	}
}
