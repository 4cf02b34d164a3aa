package console_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/ponte-id/ponte/adapters/pin"
	"github.com/ponte-id/ponte/idp"
	"github.com/ponte-id/ponte/internal/browsertest"
	"github.com/ponte-id/ponte/internal/oidctest"
	"github.com/ponte-id/ponte/storage"
	"github.com/ponte-id/ponte/storage/storagetest"
)

// TestBrowserAdminRegistersAClient walks the console in headless Chromium as
// an administrator does: log in through Ponte at the dispositivo level (the
// test login method stands for a dispositivo PIN), open the relying
// parties, register one (a bad redirect URI first: the form says which
// field), read its secret, switch to English; the client then completes a
// login (go-oidc, x/oauth2) with the secret it had before a rotation (24 hours of overlap). axe-core (vendored by adapters/pin) runs on
// every page and a serious or critical finding fails; each page is saved as
// a screenshot under testdata/screenshots (or $PONTE_SCREENSHOTS/console).
// Without Chromium it skips, unless CI is set.
func TestBrowserAdminRegistersAClient(t *testing.T) {
	c := browsertest.Open(t, "console")
	ctx, step, navigate, click, check := c.Ctx, c.Step, c.Navigate, c.Click, c.Check
	shots := c.Shots
	s := start(t, storagetest.SQLite(t))

	navigate("open /console/", chromedp.Navigate(s.env.Issuer+"/console/"))
	click("Test login")
	step("fill the login", chromedp.SetValue(chromedp.CSS(`[name="cf"]`), adminCF, chromedp.NodeVisible),
		chromedp.SetValue(chromedp.CSS(`[name="level"]`), "2", chromedp.NodeVisible))
	click("Entra")
	check("home", "Console di Ponte", "it")
	click("Servizi collegati")
	check("clients-empty", "Servizi collegati", "it")
	click("Registra un servizio")
	check("form", "Registra un servizio", "it")
	step("fill the form", chromedp.SetValue(chromedp.CSS(`#name`), "Cassetto previdenziale", chromedp.NodeVisible),
		chromedp.SetValue(chromedp.CSS(`#redirect_uris`), "http://cassetto.example.it/cb", chromedp.NodeVisible))
	step("submit a bad redirect URI", chromedp.Click(chromedp.Search(`//button[normalize-space(.)="Registra"]`), chromedp.NodeVisible),
		chromedp.WaitVisible(chromedp.CSS(`[role="alert"]`)))
	check("form-refused", "Registra un servizio", "it")
	if got, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`[role="alert"]`), chromedp.NodeVisible)); !strings.Contains(got, "redirect_uris[0]") {
		t.Fatalf("the refusal does not name the field: %q", got)
	}
	step("correct the redirect URI", chromedp.SetValue(chromedp.CSS(`#redirect_uris`), oidctest.RedirectURI, chromedp.NodeVisible))
	click("Registra")
	check("created", "Servizio registrato", "it")
	id, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`#client-id`), chromedp.NodeVisible))
	if err != nil {
		t.Fatal(err)
	}
	secret, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`#client-secret`), chromedp.NodeVisible))
	if err != nil {
		t.Fatal(err)
	}
	click("Dettagli del servizio")
	check("client", "Servizio", "it")
	click("Genera un nuovo segreto")
	check("rotated", "Nuovo segreto", "it")
	click("Indietro")
	check("clients", "Servizi collegati", "it")
	click("English")
	check("clients-en", "Connected services", "en")
	click("Back")
	click("Audit trail")
	check("audit-en", "Audit trail", "en")
	if got, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`tbody`), chromedp.NodeVisible)); !strings.Contains(got, "client.created") || !strings.Contains(got, adminCF) {
		t.Fatalf("the audit page lacks the registration: %q", got)
	}

	// The client registered in the console logs a citizen in.
	op, err := oidc.NewProvider(oidc.ClientContext(context.Background(), s.env.Server.Client()), s.env.Issuer)
	if err != nil {
		t.Fatal(err)
	}
	endpoint := op.Endpoint()
	endpoint.AuthStyle = oauth2.AuthStyleInHeader
	conf := oauth2.Config{ClientID: id, ClientSecret: secret, Endpoint: endpoint, RedirectURL: oidctest.RedirectURI, Scopes: []string{oidc.ScopeOpenID}}
	verifier := oauth2.GenerateVerifier()
	citizen := oidctest.NewBrowser(t)
	resp, body := citizen.Get(conf.AuthCodeURL(oidctest.RandomString(), oauth2.S256ChallengeOption(verifier)))
	resp, _ = citizen.FormLoginAt(s.env.Issuer, resp, body, citizenCF, idp.LevelConsultazione)
	loc := oidctest.RPRedirect(resp)
	if loc == nil {
		t.Fatalf("no code for the client registered in the console: %d", resp.StatusCode)
	}
	tok, err := conf.Exchange(oidc.ClientContext(context.Background(), s.env.Server.Client()), loc.Query().Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := tok.Extra("id_token").(string)
	if _, err := op.Verifier(&oidc.Config{ClientID: id}).Verify(context.Background(), raw); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d pages checked with axe-core; screenshots in %s", *c.N, shots)
}

