package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ponte-id/ponte/idp/clients"
	"github.com/ponte-id/ponte/idp/keys"
	"github.com/ponte-id/ponte/internal/config"
	"github.com/ponte-id/ponte/internal/datakey"
	"github.com/ponte-id/ponte/internal/seal"
	"github.com/ponte-id/ponte/loadtest/flow"
	"github.com/ponte-id/ponte/storage"
	"github.com/ponte-id/ponte/storage/sqlstore"
)

// newMasterKeyB64 is a second master key, 32 bytes in base64.
var newMasterKeyB64 = base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{0xa5}, 32))

// fingerprintOf is the fingerprint of a base64 master key.
func fingerprintOf(t *testing.T, b64 string) string {
	t.Helper()
	k, err := seal.ParseMasterKey(b64)
	if err != nil {
		t.Fatal(err)
	}
	fp, err := datakey.Fingerprint(k)
	if err != nil {
		t.Fatal(err)
	}
	return fp
}

// refusedServe runs `ponte serve` with master key b64 and returns its exit
// status and stderr; it must stop on its own (refusing), not serve.
func refusedServe(t *testing.T, w *crashWorld, b64 string) (int, string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "serve")
	cmd.Env = append(os.Environ(), envRunMain+"=1", "PONTE_ADDR="+w.addr, "PONTE_ISSUER=http://"+w.addr, "PONTE_MASTER_KEY="+b64)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	done := make(chan error, 1)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		var exit *exec.ExitError
		if !errors.As(err, &exit) {
			t.Fatalf("ponte serve with a refused master key: %v (it should exit non-zero)", err)
		}
		return exit.ExitCode(), stderr.String()
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatalf("ponte serve with a refused master key is still running:\n%s", stderr.String())
	}
	return 0, ""
}

// stop ends a node with SIGTERM.
func stop(cmd *exec.Cmd) {
	_ = cmd.Process.Signal(syscall.SIGTERM)
	_ = cmd.Wait()
}

// TestMasterKeyRotation rotates the master key of a live deployment through
// the commands: what was issued before (client secret, code, refresh token,
// access token, subject) keeps working on nodes restarted with the new key;
// a node with the old key works until the retirement, then refuses, as does
// a node with an unknown key.
func TestMasterKeyRotation(t *testing.T) {
	for _, backend := range []string{"sqlite", "postgres"} {
		t.Run(backend, func(t *testing.T) { masterKeyRotation(t, backend) })
	}
}

