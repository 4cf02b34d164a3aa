package account_test

import (
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/ponte-id/ponte/internal/browsertest"
	"github.com/ponte-id/ponte/internal/oidctest"
	"github.com/ponte-id/ponte/storage/storagetest"
)

// TestBrowserEndSession walks the account pages in headless Chromium as a
// citizen does: log in, see the open sessions, end the one of another
// device, end them all. axe-core (vendored by adapters/pin) runs on every
// page and a serious or critical finding fails; each page is saved as a
// screenshot under testdata/screenshots/account (or $PONTE_SCREENSHOTS/account).
// Without Chromium it skips, unless CI is set.
func TestBrowserEndSession(t *testing.T) {
	store := storagetest.SQLite(t)
	s := newSite(t, store)
	// The citizen's phone is logged in to a service.
	s.loginRP(t, oidctest.NewBrowser(t), aliceCF)

	c := browsertest.Open(t, "account")
	ctx, step, navigate, click, check := c.Ctx, c.Step, c.Navigate, c.Click, c.Check

	// Log in to the account pages (the test login method stands for the PIN).
	navigate("open /account/", chromedp.Navigate(s.env.Issuer+"/account/"))
	click("Test login")
	step("fill the login", chromedp.SetValue(chromedp.CSS(`[name="cf"]`), aliceCF, chromedp.NodeVisible))
	click("Entra")
	check("sessions", "I tuoi accessi", "it")
	if len(sids(t, store, aliceCF)) != 2 {
		t.Fatal("want two open sessions: the phone's and this browser's")
	}
	// End the phone's session: the one not marked as this browser.
	navigate("end the phone's session", chromedp.Click(chromedp.Search(`//section[not(contains(@class, "notice"))]//button`), chromedp.NodeVisible))
	check("session-ended", "I tuoi accessi", "it")
	if got, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`[role="status"]`), chromedp.NodeVisible)); !strings.Contains(got, "chiuso") {
		t.Fatalf("no notice after ending: %q", got)
	}
	if len(sids(t, store, aliceCF)) != 1 || queued(t, store) != 1 {
		t.Fatalf("after ending the phone's session: %d sessions, %d logouts queued", len(sids(t, store, aliceCF)), queued(t, store))
	}
	// The same page in English.
	click("English")
	check("sessions-en", "Your logins", "en")
	click("Italiano")
	// End every session.
	click("Chiudi tutti gli accessi")
	check("all-ended", "Accessi chiusi", "it")
	if len(sids(t, store, aliceCF)) != 0 {
		t.Fatal("sessions left after ending all")
	}
	t.Logf("%d pages checked with axe-core; screenshots in %s", *c.N, c.Shots)
}
