package account_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/ponte-id/ponte/internal/oidctest"
	"github.com/ponte-id/ponte/storage/storagetest"
)

// TestBrowserEndSession walks the account pages in headless Chromium as a
// citizen does: log in, see the open sessions, end the one of another
// device, end them all. axe-core (vendored by adapters/pin) runs on every
// page and a serious or critical finding fails; each page is saved as a
// screenshot under testdata/screenshots (or $PONTE_SCREENSHOTS/account).
// Without Chromium it skips, unless CI is set.
func TestBrowserEndSession(t *testing.T) {
	path := ""
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			path = p
			break
		}
	}
	if path == "" {
		if os.Getenv("CI") != "" {
			t.Fatal("no chromium on PATH: CI must install it (apt-get install chromium)")
		}
		t.Skip("no chromium on PATH (apt-get install chromium)")
	}
	axe, err := os.ReadFile(filepath.Join("..", "..", "adapters", "pin", "testdata", "axe", "axe.min.js"))
	if err != nil {
		t.Fatal(err)
	}
	shots := filepath.Join("testdata", "screenshots")
	if dir := os.Getenv("PONTE_SCREENSHOTS"); dir != "" {
		shots = filepath.Join(dir, "account")
	}
	_ = os.RemoveAll(shots)
	if err := os.MkdirAll(shots, 0o755); err != nil {
		t.Fatal(err)
	}

	store := storagetest.SQLite(t)
	s := newSite(t, store)
	// The citizen's phone is logged in to a service.
	s.loginRP(t, oidctest.NewBrowser(t), aliceCF)

	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.Flag("disable-quic", true), chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("accept-lang", "it-IT,it"), chromedp.WindowSize(1280, 900), chromedp.UserDataDir(t.TempDir()))
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelTab := chromedp.NewContext(actx)
	ctx, cancelTime := context.WithTimeout(ctx, 2*time.Minute)
	t.Cleanup(func() { cancelTime(); cancelTab(); cancelAlloc() })
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("starting chromium: %v", err)
	}
	n := 0
	step := func(what string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		sctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		defer cancel()
		if err := chromedp.Do(sctx, actions...); err != nil {
			loc, _ := chromedp.Run(ctx, chromedp.Location())
			t.Fatalf("%s: %v (at %s)", what, err, loc)
		}
	}
	navigate := func(what string, a chromedp.Action[chromedp.Void]) {
		t.Helper()
		sctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		defer cancel()
		resp, err := chromedp.RunResponse(sctx, a)
		if err != nil || resp.Status >= 400 {
			t.Fatalf("%s: %v %v", what, err, resp)
		}
	}
	click := func(text string) {
		t.Helper()
		sel := chromedp.Search(fmt.Sprintf(`(//a[contains(normalize-space(.), %q)] | //button[contains(normalize-space(.), %q)])[1]`, text, text))
		navigate("click "+text, chromedp.Click(sel, chromedp.NodeVisible))
	}
	// check runs axe-core on the page and saves its screenshot.
	check := func(name, h1, lang string) {
		t.Helper()
		n++
		heading, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("h1"), chromedp.NodeVisible))
		if err != nil || !strings.Contains(heading, h1) {
			t.Fatalf("%s: heading %q, want %q (%v)", name, heading, h1, err)
		}
		if got, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.documentElement.lang`)); got != lang {
			t.Fatalf("%s: page language %q, want %q", name, got, lang)
		}
		if _, err := chromedp.Run(ctx, chromedp.Evaluate[chromedp.Void](`void (window.axe || (function(){`+string(axe)+`})())`)); err != nil {
			t.Fatalf("%s: injecting axe-core: %v", name, err)
		}
		type violation struct {
			ID, Impact, Help string
			Nodes            []string
		}
		found, err := chromedp.Run(ctx, chromedp.Evaluate[struct {
			Passes     int
			Violations []violation
		}](`axe.run(document).then(r => ({Passes: r.passes.length, Violations: r.violations.map(v => ({
			ID: v.id, Impact: v.impact || "", Help: v.help, Nodes: v.nodes.slice(0, 5).map(n => n.target.join(" "))}))}))`, chromedp.EvalAwaitPromise))
		if err != nil || found.Passes == 0 {
			t.Fatalf("%s: axe-core checked nothing: %v", name, err)
		}
		for _, v := range found.Violations {
			if v.Impact == "serious" || v.Impact == "critical" {
				t.Errorf("%s: axe %s (%s): %s at %v", name, v.ID, v.Impact, v.Help, v.Nodes)
			} else {
				t.Logf("%s: axe %s (%s): %s", name, v.ID, v.Impact, v.Help)
			}
		}
		shot, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(shots, fmt.Sprintf("%02d-%s.png", n, name)), shot, 0o644); err != nil {
			t.Fatal(err)
		}
	}

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
	t.Logf("%d pages checked with axe-core; screenshots in %s", n, shots)
}