func masterKeyRotation(t *testing.T, backend string) {
	w := newCrashWorld(t, backend, 1)
	ctx := context.Background()
	// A client allowed refresh tokens, its secret hashed before the rotation.
	out := mustPonte(t, "client", "create", "--name", "offline", "--redirect-uri", w.redirect, "--scopes", "openid profile fiscal_number offline_access")
	var c struct {
		ID     string `json:"client_id"`
		Secret string `json:"client_secret"`
	}
	if err := json.Unmarshal([]byte(out), &c); err != nil {
		t.Fatalf("client create: %v %s", err, out)
	}
	w.id, w.sec = c.ID, c.Secret
	citizen := w.citizens[0]
	oldFP, newFP := fingerprintOf(t, testMasterKey), fingerprintOf(t, newMasterKeyB64)
	login := func(rp *flow.RP) flow.Login {
		t.Helper()
		l, err := rp.PINLogin(ctx, flow.NewBrowser(rp), citizen.cf, citizen.pin)
		if err != nil {
			t.Fatalf("login: %v\n%s", err, w.logs.String())
		}
		return l
	}
	offline := func() *flow.RP { return w.rp(ctx).WithScopes(append(flow.Scopes, "offline_access")...) }

	// Before: a code kept unredeemed, tokens with a refresh token.
	node := w.start()
	rp := offline()
	pending := login(rp)
	before, err := rp.Redeem(ctx, login(rp))
	if err != nil || before.Refresh == "" || before.FiscalNumber != citizen.cf {
		t.Fatalf("tokens before the rotation: %+v, %v", before, err)
	}
	stop(node)

	// The data key wrapped under the new key too.
	t.Setenv(envNewMasterKey, newMasterKeyB64)
	out = mustPonte(t, "keys", "rotate-master")
	if !strings.Contains(out, "wrapped under master key "+newFP+" too (and still under "+oldFP+")") {
		t.Fatalf("rotate-master: %q", out)
	}
	if out := mustPonte(t, "keys", "rotate-master"); !strings.Contains(out, "master key "+newFP+" already wraps the data key") {
		t.Errorf("rotate-master again: %q", out)
	}
	t.Setenv(envNewMasterKey, "")
	list := mustPonte(t, "keys", "list")
	for _, want := range []string{`(?m)^` + oldFP + ` +[0-9a-f]{16} +\S+ +yes$`, `(?m)^` + newFP + ` +[0-9a-f]{16} +\S+ +-$`} {
		if !regexp.MustCompile(want).MatchString(list) {
			t.Errorf("keys list lacks %s:\n%s", want, list)
		}
	}

	// A node still on the old key serves during the rotation.
	node = w.start()
	if _, err := offline().Redeem(ctx, login(offline())); err != nil {
		t.Errorf("a login on the node with the old key during the rotation: %v", err)
	}
	stop(node)

	// The node restarted with the new key: everything issued before works.
	node = w.start("PONTE_MASTER_KEY=" + newMasterKeyB64)
	rp = offline()
	redeemed, err := rp.Redeem(ctx, pending)
	if err != nil || redeemed.FiscalNumber != citizen.cf || redeemed.Subject != before.Subject {
		t.Errorf("the code issued before the rotation, redeemed after it: %+v, %v (subject before %s)", redeemed, err, before.Subject)
	}
	if sub, cf, err := rp.UserInfo(ctx, before.Access); err != nil || sub != before.Subject || cf != citizen.cf {
		t.Errorf("userinfo with the access token issued before the rotation: %q %q %v", sub, cf, err)
	}
	refreshed, err := rp.Refresh(ctx, before.Refresh)
	if err != nil || refreshed.Access == "" {
		t.Errorf("the refresh token issued before the rotation: %+v, %v", refreshed, err)
	}
	if after, err := rp.Redeem(ctx, login(rp)); err != nil || after.Subject != before.Subject {
		t.Errorf("a new login after the rotation: %+v, %v; subject before %s", after, err, before.Subject)
	}
	stop(node)

	// Retired: only the new key opens the data key.
	t.Setenv("PONTE_MASTER_KEY", newMasterKeyB64)
	if out := mustPonte(t, "keys", "retire-master"); !strings.Contains(out, "retired master key "+oldFP) {
		t.Fatalf("retire-master: %q", out)
	}
	if out := mustPonte(t, "keys", "retire-master"); !strings.Contains(out, "only master key "+newFP+" wraps the data key: nothing to retire") {
		t.Errorf("retire-master again: %q", out)
	}
	unknown := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{0x33}, 32))
	for _, tc := range []struct{ name, key, fp string }{{"old key", testMasterKey, oldFP}, {"unknown key", unknown, fingerprintOf(t, unknown)}} {
		code, stderr := refusedServe(t, w, tc.key)
		if code != exitKeyMismatch || !strings.Contains(stderr, "refusing to run with this master key") ||
			!strings.Contains(stderr, "this master key is "+tc.fp+", the data key is wrapped under "+newFP+" only") {
			t.Errorf("serve with the %s: exit %d, stderr %q", tc.name, code, stderr)
		}
	}
	node = w.start("PONTE_MASTER_KEY=" + newMasterKeyB64)
	if _, err := offline().Refresh(ctx, refreshed.Refresh); err != nil {
		t.Errorf("the refreshed token after the retirement: %v", err)
	}
	stop(node)

	// Both steps are in the audit trail.
	store, err := sqlstore.Open(ctx, w.db, sqlstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	for _, want := range []struct{ action, target string }{{"master_key.added", "master-key:" + newFP}, {"master_key.retired", "master-key:" + oldFP}} {
		var got []storage.AuditEvent
		err := store.SearchAudit(ctx, storage.AuditQuery{Action: want.action}, func(e storage.AuditEvent) error { got = append(got, e); return nil })
		if err != nil || len(got) != 1 || got[0].Target != want.target || got[0].Operator == "" {
			t.Errorf("audit %s: %+v, %v; want one event on %s", want.action, got, err, want.target)
		}
	}
}

