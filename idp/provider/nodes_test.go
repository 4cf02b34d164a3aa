package provider_test

import (
	"context"
	"crypto/rand"
	"sync"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/ponte-id/ponte/idp"
	"github.com/ponte-id/ponte/idp/clients"
	"github.com/ponte-id/ponte/idp/provider"
	"github.com/ponte-id/ponte/storage"
	"github.com/ponte-id/ponte/storage/storagetest"
)

// TestConcurrentCodeRedemption: of several simultaneous redemptions of one
// code, exactly one gets tokens (the invalidation is atomic); every other one
// is a second use of the code, answered invalid_grant (never a 500), and the
// tokens the code issued are revoked (RFC 6749 §4.1.2), as for a code reused
// after its redemption.
func TestConcurrentCodeRedemption(t *testing.T) {
	backends(t, func(t *testing.T, store storage.Store) {
		e := newEnv(t, store)
		r := e.NewRP(clients.Spec{})
		verifier := oauth2.GenerateVerifier()
		loc := login(newBrowser(t), e.Issuer, r.Conf.AuthCodeURL(randomString(), oauth2.S256ChallengeOption(verifier)), citizenCF, idp.LevelConsultazione)
		code := loc.Query().Get("code")
		const n = 6
		var (
			mu     sync.Mutex
			tokens []*oauth2.Token
			errs   []error
			wg     sync.WaitGroup
		)
		start := make(chan struct{})
		for range n {
			wg.Go(func() {
				<-start
				tok, err := r.Conf.Exchange(r.Ctx(), code, oauth2.VerifierOption(verifier))
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					errs = append(errs, err)
					return
				}
				tokens = append(tokens, tok)
			})
		}
		close(start)
		wg.Wait()
		if len(tokens) != 1 {
			t.Fatalf("%d of %d concurrent redemptions succeeded, want exactly 1", len(tokens), n)
		}
		for _, err := range errs {
			if !isOAuthError(err, "invalid_grant") {
				t.Errorf("a losing redemption: %v, want invalid_grant", err)
			}
		}
		if introspect(t, r, tokens[0].AccessToken) {
			t.Fatal("the tokens of a code redeemed twice are still active")
		}
	})
}

// TestCodeExpiry: a code redeemed after its lifetime is refused.
func TestCodeExpiry(t *testing.T) {
	backends(t, func(t *testing.T, store storage.Store) {
		e := newEnv(t, store, func(c *provider.Config) { c.AuthorizeCodeTTL = time.Second })
		r := e.NewRP(clients.Spec{})
		verifier := oauth2.GenerateVerifier()
		loc := login(newBrowser(t), e.Issuer, r.Conf.AuthCodeURL(randomString(), oauth2.S256ChallengeOption(verifier)), citizenCF, idp.LevelConsultazione)
		time.Sleep(1100 * time.Millisecond) // fosite reads the wall clock for code expiry
		if _, err := r.Conf.Exchange(r.Ctx(), loc.Query().Get("code"), oauth2.VerifierOption(verifier)); !isOAuthError(err, "invalid_grant") {
			t.Fatalf("expired code: %v, want invalid_grant", err)
		}
	})
}

// TestTwoNodes runs two providers on one PostgreSQL database: a code issued by
// node A is redeemed at node B, and a refresh token rotated at A is refused as
// reused at B, which revokes the family for both.
func TestTwoNodes(t *testing.T) {
	dsn := storagetest.PostgresDSN(t)
	master := make([]byte, 32) // the nodes of one provider share the master key
	_, _ = rand.Read(master)
	a := newEnvWithKey(t, storagetest.OpenMigrated(t, dsn), master)
	b := newEnvWithKey(t, storagetest.OpenMigrated(t, dsn), master)
	ra := a.NewRP(clients.Spec{})
	rb := *ra
	rb.Env = b
	rb.Conf.Endpoint.TokenURL = b.Issuer + "/token"

	verifier := oauth2.GenerateVerifier()
	loc := login(newBrowser(t), a.Issuer, ra.Conf.AuthCodeURL(randomString(), oauth2.S256ChallengeOption(verifier)), citizenCF, idp.LevelConsultazione)
	tok, err := rb.Conf.Exchange(rb.Ctx(), loc.Query().Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatalf("code from A redeemed at B: %v", err)
	}
	// The ID token B signed verifies against A's JWKS: one provider.
	if _, err := ra.Verifier.Verify(ra.Ctx(), tok.Extra("id_token").(string)); err != nil {
		t.Fatalf("B's ID token against A's keys: %v", err)
	}
	rotated, err := ra.Conf.TokenSource(ra.Ctx(), &oauth2.Token{RefreshToken: tok.RefreshToken}).Token()
	if err != nil {
		t.Fatalf("refresh at A: %v", err)
	}
	if _, err := rb.Conf.TokenSource(rb.Ctx(), &oauth2.Token{RefreshToken: tok.RefreshToken}).Token(); !isOAuthError(err, "invalid_grant") {
		t.Fatalf("reuse at B: %v, want invalid_grant", err)
	}
	if _, err := ra.Conf.TokenSource(ra.Ctx(), &oauth2.Token{RefreshToken: rotated.RefreshToken}).Token(); err == nil {
		t.Fatal("after reuse at B, the family still refreshes at A")
	}

	// A rotation made on A reaches B's JWKS after B reloads its keys.
	rec, err := a.Keys.Rotate(context.Background(), "ES256")
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Keys.Load(context.Background()); err != nil {
		t.Fatal(err)
	}
	if !jwksHas(t, b, rec.ID) {
		t.Fatal("B does not publish the key rotated on A")
	}
}
