package pin_test

import (
	"context"
	"html"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/ponte-id/ponte/adapters/pin"
	"github.com/ponte-id/ponte/idp/clients"
	"github.com/ponte-id/ponte/internal/oidctest"
	"github.com/ponte-id/ponte/internal/ui"
	"github.com/ponte-id/ponte/storage"
	"github.com/ponte-id/ponte/storage/storagetest"
)

// The citizen's side of the PIN pages, over HTTP as a browser sends it (the
// browser tests in browser_test.go walk the same pages in Chromium).

var (
	hrefRE = regexp.MustCompile(`href="([^"]*)"`)
	tagRE  = regexp.MustCompile(`<[^>]*>`)
)

// hrefs lists the links of a page, unescaped.
func hrefs(body string) []string {
	var out []string
	for _, m := range hrefRE.FindAllStringSubmatch(body, -1) {
		out = append(out, html.UnescapeString(m[1]))
	}
	return out
}

// linkTo returns the page's link whose path is path, or fails.
func linkTo(t *testing.T, body, path string) string {
	t.Helper()
	for _, h := range hrefs(body) {
		if u, err := url.Parse(h); err == nil && u.Path == path {
			return h
		}
	}
	t.Fatalf("no link to %s in %.1500s", path, body)
	return ""
}

// startLogin begins an authorization and opens the PIN's login page from
// the chooser; it returns the challenge and the page.
func (s *site) startLogin(b *oidctest.Browser, r *oidctest.RP) (string, string) {
	t := s.t
	_, body := b.Get(r.Conf.AuthCodeURL(oidctest.RandomString(), oauth2.S256ChallengeOption(oauth2.GenerateVerifier())))
	challenge := field(t, challengeField, body)
	resp, body := b.Get(s.env.Issuer + linkTo(t.(*testing.T), body, "/login/pin/"))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("PIN login page: %d", resp.StatusCode)
	}
	return challenge, body
}

// TestFieldErrorsInThePagesLanguage: a wrong request form comes back with a
// sentence in the page's language for each wrong field, saying what to do,
// tied to its input; never the field's name or developer English.
func TestFieldErrorsInThePagesLanguage(t *testing.T) {
	s := newSite(t, storagetest.SQLite(t))
	bad := url.Values{"fiscal_number": {"RSSMRA80A01H501X"}, "given_name": {"Mario"}, "gender": {"M"}, "birthdate": {"1980-13-01"},
		"street": {"Via Roma"}, "city": {"Roma"}, "mobile": {"123"}, "email": {"not-an-address"}, "first_half_via": {"sms"}}
	for _, c := range []struct{ lang, want, notWant string }{
		{"it", "Il codice fiscale non è valido: controlla i 16 caratteri", "The tax code is not valid"},
		{"en", "The tax code is not valid: check the 16 characters", "Il codice fiscale non è valido"},
	} {
		b := oidctest.NewBrowser(t)
		b.Get(s.env.Issuer + "/login/pin/request?lang=" + c.lang) // the switch: kept in a cookie
		resp, body := b.Post(s.env.Issuer+"/login/pin/request", bad)
		if resp.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(body, c.want) || strings.Contains(body, c.notWant) {
			t.Fatalf("%s: %d %.2000s", c.lang, resp.StatusCode, body)
		}
		shown := tagRE.ReplaceAllString(body, " ")
		for _, leak := range []string{"fiscal_number", "not a valid", "required", "does not match", "YYYY-MM-DD", "M or F"} {
			if strings.Contains(shown, leak) {
				t.Errorf("%s: developer text %q on the page", c.lang, leak)
			}
		}
		if !strings.Contains(body, `<a href="#f-fiscal_number">`) || !strings.Contains(body, `aria-invalid="true"`) ||
			!strings.Contains(body, `aria-describedby="f-fiscal_number-hint f-fiscal_number-error"`) || !strings.Contains(body, `value="Mario"`) {
			t.Fatalf("%s: errors not tied to their inputs, or data lost: %.3000s", c.lang, body)
		}
	}
}

