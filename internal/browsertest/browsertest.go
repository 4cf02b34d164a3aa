// Package browsertest drives Ponte's pages in headless Chromium for the
// browser tests: a tab with steps that fail the test with where it was, and a
// check of every page (heading, language, axe-core with no serious or
// critical finding, a screenshot). It is imported by tests only.
package browsertest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// Tab is a headless Chromium tab with the steps the browser tests take.
type Tab struct {
	// Ctx is the tab's context, for chromedp.Run.
	Ctx context.Context
	// Shots is the folder of the screenshots; N counts the pages checked.
	Shots string
	N     *int
	// Step runs actions, failing the test with the address on error.
	Step func(what string, actions ...chromedp.Action[chromedp.Void])
	// Navigate runs an action that loads a page, which must not be an error.
	Navigate func(what string, a chromedp.Action[chromedp.Void])
	// Click follows the first link or button whose text contains text.
	Click func(text string)
	// Check verifies the page's h1 and language, runs axe-core (a serious or
	// critical finding fails) and saves a screenshot.
	Check func(name, h1, lang string)
}

// Open starts headless Chromium for a test (Italian first in Accept-Language),
// its screenshots under testdata/screenshots/<dir> of the test's package (or
// $PONTE_SCREENSHOTS/<dir>). Without Chromium it skips, unless CI is set.
func Open(t *testing.T, dir string) *Tab {
	t.Helper()
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
	_, here, _, _ := runtime.Caller(0)
	axe, err := os.ReadFile(filepath.Join(filepath.Dir(here), "..", "..", "adapters", "pin", "testdata", "axe", "axe.min.js"))
	if err != nil {
		t.Fatal(err)
	}
	shots := filepath.Join("testdata", "screenshots", dir)
	if root := os.Getenv("PONTE_SCREENSHOTS"); root != "" {
		shots = filepath.Join(root, dir)
	}
	_ = os.RemoveAll(shots)
	if err := os.MkdirAll(shots, 0o755); err != nil {
		t.Fatal(err)
	}

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

	return &Tab{Ctx: ctx, Shots: shots, N: &n, Step: step, Navigate: navigate, Click: click, Check: check}
}
