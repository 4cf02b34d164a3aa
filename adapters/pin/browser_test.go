package pin_test

import (
	"context"
	_ "embed"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"golang.org/x/oauth2"

	"github.com/ponte-id/ponte/idp"
	"github.com/ponte-id/ponte/idp/clients"
	"github.com/ponte-id/ponte/internal/oidctest"
	"github.com/ponte-id/ponte/storage/storagetest"
)

// The browser tests walk the PIN's lifecycle in a real headless Chromium,
// as a citizen does: they follow only visible links and buttons (clicking
// them), fill the forms, read the PIN halves from the outbox (the citizen's
// phone, mailbox and letterbox) and open the recovery email's link as the
// citizen would. On every page they run axe-core (vendored in
// testdata/axe/axe.min.js, MPL-2.0) and fail on a serious or critical
// violation, and save a screenshot under testdata/screenshots/<lang>/ (or
// $PONTE_SCREENSHOTS). They skip when no Chromium is installed, unless CI is
// set: then a missing Chromium fails.

//go:embed testdata/axe/axe.min.js
var axeSource string

// chromium finds the browser, or skips (fails under CI) without one.
func chromium(t *testing.T) string {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatal("no chromium on PATH: CI must install it (apt-get install chromium)")
	}
	t.Skip("no chromium on PATH: the browser tests need it (apt-get install chromium)")
	return ""
}

// screenshotDir is where a walk's screenshots go.
func screenshotDir(t *testing.T, lang string) string {
	dir := os.Getenv("PONTE_SCREENSHOTS")
	if dir == "" {
		dir = filepath.Join("testdata", "screenshots")
	}
	dir = filepath.Join(dir, lang)
	_ = os.RemoveAll(dir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// tab is a browser tab of one walk, in one language.
type tab struct {
	t      *testing.T
	ctx    context.Context
	words  map[string]string
	shots  string
	pages  int
	issuer string
	// minor counts the moderate and minor axe findings, reported at the end.
	minor map[string]int
}

// newTab starts a Chromium of its own (a fresh profile) whose Accept-Language
// is Italian, as a browser in Italy sends it.
func newTab(t *testing.T, issuer, lang string, words map[string]string) *tab {
	path := chromium(t)
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.Flag("disable-quic", true), chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true), chromedp.Flag("disable-sync", true),
		chromedp.Flag("accept-lang", "it-IT,it"), chromedp.WindowSize(1280, 900),
		chromedp.UserDataDir(t.TempDir()))
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelTab := chromedp.NewContext(actx)
	ctx, cancelTime := context.WithTimeout(ctx, 4*time.Minute)
	t.Cleanup(func() { cancelTime(); cancelTab(); cancelAlloc() })
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("starting chromium: %v", err)
	}
	return &tab{t: t, ctx: ctx, words: words, shots: screenshotDir(t, lang), issuer: issuer, minor: map[string]int{}}
}

// w is the visible wording of key in the walk's language.
func (b *tab) w(key string) string {
	s, ok := b.words[key]
	if !ok {
		b.t.Fatalf("no wording %q", key)
	}
	return s
}

// step runs one action with a time limit, failing the test on error.
func (b *tab) step(what string, actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 20*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		b.t.Fatalf("%s: %v (at %s)", what, err, b.location())
	}
}

// navigate waits for the page that actions lead to, and checks it.
func (b *tab) navigate(what string, actions ...chromedp.Action[chromedp.Void]) int64 {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 20*time.Second)
	defer cancel()
	resp, err := chromedp.RunResponse(ctx, actions...)
	if err != nil {
		b.t.Fatalf("%s: %v (at %s)", what, err, b.location())
	}
	return resp.Status
}

func (b *tab) location() string {
	ctx, cancel := context.WithTimeout(b.ctx, 5*time.Second)
	defer cancel()
	loc, _ := chromedp.Run(ctx, chromedp.Location())
	return loc
}

// open goes to an address typed or opened from a message (the start of a
// login at the relying party, a recovery email's link).
func (b *tab) open(u string) { b.navigate("open "+u, chromedp.Navigate(u)) }

// xpathLiteral quotes s for XPath.
func xpathLiteral(s string) string {
	if !strings.Contains(s, `"`) {
		return `"` + s + `"`
	}
	return `'` + s + `'`
}