// TestDetourKeepsTheLogin: a citizen who leaves the PIN login for any of the
// PIN's pages finds the pending login on every link and form, and after a
// ripristino (whose email link carries it too) finishes the login they
// started, in the language they chose.
func TestDetourKeepsTheLogin(t *testing.T) {
	s := newSite(t, storagetest.SQLite(t))
	ctx := context.Background()
	if err := s.svc.Seed(ctx, mario2Account(), "Abcd1234"); err != nil {
		t.Fatal(err)
	}
	r := s.env.NewRP(clients.Spec{})
	b := oidctest.NewBrowser(t)
	verifier := oauth2.GenerateVerifier()
	_, body := b.Get(r.Conf.AuthCodeURL(oidctest.RandomString(), oauth2.S256ChallengeOption(verifier)))
	challenge := field(t, challengeField, body)
	_, body = b.Get(s.env.Issuer + linkTo(t, body, "/login/pin/"))
	_, body = b.Get(s.env.Issuer + linkTo(t, body, "/login/pin/") + "&lang=en") // the switch, on the login page
	for _, page := range []string{"/login/pin/recover", "/login/pin/revoke", "/login/pin/request", "/login/pin/activate", "/login/pin/convert"} {
		u, _ := url.Parse(linkTo(t, body, page))
		if u.Query().Get("challenge") != challenge {
			t.Fatalf("the login page's link to %s drops the login: %s", page, u)
		}
		_, form := b.Get(s.env.Issuer + u.String())
		if field(t, challengeField, form) != challenge || !strings.Contains(form, `lang="en"`) {
			t.Fatalf("%s does not keep the login or the language: %.500s", page, form)
		}
		if page == "/login/pin/convert" {
			linkTo(t, form, "/login/pin/convert/form")
		}
	}
	resp, body := b.Post(s.env.Issuer+"/login/pin/recover", url.Values{"challenge": {challenge}, "fiscal_number": {cf},
		"mobile": {"+393331234567"}, "email": {"mario@example.it"}})
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, "Recovery request received") {
		t.Fatalf("recover: %d %.500s", resp.StatusCode, body)
	}
	emailed, _ := url.Parse(s.secrets()["email"][0])
	if emailed.Query().Get("challenge") != challenge || emailed.Query().Get("lang") != "en" {
		t.Fatalf("the recovery link loses the login or the language: %s", emailed)
	}
	_, body = b.Get(s.env.Issuer + emailed.RequestURI())
	code := field(t, regexp.MustCompile(`name="code" value="([^"]*)"`), body)
	resp, body = b.Post(s.env.Issuer+"/login/pin"+pin.RecoverConfirmPath, url.Values{"code": {code}, "challenge": {field(t, challengeField, body)}})
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, "PIN recovered") {
		t.Fatalf("confirm: %d %.500s", resp.StatusCode, body)
	}
	resp, body = b.Get(s.env.Issuer + linkTo(t, body, "/login/pin/"))
	if resp.StatusCode != http.StatusOK || field(t, challengeField, body) != challenge {
		t.Fatalf("after a ripristino the login is lost: %d %.500s", resp.StatusCode, body)
	}
	var provisional string
	msgs, _ := s.store.ListMessages(ctx, 100)
	for _, m := range msgs {
		if strings.Contains(m.Subject, "provisional PIN (1/2)") {
			provisional = s.open(m) + provisional
		}
		if strings.Contains(m.Subject, "provisional PIN (2/2)") {
			provisional += s.open(m)
		}
	}
	_, body = b.Post(s.env.Issuer+"/login/pin/", url.Values{"challenge": {challenge}, "fiscal_number": {cf}, "pin": {provisional}})
	if !strings.Contains(body, "This is your first access") {
		t.Fatalf("the provisional PIN leads to the change form: %.500s", body)
	}
	resp, _ = b.Post(s.env.Issuer+"/login/pin/change", url.Values{"ticket": {field(t, ticketField, body)}, "challenge": {challenge},
		"new_pin": {"Nuovo123"}, "confirm_pin": {"Nuovo123"}})
	s.exchange(r, oidctest.RPRedirect(resp), verifier)
}

// open opens the sealed secret of a queued message.
func (f *fixture) open(m storage.Message) string {
	f.t.Helper()
	s, err := f.box.Open(m.Secret, []byte("outbox:"+m.ID))
	if err != nil {
		f.t.Fatal(err)
	}
	return string(s)
}