// TestBrowserOperatorApprovesAConversion walks the PIN procedures in
// headless Chromium as a branch-office operator (operator-sede) does: log in
// at the dispositivo level, open the PIN section, look a citizen up (a bad
// codice fiscale first), open the conversion queue, see a request and
// approve it, see the parked messages, switch to English. axe-core runs on
// every page; screenshots under testdata/screenshots/console-operator.
func TestBrowserOperatorApprovesAConversion(t *testing.T) {
	const mv35CF = ccCF // a citizen who is also staff: a valid codice fiscale, not the operator's
	c := browsertest.Open(t, "console-operator")
	ctx, step, navigate, click, check := c.Ctx, c.Step, c.Navigate, c.Click, c.Check
	s := start(t, storagetest.SQLite(t))
	conv := seedConversion(t, s)

	navigate("open /console/", chromedp.Navigate(s.env.Issuer+"/console/"))
	click("Test login")
	step("fill the login", chromedp.SetValue(chromedp.CSS(`[name="cf"]`), operatorCF, chromedp.NodeVisible),
		chromedp.SetValue(chromedp.CSS(`[name="level"]`), "2", chromedp.NodeVisible))
	click("Entra")
	check("home", "Console di Ponte", "it")
	click("Procedure PIN")
	check("pin", "Procedure PIN", "it")
	step("type a bad codice fiscale", chromedp.SetValue(chromedp.CSS(`#fiscal_number`), "RSSMRA80A01H501X", chromedp.NodeVisible))
	step("look it up", chromedp.Click(chromedp.Search(`//button[normalize-space(.)="Cerca"]`), chromedp.NodeVisible),
		chromedp.WaitVisible(chromedp.CSS(`#cf-error`)))
	check("pin-bad-cf", "Procedure PIN", "it")
	step("type the citizen's codice fiscale", chromedp.SetValue(chromedp.CSS(`#fiscal_number`), citizenCF, chromedp.NodeVisible))
	click("Cerca")
	check("citizen", "Stato del PIN di un cittadino", "it")
	if got, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`dl`), chromedp.NodeVisible)); !strings.Contains(got, citizenCF) || !strings.Contains(got, "nessun blocco") {
		t.Fatalf("the state page: %q", got)
	}
	navigate("open the queue", chromedp.Navigate(s.env.Issuer+"/console/pin/conversions"))
	check("queue", "Richieste di conversione da verificare", "it")
	click("Verifica")
	check("review", "Verifica di una richiesta di conversione", "it")
	click("Approva")
	check("approved", "Richieste di conversione da verificare", "it")
	if got, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`[role="status"]`), chromedp.NodeVisible)); !strings.Contains(got, "Richiesta approvata.") {
		t.Fatalf("the approval is not confirmed: %q", got)
	}
	if got, err := s.store.GetConversion(t.Context(), conv.ID); err != nil || got.Status != storage.ConversionApproved || got.ReviewedBy != operatorCF {
		t.Fatalf("the approval: %+v %v", got, err)
	}
	// A PIN issued at the counter (MV35): the printable envelope sheet.
	navigate("open the MV35 form", chromedp.Navigate(s.env.Issuer+"/console/pin/issue"))
	check("issue", "Rilascio del PIN in sede (MV35)", "it")
	for id, value := range map[string]string{"f-fiscal_number": mv35CF, "f-given_name": "Laura", "f-family_name": "Bianchi",
		"f-gender": "F", "f-birthdate": "1990-04-15", "f-birth_place": "Milano", "f-street": "Via Dante", "f-number": "3",
		"f-postal_code": "20121", "f-city": "Milano", "f-province": "MI", "f-mobile": "+393331234567", "f-email": "laura@example.it"} {
		step("fill "+id, chromedp.SetValue(chromedp.CSS("#"+id), value, chromedp.NodeVisible))
	}
	step("submit without the document", chromedp.Click(chromedp.Search(`//button[contains(., "Rilascia il PIN")]`), chromedp.NodeVisible),
		chromedp.WaitVisible(chromedp.CSS(`#f-document-error`)))
	check("issue-refused", "Rilascio del PIN in sede (MV35)", "it")
	step("name the document", chromedp.SetValue(chromedp.CSS("#f-document"), "CI CA12345AB", chromedp.NodeVisible))
	click("Rilascia il PIN")
	sheet, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`.pin`), chromedp.NodeVisible))
	if err != nil || len(strings.Fields(sheet)) != 4 {
		t.Fatalf("the envelope sheet: %q %v", sheet, err)
	}
	if shot, err := chromedp.Run(ctx, chromedp.FullScreenshot(100)); err == nil {
		*c.N++
		_ = os.WriteFile(filepath.Join(c.Shots, fmt.Sprintf("%02d-envelope.png", *c.N)), shot, 0o644)
	}
	navigate("open the PIN section", chromedp.Navigate(s.env.Issuer+"/console/pin/"))
	step("type the new citizen", chromedp.SetValue(chromedp.CSS(`#fiscal_number`), mv35CF, chromedp.NodeVisible))
	click("Cerca")
	check("citizen-mv35", "Stato del PIN di un cittadino", "it")
	click("Revoca il PIN")
	check("revoke", "Revoca del PIN", "it")
	click("Conferma la revoca")
	check("revoked", "Stato del PIN di un cittadino", "it")
	click("English")
	check("pin-en", "PIN procedures", "en")
	click("Undelivered messages")
	check("parked-en", "Undelivered messages", "en")
	t.Logf("%d pages checked with axe-core; screenshots in %s", *c.N, c.Shots)
}