// click follows the visible link or button whose text is (or contains) the
// wording of key, and waits for the page it leads to.
func (b *tab) click(key string) {
	b.t.Helper()
	text := xpathLiteral(b.w(key))
	sel := chromedp.Search(fmt.Sprintf(`(//a[contains(normalize-space(.), %s)] | //button[contains(normalize-space(.), %s)])[1]`, text, text))
	if status := b.navigate("click "+b.w(key), chromedp.Click(sel, chromedp.NodeVisible)); status >= 500 {
		b.t.Fatalf("click %q: status %d", b.w(key), status)
	}
}

// fill types the values into the form's fields (by name).
func (b *tab) fill(values map[string]string) {
	b.t.Helper()
	for name, v := range values {
		b.step("fill "+name, chromedp.SetValue(chromedp.CSS(`[name="`+name+`"]`), v, chromedp.NodeVisible))
	}
}

// upload chooses files for the form's file inputs (by name).
func (b *tab) upload(files map[string]string) {
	b.t.Helper()
	for name, path := range files {
		b.step("upload "+name, chromedp.SetUploadFiles(chromedp.CSS(`[name="`+name+`"]`), []string{path}, chromedp.NodeVisible))
	}
}

// axeViolation is what the walk keeps of an axe-core violation.
type axeViolation struct {
	ID     string   `json:"id"`
	Impact string   `json:"impact"`
	Help   string   `json:"help"`
	Nodes  []string `json:"nodes"`
}

// axeResult is what the walk keeps of an axe-core run: the rules that
// passed (none means axe checked nothing) and the violations.
type axeResult struct {
	Passes     int            `json:"passes"`
	Violations []axeViolation `json:"violations"`
}

const axeRun = `axe.run(document).then(r => ({passes: r.passes.length, violations: r.violations.map(v => ({
	id: v.id, impact: v.impact || "", help: v.help, nodes: v.nodes.slice(0, 5).map(n => n.target.join(" "))}))}))`

// page checks the page the tab is on: its main heading is the wording of
// h1, it is in the walk's language, axe-core finds nothing serious or
// critical, and a screenshot is saved as name.
func (b *tab) page(name, h1, lang string) {
	b.t.Helper()
	b.check(name, b.w(h1), lang)
}

// check is page with the heading's text itself.
func (b *tab) check(name, h1, lang string) {
	b.t.Helper()
	b.pages++
	heading, err := chromedp.Run(b.ctx, chromedp.Text(chromedp.CSS("h1"), chromedp.NodeVisible))
	if err != nil || !strings.Contains(heading, h1) {
		b.t.Fatalf("%s: heading %q, want %q (%v) at %s", name, heading, h1, err, b.location())
	}
	if got, _ := chromedp.Run(b.ctx, chromedp.Evaluate[string](`document.documentElement.lang`)); got != lang {
		b.t.Fatalf("%s: page language %q, want %q", name, got, lang)
	}
	if _, err := chromedp.Run(b.ctx, chromedp.Evaluate[chromedp.Void](`void (window.axe || (function(){`+axeSource+`})())`)); err != nil {
		b.t.Fatalf("%s: injecting axe-core: %v", name, err)
	}
	found, err := chromedp.Run(b.ctx, chromedp.Evaluate[axeResult](axeRun, chromedp.EvalAwaitPromise))
	if err != nil || found.Passes == 0 {
		b.t.Fatalf("%s: axe-core checked nothing: %v", name, err)
	}
	for _, v := range found.Violations {
		if v.Impact == "serious" || v.Impact == "critical" {
			b.t.Errorf("%s: axe %s (%s): %s at %v", name, v.ID, v.Impact, v.Help, v.Nodes)
		} else {
			b.minor[v.ID+" ("+v.Impact+")"]++
		}
	}
	shot, err := chromedp.Run(b.ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.t.Fatalf("%s: screenshot: %v", name, err)
	}
	file := filepath.Join(b.shots, fmt.Sprintf("%02d-%s.png", b.pages, name))
	if err := os.WriteFile(file, shot, 0o644); err != nil {
		b.t.Fatal(err)
	}
}

// rp is a relying party whose callback is a page the browser can load.
type rp struct {
	*oidctest.RP
	verifier string
}