// TestExpiredPINMistypedChange: a citizen whose PIN expired and who mistypes
// the change form is told again that it expired, never that it is their
// first access; switching language on the form keeps the reason.
func TestExpiredPINMistypedChange(t *testing.T) {
	s := newSite(t, storagetest.SQLite(t))
	if err := s.svc.Seed(context.Background(), mario2Account(), "Abcd1234"); err != nil {
		t.Fatal(err)
	}
	s.clock.Advance(s.svc.Config().Expiry + time.Hour)
	r := s.env.NewRP(clients.Spec{})
	b := oidctest.NewBrowser(t)
	challenge, _ := s.startLogin(b, r)
	_, body := b.Post(s.env.Issuer+"/login/pin/", url.Values{"challenge": {challenge}, "fiscal_number": {cf}, "pin": {"Abcd1234"}})
	const expired, first = "Il tuo PIN è scaduto", "primo accesso"
	if !strings.Contains(body, expired) {
		t.Fatalf("expired PIN: %.500s", body)
	}
	_, body = b.Post(s.env.Issuer+"/login/pin/change", url.Values{"ticket": {field(t, ticketField, body)}, "challenge": {challenge},
		"new_pin": {"Nuovo123"}, "confirm_pin": {"Nuovo124"}})
	if !strings.Contains(body, expired) || strings.Contains(body, first) || !strings.Contains(body, "non coincidono") {
		t.Fatalf("after a mistype: %.800s", body)
	}
	// The language switch of the change form re-posts its ticket.
	resp, body := b.Post(s.env.Issuer+"/login/pin/change?lang=en", url.Values{"ticket": {field(t, ticketField, body)}, "challenge": {challenge}, "switch": {"1"}})
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, "Your PIN has expired") || !strings.Contains(body, `name="ticket"`) {
		t.Fatalf("switching language on the change form: %d %.800s", resp.StatusCode, body)
	}
}

// TestLettersSayWhatToDo: a first half sent by post says that the PIN must be
// activated with the health-card data, and where; messages follow the
// language of the page; the conversion outcome reads as a letter, with the
// operator's reason and the way to try again.
func TestLettersSayWhatToDo(t *testing.T) {
	s := newSite(t, storagetest.SQLite(t))
	ctx := context.Background()
	form := url.Values{
		"fiscal_number": {cf}, "given_name": {"Mario"}, "family_name": {"Rossi"}, "gender": {"M"},
		"birthdate": {"1980-01-01"}, "birth_place": {"Roma"}, "street": {"Via Roma"}, "number": {"1"},
		"postal_code": {"00100"}, "city": {"Roma"}, "province": {"RM"}, "mobile": {"+393331234567"},
		"email": {"mario@example.it"}, "preferred_phone": {"+393331234567"}, "callback_slot": {"09-13"},
		"first_half_via": {"post"},
	}
	b := oidctest.NewBrowser(t)
	b.Get(s.env.Issuer + "/login/pin/request?lang=en")
	if resp, body := b.Post(s.env.Issuer+"/login/pin/request", form); resp.StatusCode != http.StatusOK || !strings.Contains(body, "Request registered") {
		t.Fatalf("request: %d %.300s", resp.StatusCode, body)
	}
	msgs, _ := s.store.ListMessages(ctx, 100)
	var first, second storage.Message
	for _, m := range msgs {
		switch m.Subject {
		case "INPS PIN: first half, to be activated":
			first = m
		case "INPS PIN: second half":
			second = m
		}
	}
	activate := s.env.Issuer + "/login/pin/activate?lang=en"
	if first.Channel != "post" || !strings.Contains(first.Body, "health card") || !strings.Contains(first.Body, activate) ||
		!strings.Contains(second.Body, activate) || strings.Contains(first.Body, "Gentile") {
		t.Fatalf("the postal letters do not say how to activate:\n%s\n%s", first.Body, second.Body)
	}

	// Conversion: uploaded in Italian, rejected, then approved.
	s.clock.Advance(time.Hour)
	if err := s.svc.Seed(ctx, mario2Account(), "Abcd1234"); err != nil {
		t.Fatal(err)
	}
	for i, approve := range []bool{false, true} {
		s.clock.Advance(time.Minute)
		c, err := s.svc.SubmitConversion(pin.WithLocale(ctx, "it"), cf, pdf, png)
		if err != nil {
			t.Fatal(err)
		}
		s.clock.Advance(time.Minute)
		if err := s.svc.ReviewConversion(ctx, c.ID, "op-1", approve, "il documento è scaduto"); err != nil {
			t.Fatal(err)
		}
		msgs, _ := s.store.ListMessages(ctx, 1)
		m := msgs[0]
		if strings.Contains(m.Body, "esaminata") || strings.Contains(m.Body, "{{") || !strings.HasPrefix(m.Body, "Gentile cittadina") {
			t.Fatalf("outcome %d reads like a log line: %q", i, m.Body)
		}
		if !approve && (!strings.Contains(m.Body, "il documento è scaduto") || !strings.Contains(m.Body, s.env.Issuer+"/login/pin/convert")) {
			t.Fatalf("a rejection must give the reason and the way to try again: %q", m.Body)
		}
		if approve && !strings.Contains(m.Subject, "ora dispositivo") {
			t.Fatalf("approval: %q", m.Subject)
		}
	}
	// An upload made in English is answered in English.
	acct := mario2Account()
	acct.FiscalNumber = "BNCLRA90D55F205C"
	if err := s.svc.Seed(ctx, acct, "Abcd1234"); err != nil {
		t.Fatal(err)
	}
	c, err := s.svc.SubmitConversion(pin.WithLocale(ctx, "en"), acct.FiscalNumber, pdf, png)
	if err != nil {
		t.Fatal(err)
	}
	s.clock.Advance(time.Minute)
	if err := s.svc.ReviewConversion(ctx, c.ID, "op-1", true, ""); err != nil {
		t.Fatal(err)
	}
	if msgs, _ := s.store.ListMessages(ctx, 1); msgs[0].Subject != "INPS PIN: your PIN is now dispositivo" {
		t.Fatalf("outcome in English: %q", msgs[0].Subject)
	}
}

