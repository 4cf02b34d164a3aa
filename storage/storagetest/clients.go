package storagetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ponte-id/ponte/storage"
)

func sampleClient(id string) storage.Client {
	return storage.Client{
		ID:                               id,
		SecretHash:                       []byte{0x00, 0x01, 0xfe, 0xff},
		PreviousSecretHash:               []byte{0x02, 0x03},
		PreviousSecretExpiresAt:          base.Add(time.Hour),
		Name:                             "Comune di " + id,
		RedirectURIs:                     []string{"https://rp.example/cb", "https://rp.example/cb2?x=1&y=è"},
		PostLogoutRedirectURIs:           []string{"https://rp.example/bye"},
		BackchannelLogoutURI:             "https://rp.example/backchannel?x=1",
		BackchannelLogoutSessionRequired: true,
		GrantTypes:                       []string{"authorization_code", "refresh_token"},
		ResponseTypes:                    []string{"code"},
		Scopes:                           []string{"openid", "profile", "offline_access"},
		Public:                           false,
		TokenEndpointAuthMethod:          "private_key_jwt",
		JWKS:                             []byte(`{"keys":[]}`),
		JWKSURI:                          "https://rp.example/jwks.json",
		IDTokenSigningAlg:                "ES256",
		SectorIdentifier:                 "https://rp.example/sector.json",
		PKCEExempt:                       true,
		AccessTokenTTL:                   5 * time.Minute,
		RefreshTokenTTL:                  30*24*time.Hour + 1500*time.Millisecond,
		IDTokenTTL:                       time.Hour,
		CreatedAt:                        base,
		UpdatedAt:                        base.Add(time.Second),
	}
}

var errAbort = errors.New("storagetest: abort")