func newBrowserRP(t *testing.T, s *site, scopes ...string) *rp {
	cb := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprint(w, `<!doctype html><html lang="it"><head><title>Servizio INPS</title></head><body><main><h1>Servizio INPS</h1></main></body></html>`)
	}))
	t.Cleanup(cb.Close)
	spec := clients.Spec{RedirectURIs: []string{cb.URL + "/callback"}}
	if len(scopes) > 0 {
		spec.Scopes = append([]string{"openid", "profile", "inps.consultazione"}, scopes...)
	}
	r := s.env.NewRP(spec)
	r.Conf.Scopes = append([]string{"openid", "profile"}, scopes...)
	return &rp{RP: r}
}

// start is the address of a new login at the relying party; with prompt
// (prompt=login) the citizen logs in again although the browser has a session.
func (r *rp) start(prompt bool) string {
	r.verifier = oauth2.GenerateVerifier()
	opts := []oauth2.AuthCodeOption{oauth2.S256ChallengeOption(r.verifier)}
	if prompt {
		opts = append(opts, oauth2.SetAuthURLParam("prompt", "login"))
	}
	return r.Conf.AuthCodeURL(oidctest.RandomString(), opts...)
}

// finish checks that the tab is back at the relying party with a code that
// redeems to an ID token of the citizen at level acr.
func (b *tab) finish(s *site, r *rp, cf, acr string) {
	b.t.Helper()
	loc, err := url.Parse(b.location())
	if err != nil || loc.Query().Get("code") == "" {
		b.t.Fatalf("not back at the relying party with a code: %s", b.location())
	}
	_, claims := s.exchange(r.RP, loc, r.verifier)
	if claims["acr"] != acr || claims["auth_method"] != "pin" {
		b.t.Fatalf("claims: %v", claims)
	}
}

// walker is the citizen of one language's walk.
type walker struct {
	lang, cf, given, family, gender, birthdate string
	words                                      map[string]string
}

var walkers = []walker{
	{lang: "it", cf: "RSSMRA80A01H501U", given: "Mario", family: "Rossi", gender: "M", birthdate: "1980-01-01", words: wordsIT},
	{lang: "en", cf: "BNCLRA90D55F205C", given: "Laura", family: "Bianchi", gender: "F", birthdate: "1990-04-15", words: wordsEN},
}

// The visible wording the walks click and read.
var (
	wordsIT = map[string]string{
		"chooser": "Scegli come entrare", "method": "PIN INPS", "login": "Entra con il PIN INPS", "enter": "Entra",
		"request_link": "Non hai un PIN? Richiedilo", "request": "Richiesta del PIN", "send_request": "Invia la richiesta",
		"requested": "Richiesta inserita", "activate_link": "Attiva il PIN", "activate": "Attivazione del PIN",
		"do_activate": "Attiva il PIN", "activated": "PIN attivato", "change": "Scegli un nuovo PIN", "save": "Salva il nuovo PIN",
		"forgot": "Hai dimenticato il PIN? Chiedi il ripristino", "recover": "Ripristino del PIN", "send": "Invia",
		"recover_sent": "Richiesta di ripristino ricevuta", "do_recover": "Ripristina il PIN", "recovered": "PIN ripristinato",
		"revoke_link": "Revoca il PIN e ricevine uno nuovo", "revoke": "Revoca del PIN", "do_revoke": "Revoca il PIN",
		"revoke_done": "Richiesta di revoca ricevuta", "convert_link": "Converti il PIN ordinario in PIN dispositivo",
		"convert": "Conversione in PIN dispositivo", "module_link": "Scarica e stampa il modulo di richiesta",
		"module": "Richiesta di conversione del PIN ordinario", "module_back": "Conversione in PIN dispositivo",
		"converted": "Richiesta di conversione inviata", "other_methods": "Scegli un'altra modalità di accesso",
		"stepup": "Vai alla conversione in PIN dispositivo", "bad_cf": "Il codice fiscale non è valido",
		"first_half": "prima parte, da attivare", "second_half": "PIN INPS: seconda parte", "recovery_mail": "PIN INPS: ripristino",
		"provisional1": "provvisorio (1/2)", "provisional2": "provvisorio (2/2)",
		"replacement1": "revoca richiesta, prima parte", "replacement2": "revoca richiesta, seconda parte",
	}
	wordsEN = map[string]string{
		"switch": "English", "chooser": "Choose how to log in", "method": "INPS PIN", "login": "Log in with the INPS PIN", "enter": "Log in",
		"request_link": "No PIN yet? Request one", "request": "PIN request", "send_request": "Send the request",
		"requested": "Request registered", "activate_link": "Activate the PIN", "activate": "PIN activation",
		"do_activate": "Activate the PIN", "activated": "PIN activated", "change": "Choose a new PIN", "save": "Save the new PIN",
		"forgot": "Forgot your PIN? Recover it", "recover": "PIN recovery", "send": "Send",
		"recover_sent": "Recovery request received", "do_recover": "Recover the PIN", "recovered": "PIN recovered",
		"revoke_link": "Revoke the PIN and get a new one", "revoke": "PIN revocation", "do_revoke": "Revoke the PIN",
		"revoke_done": "Revocation request received", "convert_link": "Convert your ordinary PIN to a dispositivo PIN",
		"convert": "Conversion to a dispositivo PIN", "module_link": "Download and print the request form",
		"module": "Richiesta di conversione del PIN ordinario", "module_back": "Conversion to a dispositivo PIN",
		"converted": "Conversion request sent", "other_methods": "Choose another login method",
		"stepup": "Go to the conversion to a dispositivo PIN", "bad_cf": "The tax code is not valid",
		"first_half": "first half, to be activated", "second_half": "INPS PIN: second half", "recovery_mail": "INPS PIN: recovery",
		"provisional1": "provisional PIN (1/2)", "provisional2": "provisional PIN (2/2)",
		"replacement1": "revocation requested, first half", "replacement2": "revocation requested, second half",
	}
)