// TestBrowserAuditorExportsTheTrail walks the console in headless Chromium
// as an auditor does: log in at the dispositivo level, see only the audit
// trail in the menu (no relying parties, no PIN procedures, which answer
// 403 when opened by address), filter the trail by a citizen and export it
// as CSV from the page's own form (the browser's request, with its cookie,
// Origin and Sec-Fetch-Site); the export holds the known event and is
// itself audited under the auditor. axe-core runs on every page.
func TestBrowserAuditorExportsTheTrail(t *testing.T) {
	c := browsertest.Open(t, "console-auditor")
	ctx, step, navigate, click, check := c.Ctx, c.Step, c.Navigate, c.Click, c.Check
	s := start(t, storagetest.SQLite(t))
	for _, e := range []storage.AuditEvent{
		{FiscalNumber: citizenCF, Event: "issued", Channel: "sede", Operator: "op-7"},
		{Event: "client.created", Channel: "api", Operator: "token:x", Target: "client:a"},
	} {
		if err := s.store.AppendAudit(t.Context(), e); err != nil {
			t.Fatal(err)
		}
	}

	navigate("open /console/", chromedp.Navigate(s.env.Issuer+"/console/"))
	click("Test login")
	step("fill the login", chromedp.SetValue(chromedp.CSS(`[name="cf"]`), auditorCF, chromedp.NodeVisible),
		chromedp.SetValue(chromedp.CSS(`[name="level"]`), "2", chromedp.NodeVisible))
	click("Entra")
	check("home", "Console di Ponte", "it")
	links, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](`[...document.querySelectorAll("main a, nav a")].map(a => a.pathname)`))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(links, "/console/audit") {
		t.Fatalf("the auditor's menu lacks the audit trail: %v", links)
	}
	for _, l := range links {
		if strings.HasPrefix(l, "/console/clients") || strings.HasPrefix(l, "/console/pin") {
			t.Fatalf("the auditor's menu offers %s: %v", l, links)
		}
	}
	for _, path := range []string{"/console/clients", "/console/pin/", "/console/pin/issue"} {
		resp, err := chromedp.RunResponse(ctx, chromedp.Navigate(s.env.Issuer+path))
		if err != nil || resp.Status != 403 {
			t.Fatalf("the auditor at %s: %v %v", path, resp, err)
		}
	}
	navigate("back home", chromedp.Navigate(s.env.Issuer+"/console/"))
	click("Registro delle attività")
	check("audit", "Registro delle attività", "it")
	step("filter by the citizen", chromedp.SetValue(chromedp.CSS(`#subject`), citizenCF, chromedp.NodeVisible))
	click("Filtra")
	check("audit-filtered", "Registro delle attività", "it")
	if got, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`tbody`), chromedp.NodeVisible)); !strings.Contains(got, "issued") || strings.Contains(got, "client:a") {
		t.Fatalf("the filtered trail: %q", got)
	}
	// The export button downloads the file: Chromium saves it, and the
	// response it received says 200 and text/csv.
	dir := t.TempDir()
	responses := chromedp.Events(ctx, network.ResponseReceived)
	progress := chromedp.Events(ctx, browser.DownloadProgress)
	step("export as CSV", chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
		_, err := chromedp.Call(ctx, browser.SetDownloadBehavior, browser.SetDownloadBehaviorParams{
			Behavior: browser.SetDownloadBehaviorBehaviorAllowAndName, DownloadPath: dir, EventsEnabled: new(true)})
		return err
	}), chromedp.Click(chromedp.Search(`//button[normalize-space(.)="Esporta in CSV"]`), chromedp.NodeVisible))
	var file string
	for ev, err := range progress {
		if err != nil {
			t.Fatal(err)
		}
		if ev.State == browser.DownloadProgressStateCanceled {
			t.Fatal("the download was canceled")
		}
		if ev.State == browser.DownloadProgressStateCompleted {
			file = filepath.Join(dir, ev.GUID)
			break
		}
	}
	var export *network.Response
	for ev, err := range responses {
		if err != nil {
			t.Fatal(err)
		}
		if ev.Response != nil && strings.HasSuffix(ev.Response.URL, "/console/audit/export") {
			export = ev.Response
			break
		}
	}
	if export == nil || export.Status != 200 || export.MimeType != "text/csv" {
		t.Fatalf("the export answered %+v", export)
	}
	csv, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(csv), "id,at,actor,action,channel,fiscal_number,target,detail\n") ||
		!strings.Contains(string(csv), ",issued,sede,"+citizenCF+",") || strings.Contains(string(csv), "client:a") {
		t.Fatalf("the CSV export: %q", csv)
	}
	var exported []storage.AuditEvent
	_ = s.store.SearchAudit(t.Context(), storage.AuditQuery{Action: "audit.exported"}, func(e storage.AuditEvent) error { exported = append(exported, e); return nil })
	if len(exported) != 1 || exported[0].Operator != auditorCF {
		t.Fatalf("the export is not audited under the auditor: %+v", exported)
	}
	t.Logf("%d pages checked with axe-core; screenshots in %s", *c.N, c.Shots)
}