var clientTests = []test{
	{"CreateGet", func(t *testing.T, s storage.Store) {
		ctx := t.Context()
		want := sampleClient("rp1")
		must(t, s.CreateClient(ctx, want))
		got, err := s.GetClient(ctx, "rp1")
		must(t, err)
		same(t, "GetClient", got, want)
		if got.CreatedAt.Location() != time.UTC {
			t.Errorf("CreatedAt location = %v, want UTC", got.CreatedAt.Location())
		}
	}},
	{"CreateGetMinimal", func(t *testing.T, s storage.Store) {
		ctx := t.Context()
		want := storage.Client{ID: "public", Public: true, TokenEndpointAuthMethod: "none",
			RedirectURIs: []string{}, CreatedAt: base, UpdatedAt: base}
		must(t, s.CreateClient(ctx, want))
		got, err := s.GetClient(ctx, "public")
		must(t, err)
		same(t, "GetClient", got, want)
		if len(got.Scopes) != 0 || len(got.RedirectURIs) != 0 || len(got.SecretHash) != 0 {
			t.Errorf("empty fields came back non-empty: %+v", got)
		}
	}},
	{"CreateDuplicate", func(t *testing.T, s storage.Store) {
		ctx := t.Context()
		must(t, s.CreateClient(ctx, sampleClient("rp1")))
		wantErr(t, "CreateClient twice", s.CreateClient(ctx, sampleClient("rp1")), storage.ErrConflict)
	}},
	{"GetMissing", func(t *testing.T, s storage.Store) {
		_, err := s.GetClient(t.Context(), "nope")
		wantErr(t, "GetClient", err, storage.ErrNotFound)
	}},
	{"List", func(t *testing.T, s storage.Store) {
		ctx := t.Context()
		got, err := s.ListClients(ctx)
		must(t, err)
		if len(got) != 0 {
			t.Fatalf("ListClients on empty store = %d clients", len(got))
		}
		want := []storage.Client{sampleClient("a"), sampleClient("b"), sampleClient("c")}
		for _, i := range []int{2, 0, 1} {
			must(t, s.CreateClient(ctx, want[i]))
		}
		got, err = s.ListClients(ctx)
		must(t, err)
		slices.SortFunc(got, func(x, y storage.Client) int { return strings.Compare(x.ID, y.ID) })
		same(t, "ListClients", got, want)
	}},
	{"Update", func(t *testing.T, s storage.Store) {
		ctx := t.Context()
		orig := sampleClient("rp1")
		must(t, s.CreateClient(ctx, orig))
		later := base.Add(time.Hour)
		must(t, s.UpdateClient(ctx, "rp1", func(c storage.Client) (storage.Client, error) {
			same(t, "fn argument", c, orig)
			c.Name = "Renamed"
			c.RedirectURIs = append(c.RedirectURIs, "https://rp.example/new")
			c.Scopes = nil
			c.AccessTokenTTL = 7 * time.Second
			c.Public = true
			c.UpdatedAt = later
			return c, nil
		}))
		got, err := s.GetClient(ctx, "rp1")
		must(t, err)
		want := orig
		want.Name = "Renamed"
		want.RedirectURIs = append(slices.Clone(orig.RedirectURIs), "https://rp.example/new")
		want.Scopes = nil
		want.AccessTokenTTL = 7 * time.Second
		want.Public = true
		want.UpdatedAt = later
		same(t, "after UpdateClient", got, want)
	}},
	{"PKCEExempt", func(t *testing.T, s storage.Store) {
		// The exemption survives a round trip and an update both ways, and a
		// client stored without it (every client before migration 0005) is not exempt.
		ctx := t.Context()
		must(t, s.CreateClient(ctx, storage.Client{ID: "plain", TokenEndpointAuthMethod: "client_secret_basic"}))
		got, err := s.GetClient(ctx, "plain")
		must(t, err)
		if got.PKCEExempt {
			t.Fatal("a client created without PKCEExempt reads back exempt")
		}
		for _, want := range []bool{true, false} {
			must(t, s.UpdateClient(ctx, "plain", func(c storage.Client) (storage.Client, error) {
				c.PKCEExempt = want
				return c, nil
			}))
			got, err := s.GetClient(ctx, "plain")
			must(t, err)
			if got.PKCEExempt != want {
				t.Fatalf("after UpdateClient(PKCEExempt=%v): %v", want, got.PKCEExempt)
			}
		}
		list, err := s.ListClients(ctx)
		must(t, err)
		if len(list) != 1 || list[0].PKCEExempt {
			t.Fatalf("ListClients: %+v", list)
		}
	}},
	{"UpdateFnError", func(t *testing.T, s storage.Store) {
		ctx := t.Context()
		orig := sampleClient("rp1")
		must(t, s.CreateClient(ctx, orig))
		err := s.UpdateClient(ctx, "rp1", func(c storage.Client) (storage.Client, error) {
			c.Name = "changed"
			return c, fmt.Errorf("wrapped: %w", errAbort)
		})
		wantErr(t, "UpdateClient", err, errAbort)
		got, err := s.GetClient(ctx, "rp1")
		must(t, err)
		same(t, "after aborted update", got, orig)
	}},
	{"UpdateMissing", func(t *testing.T, s storage.Store) {
		called := false
		err := s.UpdateClient(t.Context(), "nope", func(c storage.Client) (storage.Client, error) {
			called = true
			return c, nil
		})
		wantErr(t, "UpdateClient", err, storage.ErrNotFound)
		if called {
			t.Error("fn called for a missing client")
		}
	}},
	{"UpdateConcurrent", func(t *testing.T, s storage.Store) {
		ctx := t.Context()
		c := sampleClient("rp1")
		c.Scopes = nil
		must(t, s.CreateClient(ctx, c))
		const n = 10
		errs := race(n, func(i int) error {
			return s.UpdateClient(ctx, "rp1", func(c storage.Client) (storage.Client, error) {
				c.Scopes = append(c.Scopes, id("scope", i))
				return c, nil
			})
		})
		noErrors(t, "UpdateClient", errs)
		got, err := s.GetClient(ctx, "rp1")
		must(t, err)
		if len(got.Scopes) != n {
			t.Fatalf("after %d concurrent appends: %d scopes %v (lost updates)", n, len(got.Scopes), got.Scopes)
		}
	}},
	{"Delete", func(t *testing.T, s storage.Store) {
		ctx := t.Context()
		must(t, s.CreateClient(ctx, sampleClient("rp1")))
		must(t, s.CreateClient(ctx, sampleClient("rp2")))
		must(t, s.DeleteClient(ctx, "rp1"))
		_, err := s.GetClient(ctx, "rp1")
		wantErr(t, "GetClient after delete", err, storage.ErrNotFound)
		wantErr(t, "DeleteClient again", s.DeleteClient(ctx, "rp1"), storage.ErrNotFound)
		_, err = s.GetClient(ctx, "rp2")
		must(t, err)
	}},
	{"VersionMoves", func(t *testing.T, s storage.Store) {
		ctx := t.Context()
		version := func() int64 {
			t.Helper()
			v, err := s.ClientsVersion(ctx)
			must(t, err)
			return v
		}
		moved := func(what string, before int64) int64 {
			t.Helper()
			v := version()
			if v == before {
				t.Fatalf("ClientsVersion did not move after %s", what)
			}
			return v
		}
		v := version()
		if again := version(); again != v {
			t.Fatalf("ClientsVersion moved from %d to %d with no change", v, again)
		}
		must(t, s.CreateClient(ctx, sampleClient("rp1")))
		v = moved("CreateClient", v)
		_, err := s.GetClient(ctx, "rp1")
		must(t, err)
		_, err = s.ListClients(ctx)
		must(t, err)
		if again := version(); again != v {
			t.Fatalf("ClientsVersion moved after reads")
		}
		must(t, s.UpdateClient(ctx, "rp1", func(c storage.Client) (storage.Client, error) {
			c.RedirectURIs = []string{"https://rp.example/other"}
			return c, nil
		}))
		v = moved("UpdateClient", v)
		err = s.UpdateClient(ctx, "rp1", func(c storage.Client) (storage.Client, error) { return c, errAbort })
		wantErr(t, "UpdateClient", err, errAbort)
		if again := version(); again != v {
			t.Fatalf("ClientsVersion moved after an aborted update")
		}
		must(t, s.DeleteClient(ctx, "rp1"))
		moved("DeleteClient", v)
	}},
	{"VersionInTransaction", func(t *testing.T, s storage.Store) {
		ctx := t.Context()
		must(t, s.CreateClient(ctx, sampleClient("rp1")))
		before, err := s.ClientsVersion(ctx)
		must(t, err)
		for _, commit := range []bool{false, true} {
			tx, err := s.BeginTx(ctx)
			must(t, err)
			must(t, s.UpdateClient(tx, "rp1", func(c storage.Client) (storage.Client, error) {
				c.Name = fmt.Sprint("commit ", commit)
				return c, nil
			}))
			if inside, err := s.ClientsVersion(tx); err != nil || inside == before {
				t.Fatalf("inside the transaction, ClientsVersion = %d, %v; want it moved from %d", inside, err, before)
			}
			if outside, err := s.ClientsVersion(ctx); err != nil || outside != before {
				t.Fatalf("outside an open transaction, ClientsVersion = %d, %v; want %d", outside, err, before)
			}
			if !commit {
				must(t, s.Rollback(tx))
				if after, err := s.ClientsVersion(ctx); err != nil || after != before {
					t.Fatalf("after a rollback, ClientsVersion = %d, %v; want %d", after, err, before)
				}
				continue
			}
			must(t, s.Commit(tx))
			if after, err := s.ClientsVersion(ctx); err != nil || after == before {
				t.Fatalf("after the commit, ClientsVersion = %d, %v; want it moved from %d", after, err, before)
			}
		}
	}},
	{"CanceledContext", func(t *testing.T, s storage.Store) {
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		if _, err := s.GetClient(ctx, "rp1"); err == nil || errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("GetClient with a canceled context: %v", err)
		}
	}},
}