// TestBrowserWalks walks, in Italian and in English: request → activation
// (first half by post) → first access → login; ripristino; revoca (the
// replacement); conversion upload and the step-up hint.
func TestBrowserWalks(t *testing.T) {
	chromium(t)
	for _, who := range walkers {
		t.Run(who.lang, func(t *testing.T) {
			s := newSite(t, storagetest.SQLite(t))
			b := newTab(t, s.env.Issuer, who.lang, who.words)
			b.walkRequest(s, who)
			b.walkRecovery(s, who)
			b.walkRevocation(s, who)
			b.walkConversion(s, who)
			t.Logf("%s: %d pages checked with axe-core, 0 serious or critical; moderate/minor: %v; screenshots in %s", who.lang, b.pages, b.minor, b.shots)
		})
	}
}

// toLogin starts a login at a relying party and follows the chooser to the
// PIN's login page; the first time, the English walk switches language on
// the chooser.
func (b *tab) toLogin(r *rp, who walker, first bool) {
	b.t.Helper()
	b.open(r.start(true))
	if first && who.lang != "it" {
		b.check("chooser-it", wordsIT["chooser"], "it")
		b.click("switch")
	}
	b.page("chooser", "chooser", who.lang)
	b.click("method")
	b.page("login", "login", who.lang)
}

// change chooses the citizen's own PIN on the change form.
func (b *tab) change(lang, newPIN string) {
	b.page("change", "change", lang)
	b.fill(map[string]string{"new_pin": newPIN, "confirm_pin": newPIN})
	b.click("save")
}

func (b *tab) walkRequest(s *site, who walker) {
	r := newBrowserRP(b.t, s)
	b.toLogin(r, who, true)
	b.click("request_link")
	b.page("request", "request", who.lang)
	form := map[string]string{
		"fiscal_number": who.cf[:15] + "X", "given_name": who.given, "family_name": who.family, "gender": who.gender,
		"birthdate": who.birthdate, "birth_place": "Roma", "street": "Via Roma", "number": "1", "postal_code": "00100",
		"city": "Roma", "province": "RM", "mobile": "+393331234567", "email": strings.ToLower(who.given) + "@example.it",
		"preferred_phone": "+393331234567", "callback_slot": "09-13", "first_half_via": "post",
	}
	b.fill(form)
	b.click("send_request")
	b.page("request-errors", "request", who.lang)
	if body, _ := chromedp.Run(b.ctx, chromedp.Text(chromedp.CSS(`[role="alert"]`))); !strings.Contains(body, b.w("bad_cf")) {
		b.t.Fatalf("the wrong codice fiscale is not explained: %q", body)
	}
	b.fill(map[string]string{"fiscal_number": who.cf})
	b.click("send_request")
	b.page("requested", "requested", who.lang)
	b.click("activate_link")
	b.page("activate", "activate", who.lang)
	b.fill(map[string]string{"fiscal_number": who.cf, "first_half": s.secretBySubject(b.w("first_half")),
		"card_number": "80380000000000000001", "card_expiry": "2030-12"})
	b.click("do_activate")
	b.page("activated", "activated", who.lang)
	b.click("login")
	b.page("login-after-activation", "login", who.lang)
	b.fill(map[string]string{"fiscal_number": who.cf, "pin": s.secretBySubject(b.w("first_half")) + s.secretBySubject(b.w("second_half"))})
	b.click("enter")
	b.change(who.lang, "Primo123")
	b.finish(s, r, who.cf, idp.ACRConsultazione)
}