// TestMasterKeyCommandErrors: each refusal says what is wrong, with its exit
// status, and changes nothing.
func TestMasterKeyCommandErrors(t *testing.T) {
	setup(t)
	mustPonte(t, "keys", "list") // the first start: the data key wrapped under testMasterKey
	dir := t.TempDir()
	goodFile, looseFile := filepath.Join(dir, "new.key"), filepath.Join(dir, "loose.key")
	if err := os.WriteFile(goodFile, []byte(newMasterKeyB64+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(looseFile, []byte(newMasterKeyB64+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	unknown := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{0x33}, 32))
	cases := []struct {
		name     string
		env      map[string]string
		args     []string
		want     string
		wantCode int // 0: the default (2)
	}{
		{"no new key", nil, []string{"rotate-master"}, "no new master key: set PONTE_NEW_MASTER_KEY or pass --new-key-file", 0},
		{"new key twice", map[string]string{envNewMasterKey: newMasterKeyB64}, []string{"rotate-master", "--new-key-file", goodFile}, "given twice", 0},
		{"new key equal to the current", map[string]string{envNewMasterKey: testMasterKey}, []string{"rotate-master"}, "the new master key is the current one", 0},
		{"new key not base64", map[string]string{envNewMasterKey: "not-a-key!"}, []string{"rotate-master"}, "PONTE_NEW_MASTER_KEY: master key is not valid base64", 0},
		{"new key file readable by others", nil, []string{"rotate-master", "--new-key-file", looseFile}, "chmod 600", 0},
		{"new key file missing", nil, []string{"rotate-master", "--new-key-file", filepath.Join(dir, "absent.key")}, "absent.key", 0},
		{"rotate with an unknown current key", map[string]string{"PONTE_MASTER_KEY": unknown, envNewMasterKey: newMasterKeyB64}, []string{"rotate-master"}, "refusing to run with this master key", exitKeyMismatch},
		{"retire with an unknown key", map[string]string{"PONTE_MASTER_KEY": unknown}, []string{"retire-master"}, "refusing to run with this master key", exitKeyMismatch},
		{"list with an unknown key", map[string]string{"PONTE_MASTER_KEY": unknown}, []string{"list"}, "refusing to run with this master key", exitKeyMismatch},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			_, _, err := ponte(t, append([]string{"keys"}, tc.args...)...)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
			code := 2
			var coded interface{ ExitCode() int }
			if errors.As(err, &coded) {
				code = coded.ExitCode()
			}
			if want := max(tc.wantCode, 2); code != want {
				t.Errorf("exit %d, want %d", code, want)
			}
			for _, secret := range []string{newMasterKeyB64, testMasterKey, unknown} {
				if strings.Contains(err.Error(), secret) {
					t.Errorf("the error echoes a master key: %v", err)
				}
			}
		})
	}
	t.Setenv(envNewMasterKey, "")
	list := mustPonte(t, "keys", "list")
	if !strings.Contains(list, fingerprintOf(t, testMasterKey)+" ") || strings.Contains(list, fingerprintOf(t, newMasterKeyB64)) {
		t.Errorf("the refusals changed the wrappings:\n%s", list)
	}
}

// TestMasterKeyUpgrade: a database written before data keys (everything
// sealed and derived under the master key itself) keeps working: its data
// key is its master key. A new database gets a random data key.
func TestMasterKeyUpgrade(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name            string
		legacy          bool
		masterIsDataKey bool
	}{{"database of the release before", true, true}, {"new database", false, false}} {
		t.Run(tc.name, func(t *testing.T) {
			db := setup(t)
			master, _ := seal.ParseMasterKey(testMasterKey)
			legacyBox, _ := seal.New(master)
			var id, secret string
			if tc.legacy {
				id, secret = legacyDeployment(t, db, legacyBox)
			}
			cfg, err := config.Load("", os.Environ())
			if err != nil {
				t.Fatal(err)
			}
			a, err := openApp(ctx, cfg, io.Discard)
			if err != nil {
				t.Fatal(err)
			}
			defer a.Close()
			if got := bytes.Equal(a.box.Derive("pairwise", 32), legacyBox.Derive("pairwise", 32)); got != tc.masterIsDataKey {
				t.Errorf("the data key is the master key: %v, want %v", got, tc.masterIsDataKey)
			}
			if !tc.legacy {
				return
			}
			if err := a.keys.Load(ctx); err != nil {
				t.Errorf("the signing keys sealed before the upgrade: %v", err)
			}
			checkSecret(t, ctx, id, secret, true)
		})
	}
}

// legacyDeployment writes what the release before data keys wrote with the
// master key's box: a sealed signing key and a client whose secret is hashed
// under a key derived from the master key; it returns the client's ID and secret.
func legacyDeployment(t *testing.T, db string, box *seal.Box) (string, string) {
	ctx := context.Background()
	store, err := sqlstore.Open(ctx, db, sqlstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	if _, err := store.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	km, err := keys.New(store, box, keys.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := km.EnsureKeys(ctx, keys.ES256); err != nil {
		t.Fatal(err)
	}
	hasher, err := clients.NewHasher(box.Derive("client-secret", 32))
	if err != nil {
		t.Fatal(err)
	}
	c, secret, err := clients.NewRegistry(store, hasher, nil).Create(ctx, clients.Spec{Name: "legacy", RedirectURIs: []string{"https://rp.example/cb"}})
	if err != nil {
		t.Fatal(err)
	}
	return c.ID, secret
}
