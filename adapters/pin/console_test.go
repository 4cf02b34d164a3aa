package pin_test

import (
	"bytes"
	"context"
	"fmt"
	"html/template"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ponte-id/ponte/adapters/pin"
	"github.com/ponte-id/ponte/adapters/pin/delivery"
	"github.com/ponte-id/ponte/idp"
	"github.com/ponte-id/ponte/storage"
	"github.com/ponte-id/ponte/storage/storagetest"
)

// consoleAs serves the PIN console section as the console mounts it: the
// staff member (staffCF, roles) in the context and a frame whose Render
// writes the title and the body. (The console's own login, role and CSRF
// checks are tested in internal/console.)
func consoleAs(t *testing.T, svc *pin.Service, staffCF, lang string, roles ...string) *httptest.Server {
	t.Helper()
	sec := svc.ConsoleSection()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := idp.WithOperatorRoles(idp.WithOperator(r.Context(), staffCF), roles...)
		ctx = idp.WithConsoleFrame(ctx, idp.ConsoleFrame{Lang: lang, CSRF: "tok",
			Render: func(w http.ResponseWriter, _ *http.Request, status int, title string, body template.HTML) {
				w.Header().Set("Content-Type", "text/html; charset=utf-8")
				w.WriteHeader(status)
				_, _ = io.WriteString(w, "<title>"+template.HTMLEscapeString(title)+"</title>"+string(body))
			}})
		sec.Handler.ServeHTTP(w, r.WithContext(ctx))
	}))
	t.Cleanup(srv.Close)
	return srv
}

