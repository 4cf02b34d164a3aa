package provider_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/ponte-id/ponte/idp"
	"github.com/ponte-id/ponte/idp/clients"
	"github.com/ponte-id/ponte/storage"
	"github.com/ponte-id/ponte/storage/sqlstore"
	"github.com/ponte-id/ponte/storage/storagetest"
)

// TestClientChangesReachEveryNode: two nodes on one database keep the client
// in memory, and a change made elsewhere (here through a third store, as
// `ponte client` does) holds on both within the store's bound
// (sqlstore.DefaultClientsVersionTTL): a rotated secret is refused and the
// new one accepted, a withdrawn redirect URI is refused, and a deleted client
// is unknown.
func TestClientChangesReachEveryNode(t *testing.T) {
	dsns := map[string]func(testing.TB) string{
		"sqlite":   func(t testing.TB) string { return filepath.Join(t.TempDir(), "ponte.db") },
		"postgres": storagetest.PostgresDSN,
	}
	for name, dsn := range dsns {
		t.Run(name, func(t *testing.T) {
			d := dsn(t)
			master := make([]byte, 32)
			_, _ = rand.Read(master)
			a := newEnvWithKey(t, storagetest.OpenMigrated(t, d), master)
			b := newEnvWithKey(t, storagetest.OpenMigrated(t, d), master)
			cli := newEnvWithKey(t, storagetest.OpenMigrated(t, d), master) // its registry is the CLI
			ra := a.NewRP(clients.Spec{})
			rb := *ra
			rb.Env = b
			rb.Conf.Endpoint.TokenURL = b.Issuer + "/token"

			redeem := func(r oauth2.Config, issuer string) error {
				t.Helper()
				verifier := oauth2.GenerateVerifier()
				loc := login(newBrowser(t), issuer, r.AuthCodeURL(randomString(), oauth2.S256ChallengeOption(verifier)), citizenCF, idp.LevelConsultazione)
				_, err := r.Exchange(ra.Ctx(), loc.Query().Get("code"), oauth2.VerifierOption(verifier))
				return err
			}
			// Both nodes have read (and keep) the client.
			if err := redeem(ra.Conf, a.Issuer); err != nil {
				t.Fatalf("node A: %v", err)
			}
			if err := redeem(rb.Conf, a.Issuer); err != nil {
				t.Fatalf("node B: %v", err)
			}

			secret, err := cli.Registry.RotateSecret(context.Background(), ra.ID, 0)
			if err != nil {
				t.Fatal(err)
			}
			for _, node := range []struct {
				name string
				conf oauth2.Config
			}{{"A", ra.Conf}, {"B", rb.Conf}} {
				eventually(t, func() error {
					if err := redeem(node.conf, a.Issuer); !isOAuthError(err, "invalid_client") {
						return fmt.Errorf("node %s, the old secret after a rotation: %v, want invalid_client", node.name, err)
					}
					return nil
				})
				node.conf.ClientSecret = secret
				if err := redeem(node.conf, a.Issuer); err != nil {
					t.Fatalf("node %s, the new secret: %v", node.name, err)
				}
			}

			authorize := func(issuer string) int {
				t.Helper()
				resp, _ := newBrowser(t).Get(issuer + "/authorize?" + "response_type=code&client_id=" + ra.ID +
					"&redirect_uri=" + redirectURI + "&scope=openid&state=" + randomString() + "&code_challenge=" + s256(randomString()) + "&code_challenge_method=S256")
				return resp.StatusCode
			}
			if err := cli.Store.UpdateClient(context.Background(), ra.ID, func(c storage.Client) (storage.Client, error) {
				c.RedirectURIs = []string{"http://127.0.0.1:9/elsewhere"}
				return c, nil
			}); err != nil {
				t.Fatal(err)
			}
			for _, e := range []*env{a, b} {
				eventually(t, func() error {
					if got := authorize(e.Issuer); got != http.StatusBadRequest {
						return fmt.Errorf("a withdrawn redirect URI at %s: %d, want 400", e.Issuer, got)
					}
					return nil
				})
			}
			if err := cli.Store.DeleteClient(context.Background(), ra.ID); err != nil {
				t.Fatal(err)
			}
			for _, e := range []*env{a, b} {
				eventually(t, func() error {
					if got := authorize(e.Issuer); got != http.StatusUnauthorized && got != http.StatusBadRequest {
						return fmt.Errorf("a deleted client at %s: %d, want it refused", e.Issuer, got)
					}
					return nil
				})
			}
		})
	}
}

// eventually retries check until it passes, for the client cache's bound
// and a second more for a slow machine.
func eventually(t *testing.T, check func() error) {
	t.Helper()
	deadline := time.Now().Add(sqlstore.DefaultClientsVersionTTL + time.Second)
	for {
		err := check()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