// TestLanguageSurvivesPostsAndRedirects: the switch is on every page, and the
// choice holds through form posts, redirects and links that carry no lang.
func TestLanguageSurvivesPostsAndRedirects(t *testing.T) {
	s := newSite(t, storagetest.SQLite(t))
	b := oidctest.NewBrowser(t)
	_, body := b.Get(s.env.Issuer + "/login/pin/revoke")
	sw := linkTo(t, body, "/login/pin/revoke")
	if u, _ := url.Parse(sw); u.Query().Get(ui.LangParam) != "en" || !strings.Contains(body, `<html lang="it">`) {
		t.Fatalf("the Italian page's switch: %s", sw)
	}
	_, body = b.Get(s.env.Issuer + sw)
	if !strings.Contains(body, `<html lang="en">`) || !strings.Contains(body, "PIN revocation") {
		t.Fatalf("switched: %.300s", body)
	}
	resp, body := b.Post(s.env.Issuer+"/login/pin/revoke", url.Values{"fiscal_number": {cf}})
	if resp.StatusCode != http.StatusOK || resp.Request.URL.Path != "/login/pin/done/revoke_started" || !strings.Contains(body, `<html lang="en">`) {
		t.Fatalf("after the post and its redirect: %d %s %.300s", resp.StatusCode, resp.Request.URL, body)
	}
	_, body = b.Get(s.env.Issuer + "/login/pin/activate")
	if !strings.Contains(body, `<html lang="en">`) {
		t.Fatal("a link without lang lost the choice")
	}
	// The conversion page links its form; an upload refused states the limit.
	_, body = b.Get(s.env.Issuer + "/login/pin/convert?lang=it")
	resp, form := b.Get(s.env.Issuer + linkTo(t, body, "/login/pin/convert/form"))
	if resp.StatusCode != http.StatusOK || !strings.Contains(form, "Firma") || !strings.Contains(body, "al massimo 5 MB") {
		t.Fatalf("conversion form: %d %.300s", resp.StatusCode, body)
	}
}

// TestUnknownPINPageIsAPage: an address the PIN does not serve (the change
// form reloaded as a GET, a mistyped link) answers 404 with a page in the
// person's language that keeps the pending login, not the mux's plain text.
func TestUnknownPINPageIsAPage(t *testing.T) {
	s := newSite(t, storagetest.SQLite(t))
	b := oidctest.NewBrowser(t)
	for _, path := range []string{"/login/pin/change", "/login/pin/nothing", "/login/pin/done/nothing"} {
		resp, body := b.Get(s.env.Issuer + path + "?lang=en")
		if resp.StatusCode != http.StatusNotFound || !strings.Contains(body, `<html lang="en">`) || !strings.Contains(body, "not available") && !strings.Contains(body, "expired") {
			t.Fatalf("%s: %d %.300s", path, resp.StatusCode, body)
		}
	}
}
