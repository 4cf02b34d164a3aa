package console_test

import (
	"context"
	"net/url"
	"strings"
	"testing"

	"github.com/ponte-id/ponte/idp"
	"github.com/ponte-id/ponte/internal/oidctest"
	"github.com/ponte-id/ponte/storage"
	"github.com/ponte-id/ponte/storage/storagetest"
)

// seedConversion gives citizenCF a PIN and a conversion request waiting for review.
func seedConversion(t *testing.T, s *site) storage.Conversion {
	t.Helper()
	ctx := context.Background()
	if err := s.pin.Seed(ctx, storage.PINAccount{FiscalNumber: citizenCF, GivenName: "Giuseppe", FamilyName: "Verdi", Email: "g@example.it"}, "Abcd1234"); err != nil {
		t.Fatal(err)
	}
	pdf := []byte("%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n")
	png := []byte("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x02\x00\x00\x00")
	c, err := s.pin.SubmitConversion(ctx, citizenCF, pdf, png)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestOperatorScreens: the PIN method's section is mounted in the console.
// Staff see it in the menu only with an operator role; an admin, an auditor
// or a citizen is refused; a form without the page session's token or posted
// cross-site is refused before the method runs; an operator-sede approves a
// conversion, audited under their codice fiscale; the contact center may
// look a citizen up but not open the queue.
func TestOperatorScreens(t *testing.T) {
	s := start(t, storagetest.SQLite(t))
	c := seedConversion(t, s)

	// The menu entry, by role; the section refused to roles without it.
	for _, tc := range []struct {
		cf       string
		home     int
		menu     bool
		section  int
		queue    int
		approver bool
	}{
		{operatorCF, 200, true, 200, 200, true},
		{ccCF, 200, true, 200, 403, false},
		{adminCF, 200, false, 403, 403, false},
		{citizenCF, 403, false, 403, 403, false},
	} {
		b := oidctest.NewBrowser(t)
		resp, body := s.open(t, b, "/console/", tc.cf, idp.LevelDispositivo)
		if resp.StatusCode != tc.home || strings.Contains(body, `href="/console/pin/"`) != tc.menu {
			t.Fatalf("%s home: %d menu=%v", tc.cf, resp.StatusCode, !tc.menu)
		}
		if resp, _ := s.open(t, b, "/console/pin/", tc.cf, idp.LevelDispositivo); resp.StatusCode != tc.section {
			t.Fatalf("%s /console/pin/: %d, want %d", tc.cf, resp.StatusCode, tc.section)
		}
		if resp, _ := s.open(t, b, "/console/pin/conversions", tc.cf, idp.LevelDispositivo); resp.StatusCode != tc.queue {
			t.Fatalf("%s queue: %d, want %d", tc.cf, resp.StatusCode, tc.queue)
		}
	}

	b := oidctest.NewBrowser(t)
	_, body := s.open(t, b, "/console/pin/conversions/"+c.ID, operatorCF, idp.LevelDispositivo)
	token := csrf(t, body)
	other := oidctest.NewBrowser(t)
	_, otherBody := s.open(t, other, "/console/pin/", operatorCF, idp.LevelDispositivo)
	review := s.env.Issuer + "/console/pin/conversions/" + c.ID + "/review"
	for name, tok := range map[string]string{"no token": "", "another session's token": csrf(t, otherBody)} {
		if resp, _ := b.Post(review, url.Values{"csrf": {tok}, "decision": {"approve"}}); resp.StatusCode != 403 {
			t.Fatalf("%s: %d", name, resp.StatusCode)
		}
	}
	if code := oidctest.CrossSitePost(t, review, url.Values{"csrf": {token}, "decision": {"approve"}}); code != 403 {
		t.Fatalf("cross-site: %d", code)
	}
	if got, _ := s.store.GetConversion(t.Context(), c.ID); got.Status != storage.ConversionPending {
		t.Fatalf("a refused form reviewed the conversion: %s", got.Status)
	}
	resp, body := b.Post(review, url.Values{"csrf": {token}, "decision": {"approve"}})
	if resp.StatusCode != 200 || !strings.Contains(body, "Richiesta approvata.") || resp.Header.Get("Cache-Control") != "no-store" ||
		!strings.Contains(body, "<title>Richieste di conversione da verificare") {
		t.Fatalf("approve: %d %.800s", resp.StatusCode, body)
	}
	got, err := s.store.GetConversion(t.Context(), c.ID)
	if err != nil || got.Status != storage.ConversionApproved || got.ReviewedBy != operatorCF {
		t.Fatalf("approval: %+v %v", got, err)
	}

	// The contact center looks the citizen up (a POST: no codice fiscale in addresses).
	cc := oidctest.NewBrowser(t)
	_, body = s.open(t, cc, "/console/pin/", ccCF, idp.LevelDispositivo)
	resp, body = cc.Post(s.env.Issuer+"/console/pin/citizen", url.Values{"csrf": {csrf(t, body)}, "fiscal_number": {citizenCF}})
	if resp.StatusCode != 200 || !strings.Contains(body, citizenCF) || !strings.Contains(body, "PIN dispositivo") {
		t.Fatalf("look-up: %d %.800s", resp.StatusCode, body)
	}
}