func (b *tab) walkRecovery(s *site, who walker) {
	r := newBrowserRP(b.t, s)
	b.toLogin(r, who, false)
	b.click("forgot")
	b.page("recover", "recover", who.lang)
	b.fill(map[string]string{"fiscal_number": who.cf, "mobile": "+393331234567", "email": strings.ToLower(who.given) + "@example.it"})
	b.click("send")
	b.page("recovery-sent", "recover_sent", who.lang)
	b.open(s.secretBySubject(b.w("recovery_mail"))) // the citizen opens the email's link
	b.page("recover-confirm", "recover", who.lang)
	b.click("do_recover")
	b.page("recovered", "recovered", who.lang)
	b.click("login")
	b.page("login-after-recovery", "login", who.lang)
	b.fill(map[string]string{"fiscal_number": who.cf, "pin": s.secretBySubject(b.w("provisional1")) + s.secretBySubject(b.w("provisional2"))})
	b.click("enter")
	b.change(who.lang, "Ripri123")
	b.finish(s, r, who.cf, idp.ACRConsultazione)
}

func (b *tab) walkRevocation(s *site, who walker) {
	r := newBrowserRP(b.t, s)
	b.toLogin(r, who, false)
	b.click("revoke_link")
	b.page("revoke", "revoke", who.lang)
	b.fill(map[string]string{"fiscal_number": who.cf, "given_name": who.given, "family_name": who.family,
		"gender": who.gender, "birthdate": who.birthdate, "birth_place": "Roma"})
	b.click("do_revoke")
	b.page("revoke-started", "revoke_done", who.lang)
	b.click("login")
	b.page("login-with-replacement", "login", who.lang)
	b.fill(map[string]string{"fiscal_number": who.cf, "pin": s.secretBySubject(b.w("replacement1")) + s.secretBySubject(b.w("replacement2"))})
	b.click("enter")
	b.change(who.lang, "Nuovo123")
	b.finish(s, r, who.cf, idp.ACRConsultazione)
}

func (b *tab) walkConversion(s *site, who walker) {
	dir := b.t.TempDir()
	files := map[string]string{"form": filepath.Join(dir, "modulo.pdf"), "document": filepath.Join(dir, "documento.png")}
	if err := os.WriteFile(files["form"], pdf, 0o600); err != nil {
		b.t.Fatal(err)
	}
	if err := os.WriteFile(files["document"], png, 0o600); err != nil {
		b.t.Fatal(err)
	}
	r := newBrowserRP(b.t, s)
	b.toLogin(r, who, false)
	b.click("convert_link")
	b.page("convert", "convert", who.lang)
	b.click("module_link")
	b.page("conversion-form", "module", "it")
	b.click("module_back")
	b.page("convert-again", "convert", who.lang)
	b.fill(map[string]string{"fiscal_number": who.cf, "pin": "Nuovo123"})
	b.upload(files)
	b.click("send_request")
	b.page("conversion-sent", "converted", who.lang)
	b.click("other_methods")
	b.page("chooser-after-conversion", "chooser", who.lang)
	b.click("method")
	b.page("login-after-conversion", "login", who.lang)
	b.fill(map[string]string{"fiscal_number": who.cf, "pin": "Nuovo123"})
	b.click("enter")
	b.finish(s, r, who.cf, idp.ACRConsultazione)

	// A service that needs the dispositivo level: the chooser explains the
	// step up, and its link leads to the conversion with the login kept.
	up := newBrowserRP(b.t, s, "inps.dispositivo")
	b.open(up.start(false))
	b.page("stepup-chooser", "chooser", who.lang)
	b.click("stepup")
	b.page("stepup-convert", "convert", who.lang)
	if u, _ := url.Parse(b.location()); u.Query().Get("challenge") == "" {
		b.t.Fatalf("the step-up hint drops the login: %s", b.location())
	}
	if q, _ := s.svc.PendingConversions(context.Background()); len(q) != 1 || q[0].FiscalNumber != who.cf {
		b.t.Fatalf("conversion queue: %+v", q)
	}
}