// TestBrowserContactCenterRequest walks the request by phone in headless
// Chromium as a contact-center operator does: log in, open the PIN section
// (no MV35 or conversion queue offered), the phone form, register a request
// and read out the first half. axe-core runs on every page; screenshots
// under testdata/screenshots/console-contact-center.
func TestBrowserContactCenterRequest(t *testing.T) {
	c := browsertest.Open(t, "console-contact-center")
	ctx, step, navigate, click, check := c.Ctx, c.Step, c.Navigate, c.Click, c.Check
	s := start(t, storagetest.SQLite(t))

	navigate("open /console/", chromedp.Navigate(s.env.Issuer+"/console/"))
	click("Test login")
	step("fill the login", chromedp.SetValue(chromedp.CSS(`[name="cf"]`), ccCF, chromedp.NodeVisible),
		chromedp.SetValue(chromedp.CSS(`[name="level"]`), "2", chromedp.NodeVisible))
	click("Entra")
	click("Procedure PIN")
	check("pin", "Procedure PIN", "it")
	links, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](`[...document.querySelectorAll("a")].map(a => a.pathname)`))
	if err != nil || slices.Contains(links, "/console/pin/issue") || slices.Contains(links, "/console/pin/conversions") {
		t.Fatalf("the contact center's PIN menu: %v %v", links, err)
	}
	click("Richiesta del PIN per telefono")
	check("request", "Richiesta del PIN per telefono", "it")
	// After the cutoff (October 2021) the phone is for residents abroad
	// without an Italian identity document.
	for id, value := range map[string]string{"f-fiscal_number": citizenCF, "f-given_name": "Giuseppe", "f-family_name": "Verdi",
		"f-gender": "M", "f-birthdate": "1975-03-15", "f-birth_place": "Milano", "f-street": "Calle Florida", "f-number": "5",
		"f-city": "Buenos Aires", "f-country": "Argentina", "f-mobile": "+5491112345678", "f-email": "giuseppe@example.it",
		"f-preferred_phone": "+5491112345678", "f-callback_slot": "09-13", "f-first_half_via": "email"} {
		step("fill "+id, chromedp.SetValue(chromedp.CSS("#"+id), value, chromedp.NodeVisible))
	}
	step("tick the residence abroad", chromedp.Click(chromedp.CSS(`#f-abroad`), chromedp.NodeVisible))
	click("Registra la richiesta")
	check("requested", "Richiesta registrata", "it")
	if first, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`.pin`), chromedp.NodeVisible)); err != nil || len(strings.TrimSpace(first)) != 8 {
		t.Fatalf("the first half: %q %v", first, err)
	}

	// Someone asks online for the same citizen with other contacts: the
	// request waits for the contact center's callback.
	other := pin.Request{FiscalNumber: citizenCF, GivenName: "Giuseppe", FamilyName: "Verdi", Gender: "M", Birthdate: "1975-03-15",
		BirthPlace: "Milano", ResidenceAbroad: true, Residence: storage.Address{Street: "Calle Florida", Number: "5", City: "Buenos Aires", Country: "Argentina"},
		Mobile: "+5491199999999", Email: "someone@example.it", PreferredPhone: "+5491199999999", CallbackSlot: "09-13", FirstHalfVia: "email"}
	if _, err := s.pin.RequestPIN(context.Background(), other, pin.ChannelOnline, "", ""); err != nil {
		t.Fatal(err)
	}
	navigate("open the PIN menu", chromedp.Navigate(s.env.Issuer+"/console/pin/"))
	click("Richiamate da fare")
	check("callbacks", "Richiamate da fare", "it")
	if got, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`main`), chromedp.NodeVisible)); err != nil || !strings.Contains(got, "someone@example.it") {
		t.Fatalf("the callbacks page does not show the waiting request: %v\n%s", err, got)
	}
	t.Logf("%d pages checked with axe-core; screenshots in %s", *c.N, c.Shots)
}