func get(t *testing.T, u string) (int, string) {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func postForm(t *testing.T, u string, v url.Values) (int, string) {
	t.Helper()
	resp, err := http.PostForm(u, v)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestConsoleRoles: every console page is open to the roles of its
// procedure, as the operator API's, and refused (403, nothing done) to the
// others.
func TestConsoleRoles(t *testing.T) {
	f := newFixture(t, storagetest.SQLite(t), after2021)
	ctx := context.Background()
	if err := f.svc.Seed(ctx, mario2Account(), "Abcd1234"); err != nil {
		t.Fatal(err)
	}
	c, err := f.svc.SubmitConversion(ctx, cf, pdf, png)
	if err != nil {
		t.Fatal(err)
	}
	const (
		sede = 1 << iota
		cc
	)
	servers := map[int]*httptest.Server{
		sede: consoleAs(t, f.svc, "BNCLGU70B02F205F", "it", idp.RoleOperatorSede),
		cc:   consoleAs(t, f.svc, "BNCLGU70B02F205F", "it", idp.RoleOperatorContactCenter),
		0:    consoleAs(t, f.svc, "BNCLGU70B02F205F", "it", "auditor"),
	}
	cases := []struct {
		method, path string
		form         url.Values
		open         int
	}{
		{"GET", "/", nil, sede | cc},
		{"POST", "/citizen", url.Values{"fiscal_number": {cf}}, sede | cc},
		{"POST", "/unlock", url.Values{"fiscal_number": {cf}, "channel": {"sede"}}, sede},
		{"POST", "/unlock", url.Values{"fiscal_number": {cf}, "channel": {"contact_center"}}, cc},
		{"GET", "/conversions", nil, sede},
		{"GET", "/conversions/" + c.ID, nil, sede},
		{"GET", "/conversions/" + c.ID + "/document", nil, sede},
		{"GET", "/issue", nil, sede},
		{"POST", "/issue", url.Values{"fiscal_number": {"x"}}, sede},
		{"GET", "/request", nil, cc},
		{"POST", "/request", url.Values{"fiscal_number": {"x"}}, cc},
		{"POST", "/revoke", url.Values{"fiscal_number": {cf}, "channel": {"sede"}}, sede},
		{"POST", "/revoke", url.Values{"fiscal_number": {cf}, "channel": {"contact_center"}}, cc},
		{"GET", "/parked", nil, sede | cc},
		{"POST", "/parked/nope/requeue", nil, sede | cc},
		{"GET", "/callbacks", nil, cc},
		{"POST", "/callbacks/nope", url.Values{"outcome": {"refused"}}, cc},
		// A rejection without a reason changes nothing, for any role.
		{"POST", "/conversions/" + c.ID + "/review", url.Values{"decision": {"reject"}}, sede},
	}
	for _, tc := range cases {
		for bit, srv := range servers {
			t.Run(tc.method+tc.path+"/"+tc.form.Get("channel")+"/"+string(rune('0'+bit)), func(t *testing.T) {
				var code int
				var body string
				if tc.method == "GET" {
					code, body = get(t, srv.URL+tc.path)
				} else {
					code, body = postForm(t, srv.URL+tc.path, tc.form)
				}
				open := tc.open&bit != 0
				if open && code == http.StatusForbidden {
					t.Fatalf("refused to its role: %d %s", code, body)
				}
				if !open && (code != http.StatusForbidden || !strings.Contains(body, "Accesso non consentito")) {
					t.Fatalf("let through to another role: %d %s", code, body)
				}
			})
		}
	}
	if got, err := f.store.GetConversion(ctx, c.ID); err != nil || got.Status != storage.ConversionPending {
		t.Fatalf("a refused review changed the conversion: %+v %v", got.Status, err)
	}
}

// TestConsoleLockLifted: an operator looks a citizen up, sees the lock
// (never the PIN), lifts it; the lift is audited under the staff member's
// codice fiscale and the PIN works again.
func TestConsoleLockLifted(t *testing.T) {
	f := newFixture(t, storagetest.SQLite(t), after2021, func(c *pin.Config) {
		c.Throttle.MaxAccountFailures, c.Throttle.FreeAccountFailures, c.Throttle.Lockout = 3, 10, time.Hour
	})
	ctx := context.Background()
	if err := f.svc.Seed(ctx, mario2Account(), "Abcd1234"); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		_, _ = f.svc.Login(ctx, cf, "Wrong123", "192.0.2.1")
	}
	if _, err := f.svc.Login(ctx, cf, "Abcd1234", "192.0.2.1"); err == nil {
		t.Fatal("the PIN is not locked")
	}
	const staffCF = "BNCLGU70B02F205F"
	srv := consoleAs(t, f.svc, staffCF, "en", idp.RoleOperatorContactCenter)

	for _, tc := range []struct{ cf, want string }{
		{"not-a-cf", "The codice fiscale is not valid."},
		{"VRDGPP75C15F205S", "No PIN for this codice fiscale."},
	} {
		code, body := postForm(t, srv.URL+"/citizen", url.Values{"fiscal_number": {tc.cf}})
		if code == http.StatusOK || !strings.Contains(body, tc.want) || !strings.Contains(body, `aria-invalid="true"`) {
			t.Fatalf("look-up of %q: %d %s", tc.cf, code, body)
		}
	}
	code, body := postForm(t, srv.URL+"/citizen", url.Values{"fiscal_number": {strings.ToLower(cf)}})
	for _, want := range []string{"A citizen&#39;s PIN state", cf, "locked until", "Lift the lock (contact center)", `name="csrf" value="tok"`} {
		if code != http.StatusOK || !strings.Contains(body, want) {
			t.Fatalf("state page lacks %q: %d %s", want, code, body)
		}
	}
	if strings.Contains(body, "Lift the lock (branch office)") || strings.Contains(body, "Abcd1234") {
		t.Fatalf("state page offers another role's channel or shows the PIN: %s", body)
	}
	code, body = postForm(t, srv.URL+"/unlock", url.Values{"fiscal_number": {cf}, "channel": {"contact_center"}})
	if code != http.StatusOK || !strings.Contains(body, "The lock is lifted") || !strings.Contains(body, "not locked") {
		t.Fatalf("unlock: %d %s", code, body)
	}
	events, err := f.store.ListAudit(ctx, cf)
	if err != nil {
		t.Fatal(err)
	}
	last := events[len(events)-1]
	if last.Operator != staffCF || last.Channel != "contact_center" || !strings.Contains(body, last.Event) {
		t.Fatalf("the lift is not audited under the staff member, or not shown: %+v", last)
	}
	if _, err := f.svc.Login(ctx, cf, "Abcd1234", "192.0.2.1"); err != nil {
		t.Fatalf("the PIN still does not work: %v", err)
	}
	for _, form := range []url.Values{
		{"fiscal_number": {cf}, "channel": {"post"}},
		{"fiscal_number": {"x"}, "channel": {"contact_center"}},
	} {
		if code, _ := postForm(t, srv.URL+"/unlock", form); code != http.StatusBadRequest {
			t.Fatalf("unlock %v: %d", form, code)
		}
	}
}

// TestConsoleConversionReview: the queue lists a request without its
// documents, the documents download as attachments, a rejection needs a
// reason, an approval makes the PIN dispositivo under the staff member's
// name, and a second review is refused.
func TestConsoleConversionReview(t *testing.T) {
	f := newFixture(t, storagetest.SQLite(t), after2021)
	ctx := context.Background()
	if err := f.svc.Seed(ctx, mario2Account(), "Abcd1234"); err != nil {
		t.Fatal(err)
	}
	c, err := f.svc.SubmitConversion(ctx, cf, pdf, png)
	if err != nil {
		t.Fatal(err)
	}
	const staffCF = "BNCLGU70B02F205F"
	srv := consoleAs(t, f.svc, staffCF, "it", idp.RoleOperatorSede)
	code, body := get(t, srv.URL+"/conversions")
	if code != http.StatusOK || !strings.Contains(body, "/conversions/"+c.ID) || strings.Contains(body, "%PDF") {
		t.Fatalf("queue: %d %s", code, body)
	}
	resp, err := http.Get(srv.URL + "/conversions/" + c.ID + "/form")
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !bytes.Equal(got, pdf) || !strings.HasPrefix(resp.Header.Get("Content-Disposition"), "attachment") || resp.Header.Get("Content-Type") != "application/pdf" {
		t.Fatalf("form download: %v %q", resp.Header, got)
	}
	for _, tc := range []struct {
		form url.Values
		code int
		want string
	}{
		{url.Values{"decision": {"reject"}}, http.StatusBadRequest, "Scrivi il motivo del rifiuto."},
		{url.Values{"decision": {"reject"}, "reason": {strings.Repeat("x", 501)}}, http.StatusBadRequest, "al massimo 500 caratteri"},
		{url.Values{"decision": {"maybe"}}, http.StatusBadRequest, "Richiesta non valida"},
	} {
		code, body := postForm(t, srv.URL+"/conversions/"+c.ID+"/review", tc.form)
		if code != tc.code || !strings.Contains(body, tc.want) {
			t.Fatalf("review %v: %d %s", tc.form, code, body)
		}
	}
	code, body = postForm(t, srv.URL+"/conversions/"+c.ID+"/review", url.Values{"decision": {"approve"}})
	if code != http.StatusOK || !strings.Contains(body, "Richiesta approvata.") || strings.Contains(body, "/conversions/"+c.ID) {
		t.Fatalf("approve: %d %s", code, body)
	}
	conv, err := f.store.GetConversion(ctx, c.ID)
	if err != nil || conv.Status != storage.ConversionApproved || conv.ReviewedBy != staffCF {
		t.Fatalf("approval not recorded under the staff member: %+v %v", conv, err)
	}
	acct, err := f.store.GetPINAccount(ctx, cf)
	if err != nil || !acct.Dispositivo {
		t.Fatalf("the PIN is not dispositivo: %v", err)
	}
	if code, _ := postForm(t, srv.URL+"/conversions/"+c.ID+"/review", url.Values{"decision": {"reject"}, "reason": {"no"}}); code != http.StatusConflict {
		t.Fatalf("second review: %d", code)
	}
	if code, _ := get(t, srv.URL+"/conversions/"+c.ID); code != http.StatusNotFound {
		t.Fatalf("a reviewed request still opens: %d", code)
	}
}

// TestConsoleParkedRequeued: a message the dispatcher gave up on is listed
// (no body, no secret) and requeued from the page, audited under the staff
// member; an unknown one is a 404 page; the roles are tested in
// TestConsoleRoles.
func TestConsoleParkedRequeued(t *testing.T) {
	f := newFixture(t, storagetest.SQLite(t), before2021)
	ctx := context.Background()
	if _, err := f.svc.RequestPIN(ctx, mario(), pin.ChannelOnline, "", ""); err != nil {
		t.Fatal(err)
	}
	post := senderFunc(func(context.Context, delivery.Outgoing) error {
		return fmt.Errorf("%w: no such street", delivery.ErrPermanent)
	})
	d, err := delivery.New(delivery.Config{Outbox: f.store, Box: f.box, Now: f.clock.Now,
		Senders: map[string]delivery.Sender{"post": post}, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	if _, failed, err := d.RunOnce(ctx); err != nil || failed != 1 {
		t.Fatalf("first run: %d failed, %v", failed, err)
	}
	parked, err := f.svc.ParkedMessages(ctx)
	if err != nil || len(parked) != 1 {
		t.Fatalf("parked: %d %v", len(parked), err)
	}
	const staffCF = "BNCLGU70B02F205F"
	srv := consoleAs(t, f.svc, staffCF, "en", idp.RoleOperatorSede)
	code, body := get(t, srv.URL+"/parked")
	if code != http.StatusOK || !strings.Contains(body, "no such street") || !strings.Contains(body, "/parked/"+parked[0].ID+"/requeue") ||
		strings.Contains(body, parked[0].Body) {
		t.Fatalf("parked page: %d %s", code, body)
	}
	if code, _ := postForm(t, srv.URL+"/parked/nope/requeue", nil); code != http.StatusNotFound {
		t.Fatalf("unknown message: %d", code)
	}
	code, body = postForm(t, srv.URL+"/parked/"+parked[0].ID+"/requeue", nil)
	if code != http.StatusOK || !strings.Contains(body, "queued again") || !strings.Contains(body, "No message is parked.") {
		t.Fatalf("requeue: %d %s", code, body)
	}
	events, _ := f.store.ListAudit(ctx, cf)
	if last := events[len(events)-1]; last.Event != "message_requeued" || last.Operator != staffCF {
		t.Fatalf("requeue not audited under the staff member: %+v", last)
	}
}

// TestConsoleCallbacks: the contact center sees a request waiting for a
// callback with the number on record to call and what differs, and records
// the outcome; a second outcome for the same request is a 404 page.
func TestConsoleCallbacks(t *testing.T) {
	f := newFixture(t, storagetest.SQLite(t), before2021)
	ctx := context.Background()
	old := marioAccount()
	old.PreferredPhone = "+390612345678"
	if err := f.store.CreatePINAccount(ctx, old); err != nil {
		t.Fatal(err)
	}
	req := mario()
	req.PreferredPhone, req.Email = "+5491199999999", "someone@example.it"
	if _, err := f.svc.RequestPIN(ctx, req, pin.ChannelOnline, "", ""); err != nil {
		t.Fatal(err)
	}
	waiting, err := f.svc.WaitingRequests(ctx, 0)
	if err != nil || len(waiting) != 1 {
		t.Fatalf("waiting: %d %v", len(waiting), err)
	}
	const staffCF = "BNCLGU70B02F205F"
	srv := consoleAs(t, f.svc, staffCF, "it", idp.RoleOperatorContactCenter)
	code, body := get(t, srv.URL+"/callbacks")
	for _, want := range []string{"&#43;390612345678", "un numero già in archivio", "recapiti", "someone@example.it", "/callbacks/" + waiting[0].ID} {
		if code != http.StatusOK || !strings.Contains(body, want) {
			t.Fatalf("callbacks page lacks %q: %d %s", want, code, body)
		}
	}
	if code, _ := postForm(t, srv.URL+"/callbacks/"+waiting[0].ID, url.Values{"outcome": {"maybe"}}); code != http.StatusBadRequest {
		t.Fatalf("bad outcome: %d", code)
	}
	code, body = postForm(t, srv.URL+"/callbacks/"+waiting[0].ID, url.Values{"outcome": {"refused"}})
	if code != http.StatusOK || !strings.Contains(body, "Richiesta annullata.") || !strings.Contains(body, "Nessuna richiesta attende") {
		t.Fatalf("refuse: %d %s", code, body)
	}
	if code, _ := postForm(t, srv.URL+"/callbacks/"+waiting[0].ID, url.Values{"outcome": {"confirmed"}}); code != http.StatusNotFound {
		t.Fatalf("second outcome: %d", code)
	}
	events, _ := f.store.ListAudit(ctx, cf)
	if last := events[len(events)-1]; last.Operator != staffCF {
		t.Fatalf("outcome not audited under the staff member: %+v", last)
	}
}

// TestConsoleIssueAndRevoke: a branch-office operator issues a PIN (MV35):
// a form with mistakes names each field in Italian and issues nothing; the
// good one answers the envelope sheet with the 16 characters (never stored),
// audited under the staff member; a second issue gives a new PIN; a revocation asks for confirmation first, then ends the PIN.
func TestConsoleIssueAndRevoke(t *testing.T) {
	f := newFixture(t, storagetest.SQLite(t), after2021)
	ctx := context.Background()
	const staffCF = "BNCLGU70B02F205F"
	srv := consoleAs(t, f.svc, staffCF, "it", idp.RoleOperatorSede)
	code, body := get(t, srv.URL+"/issue")
	if code != http.StatusOK || !strings.Contains(body, `id="f-document"`) || strings.Contains(body, `name="first_half_via"`) {
		t.Fatalf("issue form: %d %s", code, body)
	}
	m := mario()
	good := url.Values{"fiscal_number": {m.FiscalNumber}, "given_name": {m.GivenName}, "family_name": {m.FamilyName}, "gender": {m.Gender},
		"birthdate": {m.Birthdate}, "birth_place": {m.BirthPlace}, "street": {m.Residence.Street}, "number": {m.Residence.Number},
		"postal_code": {m.Residence.PostalCode}, "city": {m.Residence.City}, "province": {m.Residence.Province},
		"mobile": {m.Mobile}, "email": {m.Email}, "document": {"CI CA12345AB"}}
	bad := url.Values{}
	for k, v := range good {
		bad[k] = v
	}
	bad.Set("birthdate", "1990-01-01")
	bad.Del("document")
	code, body = postForm(t, srv.URL+"/issue", bad)
	if code != http.StatusUnprocessableEntity || !strings.Contains(body, "Indica il documento di identità") || !strings.Contains(body, `href="#f-birthdate"`) ||
		!strings.Contains(body, `aria-invalid="true"`) {
		t.Fatalf("bad issue: %d %s", code, body)
	}
	if _, err := f.store.GetPINAccount(ctx, cf); err == nil {
		t.Fatal("a refused issue created a PIN")
	}
	code, body = postForm(t, srv.URL+"/issue", good)
	groups := regexp.MustCompile(`class="pin"[^>]*>((?:[A-Za-z0-9]{4} ){4})`).FindStringSubmatch(body)
	if code != http.StatusCreated || groups == nil || !strings.Contains(body, "operatore "+staffCF) {
		t.Fatalf("issue: %d %s", code, body)
	}
	pin16 := strings.ReplaceAll(groups[1], " ", "")
	if _, err := f.svc.Login(ctx, cf, pin16, "192.0.2.1"); err != nil {
		t.Fatalf("the printed PIN does not work: %v", err)
	}
	events, _ := f.store.ListAudit(ctx, cf)
	if len(events) == 0 || !strings.HasPrefix(events[0].Operator, staffCF+" doc:CI CA12345AB") || events[0].Channel != pin.ChannelBranch {
		t.Fatalf("issue not audited under the staff member: %+v", events)
	}
	// The citizen at the counter again (a lost envelope): a new PIN replaces the first.
	code, body = postForm(t, srv.URL+"/issue", good)
	again := regexp.MustCompile(`class="pin"[^>]*>((?:[A-Za-z0-9]{4} ){4})`).FindStringSubmatch(body)
	if code != http.StatusCreated || again == nil || again[1] == groups[1] {
		t.Fatalf("second issue: %d %s", code, body)
	}

	code, body = postForm(t, srv.URL+"/citizen", url.Values{"fiscal_number": {m.FiscalNumber}})
	if code != http.StatusOK || !strings.Contains(body, "Revoca il PIN (sede)") {
		t.Fatalf("state page: %d %s", code, body)
	}
	code, body = postForm(t, srv.URL+"/revoke", url.Values{"fiscal_number": {m.FiscalNumber}, "channel": {"sede"}})
	if code != http.StatusOK || !strings.Contains(body, "Conferma la revoca") || !strings.Contains(body, `name="confirm" value="yes"`) {
		t.Fatalf("revoke confirmation: %d %s", code, body)
	}
	if a, _ := f.store.GetPINAccount(ctx, cf); a.Status == storage.PINRevoked {
		t.Fatal("revoked without confirmation")
	}
	code, body = postForm(t, srv.URL+"/revoke", url.Values{"fiscal_number": {m.FiscalNumber}, "channel": {"sede"}, "confirm": {"yes"}})
	if code != http.StatusOK || !strings.Contains(body, "Il PIN è revocato") || strings.Contains(body, "Revoca il PIN (sede)") {
		t.Fatalf("revoke: %d %s", code, body)
	}
	if a, _ := f.store.GetPINAccount(ctx, cf); a.Status != storage.PINRevoked {
		t.Fatalf("not revoked: %s", a.Status)
	}
	events, _ = f.store.ListAudit(ctx, cf)
	if last := events[len(events)-1]; last.Operator != staffCF {
		t.Fatalf("revocation not audited under the staff member: %+v", last)
	}
}

// TestConsoleContactCenterRequest: a contact-center operator registers a
// request by phone (the operator API's channel contact_center): the form
// keeps the callback and first-half fields and asks for no document; a form
// with mistakes names each field and issues nothing; the good one shows the
// first half to read out (the one sent to the chosen contact), audited under
// the staff member; the same request again is refused (a live PIN), one that
// differs from the record waits for a callback. A branch-office operator is
// refused the form (TestConsoleRoles has every role).
func TestConsoleContactCenterRequest(t *testing.T) {
	f := newFixture(t, storagetest.SQLite(t), before2021)
	ctx := context.Background()
	const staffCF = "BNCLGU70B02F205F"
	srv := consoleAs(t, f.svc, staffCF, "it", idp.RoleOperatorContactCenter)
	code, body := get(t, srv.URL+"/request")
	if code != http.StatusOK || strings.Contains(body, `id="f-document"`) || !strings.Contains(body, `name="first_half_via"`) ||
		!strings.Contains(body, `action="/console/pin/request"`) || !strings.Contains(body, "Richiesta del PIN per telefono") {
		t.Fatalf("request form: %d %s", code, body)
	}
	if code, _ := get(t, consoleAs(t, f.svc, staffCF, "it", idp.RoleOperatorSede).URL+"/request"); code != http.StatusForbidden {
		t.Fatalf("a branch-office operator at the phone form: %d", code)
	}
	m := mario()
	good := url.Values{"fiscal_number": {m.FiscalNumber}, "given_name": {m.GivenName}, "family_name": {m.FamilyName}, "gender": {m.Gender},
		"birthdate": {m.Birthdate}, "birth_place": {m.BirthPlace}, "street": {m.Residence.Street}, "number": {m.Residence.Number},
		"postal_code": {m.Residence.PostalCode}, "city": {m.Residence.City}, "province": {m.Residence.Province},
		"mobile": {m.Mobile}, "email": {m.Email}, "preferred_phone": {m.PreferredPhone}, "callback_slot": {m.CallbackSlot}, "first_half_via": {"sms"}}
	bad := url.Values{}
	for k, v := range good {
		bad[k] = v
	}
	bad.Set("birthdate", "1990-01-01")
	bad.Set("first_half_via", "pigeon")
	code, body = postForm(t, srv.URL+"/request", bad)
	if code != http.StatusUnprocessableEntity || !strings.Contains(body, `href="#f-birthdate"`) || !strings.Contains(body, `href="#f-first_half_via"`) ||
		!strings.Contains(body, `aria-invalid="true"`) {
		t.Fatalf("bad request: %d %s", code, body)
	}
	if _, err := f.store.GetPINAccount(ctx, cf); err == nil {
		t.Fatal("a refused request created a PIN")
	}
	code, body = postForm(t, srv.URL+"/request", good)
	first := regexp.MustCompile(`class="pin"><strong>([A-Za-z0-9]{8})<`).FindStringSubmatch(body)
	if code != http.StatusCreated || first == nil {
		t.Fatalf("request: %d %s", code, body)
	}
	if sent := f.secrets()["sms"]; len(sent) != 1 || sent[0] != first[1] {
		t.Fatalf("the first half shown is not the one sent by SMS: %q %v", first[1], sent)
	}
	events, _ := f.store.ListAudit(ctx, cf)
	if len(events) == 0 || events[0].Operator != staffCF || events[0].Channel != pin.ChannelContactCenter {
		t.Fatalf("request not audited under the staff member: %+v", events)
	}
	if code, body := postForm(t, srv.URL+"/request", good); code != http.StatusConflict || !strings.Contains(body, "Richiesta non accolta") || strings.Contains(body, `class="pin"`) {
		t.Fatalf("the same request again: %d %s", code, body)
	}
	other := url.Values{}
	for k, v := range good {
		other[k] = v
	}
	other.Set("email", "someone@example.it")
	code, body = postForm(t, srv.URL+"/request", other)
	if code != http.StatusAccepted || !strings.Contains(body, "attende una richiamata") || strings.Contains(body, `class="pin"`) {
		t.Fatalf("a request that differs: %d %s", code, body)
	}
	if waiting, err := f.svc.WaitingRequests(ctx, 0); err != nil || len(waiting) != 1 || waiting[0].Operator != staffCF {
		t.Fatalf("waiting: %+v %v", waiting, err)
	}
}

// TestConsoleNotOnOwnPIN: a staff member cannot unlock, revoke, issue or
// approve the conversion of their own PIN (403, nothing changed), whatever
// their roles.
func TestConsoleNotOnOwnPIN(t *testing.T) {
	f := newFixture(t, storagetest.SQLite(t), after2021)
	ctx := context.Background()
	if err := f.svc.Seed(ctx, mario2Account(), "Abcd1234"); err != nil {
		t.Fatal(err)
	}
	c, err := f.svc.SubmitConversion(ctx, cf, pdf, png)
	if err != nil {
		t.Fatal(err)
	}
	srv := consoleAs(t, f.svc, strings.ToLower(cf), "it", idp.RoleOperatorSede, idp.RoleOperatorContactCenter)
	m := mario()
	for _, tc := range []struct {
		path string
		form url.Values
	}{
		{"/unlock", url.Values{"fiscal_number": {cf}, "channel": {"sede"}}},
		{"/revoke", url.Values{"fiscal_number": {cf}, "channel": {"contact_center"}, "confirm": {"yes"}}},
		{"/issue", url.Values{"fiscal_number": {m.FiscalNumber}, "given_name": {m.GivenName}, "family_name": {m.FamilyName}, "gender": {m.Gender},
			"birthdate": {m.Birthdate}, "birth_place": {m.BirthPlace}, "street": {"Via Roma"}, "number": {"1"}, "postal_code": {"00100"},
			"city": {"Roma"}, "province": {"RM"}, "email": {"m@example.it"}, "document": {"CI CA12345AB"}}},
		{"/conversions/" + c.ID + "/review", url.Values{"decision": {"approve"}}},
	} {
		if code, body := postForm(t, srv.URL+tc.path, tc.form); code != http.StatusForbidden || !strings.Contains(body, "sul tuo PIN") {
			t.Errorf("%s on one's own PIN: %d %s", tc.path, code, body)
		}
	}
	a, err := f.store.GetPINAccount(ctx, cf)
	if err != nil || a.Status != storage.PINActive || a.Dispositivo {
		t.Fatalf("the account changed: %+v %v", a.Status, err)
	}
	if got, _ := f.store.GetConversion(ctx, c.ID); got.Status != storage.ConversionPending {
		t.Fatalf("the conversion changed: %s", got.Status)
	}
}

// TestConsoleParallelReviews: operators reviewing the same request at once
// (approvals and rejections): exactly one succeeds, the others are told it
// was already reviewed (409), and one review is audited; on SQLite and on
// PostgreSQL.
func TestConsoleParallelReviews(t *testing.T) {
	for _, be := range storagetest.Backends() {
		t.Run(be.Name, func(t *testing.T) {
			f := newFixture(t, be.Open(t), after2021)
			ctx := context.Background()
			if err := f.svc.Seed(ctx, mario2Account(), "Abcd1234"); err != nil {
				t.Fatal(err)
			}
			c, err := f.svc.SubmitConversion(ctx, cf, pdf, png)
			if err != nil {
				t.Fatal(err)
			}
			srv := consoleAs(t, f.svc, "BNCLGU70B02F205F", "it", idp.RoleOperatorSede)
			const n = 8
			codes := make([]int, n)
			var wg sync.WaitGroup
			for i := range n {
				wg.Go(func() {
					form := url.Values{"decision": {"approve"}}
					if i%2 == 1 {
						form = url.Values{"decision": {"reject"}, "reason": {"documento scaduto"}}
					}
					codes[i], _ = postForm(t, srv.URL+"/conversions/"+c.ID+"/review", form)
				})
			}
			wg.Wait()
			ok, conflict := 0, 0
			for _, code := range codes {
				switch code {
				case http.StatusOK:
					ok++
				case http.StatusConflict:
					conflict++
				}
			}
			if ok != 1 || conflict != n-1 {
				t.Fatalf("parallel reviews: %v", codes)
			}
			events, _ := f.store.ListAudit(ctx, cf)
			reviews := 0
			for _, e := range events {
				if e.Event == "converted" || (strings.HasPrefix(e.Event, "conversion_") && e.Event != "conversion_requested") {
					reviews++
				}
			}
			if reviews != 1 {
				t.Fatalf("%d reviews audited: %+v", reviews, events)
			}
		})
	}
}
