package main

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"strings"
	"testing"

	"github.com/ponte-id/ponte/internal/config"
	"github.com/ponte-id/ponte/storage"
)

// TestClientCreateInsecureSkipPKCE: the PKCE exemption of a legacy
// confidential client is set only by its loudly named flag, is announced on
// stderr and in the output, and is refused for a public client.
func TestClientCreateInsecureSkipPKCE(t *testing.T) {
	setup(t)
	for _, tc := range []struct {
		name       string
		args       []string
		wantExempt bool
		wantErr    string
	}{
		{name: "default", args: []string{"--id", "rp-default", "--redirect-uri", "https://app.inps.it/cb"}},
		{name: "legacy confidential client", args: []string{"--id", "rp-legacy", "--redirect-uri", "https://app.inps.it/cb", "--insecure-skip-pkce"}, wantExempt: true},
		{name: "public client refused", args: []string{"--id", "rp-native", "--auth", "none", "--redirect-uri", "it.inps.app:/cb", "--insecure-skip-pkce"},
			wantErr: "a public client cannot be exempted from PKCE"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, errOut, err := ponte(t, append([]string{"client", "create"}, tc.args...)...)
			id := tc.args[1]
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) || out != "" {
					t.Fatalf("error %v, output %q; want %q and no output", err, out, tc.wantErr)
				}
				if _, err := storedClient(t, id); !errors.Is(err, storage.ErrNotFound) {
					t.Fatalf("a refused client was stored: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("create: %v\n%s", err, errOut)
			}
			var created struct {
				PKCEExempt bool `json:"pkce_exempt"`
			}
			if err := json.Unmarshal([]byte(out), &created); err != nil {
				t.Fatalf("create output %q: %v", out, err)
			}
			warned := strings.Contains(errOut, "WARNING") && strings.Contains(errOut, "--insecure-skip-pkce")
			if created.PKCEExempt != tc.wantExempt || warned != tc.wantExempt {
				t.Fatalf("output %q, stderr %q: want pkce_exempt and a warning = %v", out, errOut, tc.wantExempt)
			}
			c, err := storedClient(t, id)
			if err != nil {
				t.Fatal(err)
			}
			if c.PKCEExempt != tc.wantExempt {
				t.Fatalf("stored PKCEExempt = %v, want %v", c.PKCEExempt, tc.wantExempt)
			}
		})
	}
}

// storedClient reads a client from the database the commands use.
func storedClient(t *testing.T, id string) (storage.Client, error) {
	t.Helper()
	ctx := context.Background()
	cfg, err := config.Load("", os.Environ())
	if err != nil {
		t.Fatal(err)
	}
	a, err := openApp(ctx, cfg, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	return a.store.GetClient(ctx, id)
}
