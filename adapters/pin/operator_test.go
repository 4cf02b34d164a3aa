package pin_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"github.com/ponte-id/ponte/adapters/pin"
	"github.com/ponte-id/ponte/adapters/pin/delivery"
	"github.com/ponte-id/ponte/idp/operators"
	"github.com/ponte-id/ponte/storage"
	"github.com/ponte-id/ponte/storage/storagetest"
)

// operatorAPI serves the PIN operator API behind operator tokens, as cmd mounts it.
func operatorAPI(t *testing.T, f *fixture) *httptest.Server {
	reg, err := operators.Parse([]string{"op-7=" + operators.HashToken("token-7")})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(reg.Require(f.svc.OperatorHandler()))
	t.Cleanup(srv.Close)
	return srv
}

func call(t *testing.T, method, url, token string, body any) (int, []byte) {
	t.Helper()
	var r io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		r = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, url, r)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, out
}

func TestOperatorAPI(t *testing.T) {
	f := newFixture(t, storagetest.SQLite(t), after2021)
	srv := operatorAPI(t, f)
	ctx := context.Background()

	if code, _ := call(t, "GET", srv.URL+"/conversions", "", nil); code != http.StatusUnauthorized {
		t.Fatalf("no token: %d", code)
	}
	// The contact center after the 2021 switch: a resident in Italy is refused.
	code, body := call(t, "POST", srv.URL+"/requests", "token-7", map[string]any{"channel": "contact_center", "request": mario()})
	if code != http.StatusConflict || !strings.Contains(string(body), "residents abroad") {
		t.Fatalf("contact center after the switch: %d %s", code, body)
	}
	code, body = call(t, "POST", srv.URL+"/requests", "token-7", map[string]any{"channel": "contact_center", "request": map[string]any{"fiscal_number": "x"}})
	if code != http.StatusUnprocessableEntity || !strings.Contains(string(body), "fields") {
		t.Fatalf("bad data: %d %s", code, body)
	}
	if code, _ := call(t, "POST", srv.URL+"/requests", "token-7", map[string]any{"channel": "delegate", "request": mario()}); code != http.StatusBadRequest {
		t.Fatalf("no delegate channel: %d", code)
	}
	// MV35 at a branch office: the 16 characters for the envelope.
	code, body = call(t, "POST", srv.URL+"/requests", "token-7", map[string]any{"channel": "sede", "document": "CI AB1234567", "request": mario()})
	var issued struct{ PIN string }
	_ = json.Unmarshal(body, &issued)
	if code != http.StatusCreated || len(issued.PIN) != 16 {
		t.Fatalf("MV35: %d %s", code, body)
	}
	if _, err := f.svc.ChangePIN(ctx, cf, "Sede2024"); err != nil {
		t.Fatal(err)
	}
	// A conversion in the queue, its documents, the review.
	if err := f.svc.Seed(ctx, storage.PINAccount{FiscalNumber: "BNCLRA90D55F205C", Email: "laura@example.it"}, "Abcd1234"); err != nil {
		t.Fatal(err)
	}
	c, err := f.svc.SubmitConversion(ctx, "BNCLRA90D55F205C", pdf, png)
	if err != nil {
		t.Fatal(err)
	}
	code, body = call(t, "GET", srv.URL+"/conversions", "token-7", nil)
	if code != http.StatusOK || !strings.Contains(string(body), c.ID) || strings.Contains(string(body), "%PDF") {
		t.Fatalf("queue: %d %s", code, body)
	}
	if code, body = call(t, "GET", srv.URL+"/conversions/"+c.ID+"/form", "token-7", nil); code != http.StatusOK || !bytes.Equal(body, pdf) {
		t.Fatalf("form: %d", code)
	}
	if code, _ := call(t, "POST", srv.URL+"/conversions/"+c.ID+"/review", "token-7", map[string]any{"approve": false}); code != http.StatusConflict {
		t.Fatalf("a rejection without reason: %d", code)
	}
	if code, _ := call(t, "POST", srv.URL+"/conversions/"+c.ID+"/review", "token-7", map[string]any{"approve": true}); code != http.StatusNoContent {
		t.Fatalf("approve: %d", code)
	}
	if code, _ := call(t, "POST", srv.URL+"/callbacks", "token-7", map[string]any{"request_id": "nope", "confirmed": true}); code != http.StatusNotFound {
		t.Fatalf("a callback for a request that waits for none: %d", code)
	}
	if code, _ := call(t, "POST", srv.URL+"/revocations", "token-7", map[string]any{"fiscal_number": cf, "channel": "sede"}); code != http.StatusNoContent {
		t.Fatalf("revoke: %d", code)
	}
	code, body = call(t, "GET", srv.URL+"/audit/"+cf, "token-7", nil)
	var events []storage.AuditEvent
	_ = json.Unmarshal(body, &events)
	last := events[len(events)-1]
	if code != http.StatusOK || last.Event != "revoked" || last.Operator != "op-7" || last.Channel != "sede" {
		t.Fatalf("audit: %d %+v", code, last)
	}
	if _, err := f.svc.Login(ctx, cf, "Sede2024", ""); err != pin.ErrRevoked {
		t.Fatalf("after an operator revocation: %v", err)
	}
}

// TestMV35Envelope: asked for HTML, an MV35 issue answers with the sheet for
// the sealed envelope, whose PIN (printed in blocks of four) logs in at the
// dispositivo level and asks for a new PIN at first access.
func TestMV35Envelope(t *testing.T) {
	f := newFixture(t, storagetest.SQLite(t), after2021)
	srv := operatorAPI(t, f)
	b, _ := json.Marshal(map[string]any{"channel": "sede", "document": "CI AB1234567", "request": mario()})
	req, _ := http.NewRequest("POST", srv.URL+"/requests", bytes.NewReader(b))
	req.Header.Set("Authorization", "Bearer token-7")
	req.Header.Set("Accept", "text/html")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") ||
		resp.Header.Get("Cache-Control") != "no-store" {
		t.Fatalf("envelope: %d %v", resp.StatusCode, resp.Header)
	}
	for _, want := range []string{cf, "Via Roma 1", "00100 Roma (RM)", "op-7"} {
		if !bytes.Contains(page, []byte(want)) {
			t.Errorf("the envelope lacks %q", want)
		}
	}
	m := regexp.MustCompile(`class="pin"[^>]*>((?:[A-Z0-9]{4} ){4})<`).FindSubmatch(page)
	if m == nil {
		t.Fatalf("no PIN in blocks of four on the envelope:\n%s", page)
	}
	res, err := f.svc.Login(context.Background(), cf, strings.ReplaceAll(string(m[1]), " ", ""), "")
	if err != nil || res.Change != pin.ChangeFirstAccess || !res.Account.Dispositivo {
		t.Fatalf("login with the printed PIN: %+v %v; want first access, dispositivo", res, err)
	}
}

// senderFunc is a delivery.Sender from a function.
type senderFunc func(context.Context, delivery.Outgoing) error

func (f senderFunc) Send(ctx context.Context, m delivery.Outgoing) error { return f(ctx, m) }

// TestRequeueParked: a letter the post refuses is parked by the dispatcher;
// operators list it (without body or secret), requeue it, and the next run
// delivers it with its PIN half. The requeue is audited.
func TestRequeueParked(t *testing.T) {
	f := newFixture(t, storagetest.SQLite(t), before2021)
	srv := operatorAPI(t, f)
	ctx := context.Background()
	if _, err := f.svc.RequestPIN(ctx, mario(), pin.ChannelOnline, "", ""); err != nil {
		t.Fatal(err)
	}
	var delivered []delivery.Outgoing
	refuse := true
	post := senderFunc(func(_ context.Context, m delivery.Outgoing) error {
		if refuse {
			return fmt.Errorf("%w: no such street", delivery.ErrPermanent)
		}
		delivered = append(delivered, m)
		return nil
	})
	d, err := delivery.New(delivery.Config{Outbox: f.store, Box: f.box, Now: f.clock.Now,
		Senders: map[string]delivery.Sender{"post": post}, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	if _, failed, err := d.RunOnce(ctx); err != nil || failed != 1 {
		t.Fatalf("first run: %d failed, %v", failed, err)
	}

	code, body := call(t, "GET", srv.URL+"/outbox/parked", "token-7", nil)
	var parked []struct {
		ID        string `json:"id"`
		Channel   string `json:"channel"`
		LastError string `json:"last_error"`
	}
	_ = json.Unmarshal(body, &parked)
	if code != http.StatusOK || len(parked) != 1 || parked[0].Channel != "post" || !strings.Contains(parked[0].LastError, "no such street") {
		t.Fatalf("parked: %d %s", code, body)
	}
	if bytes.Contains(body, []byte("secret")) || bytes.Contains(body, []byte("body")) {
		t.Fatalf("the listing shows a body or a secret: %s", body)
	}
	for _, tc := range []struct {
		name, id string
		want     int
	}{
		{"unknown", "nope", http.StatusNotFound},
		{"parked", parked[0].ID, http.StatusNoContent},
	} {
		if code, body := call(t, "POST", srv.URL+"/outbox/"+tc.id+"/requeue", "token-7", nil); code != tc.want {
			t.Fatalf("requeue %s: %d %s, want %d", tc.name, code, body, tc.want)
		}
	}

	refuse = false
	if sent, _, err := d.RunOnce(ctx); err != nil || sent != 1 || len(delivered) != 1 || !regexp.MustCompile(`[A-Z2-9]{8}`).MatchString(delivered[0].Body) {
		t.Fatalf("after requeue: %d sent, %v, %+v", sent, err, delivered)
	}
	if code, body := call(t, "GET", srv.URL+"/outbox/parked", "token-7", nil); code != http.StatusOK || string(bytes.TrimSpace(body)) != "[]" {
		t.Fatalf("parked after delivery: %d %s", code, body)
	}
	events, _ := f.store.ListAudit(ctx, cf)
	if last := events[len(events)-1]; last.Event != "message_requeued" || last.Operator != "op-7" || last.Channel != "post" {
		t.Fatalf("audit: %+v", last)
	}
}

// TestConversionUpload sends the documents through the citizen's page.
func TestConversionUpload(t *testing.T) {
	s := newSite(t, storagetest.SQLite(t))
	if err := s.svc.Seed(context.Background(), storage.PINAccount{FiscalNumber: cf, Email: "mario@example.it"}, "Abcd1234"); err != nil {
		t.Fatal(err)
	}
	post := func(secret string, form, doc []byte) string {
		var buf bytes.Buffer
		mw := multipart.NewWriter(&buf)
		_ = mw.WriteField("fiscal_number", cf)
		_ = mw.WriteField("pin", secret)
		for name, data := range map[string][]byte{"form": form, "document": doc} {
			fw, _ := mw.CreateFormFile(name, name+".bin")
			_, _ = fw.Write(data)
		}
		_ = mw.Close()
		resp, err := http.Post(s.env.Issuer+"/login/pin/convert", mw.FormDataContentType(), &buf)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	if body := post("wrong", pdf, png); !strings.Contains(body, "non corretti") {
		t.Fatalf("wrong PIN: %.300s", body)
	}
	if body := post("Abcd1234", []byte("<html>not a pdf</html>"), png); !strings.Contains(body, "PDF, JPEG o PNG") {
		t.Fatalf("wrong type: %.300s", body)
	}
	if body := post("Abcd1234", pdf, png); !strings.Contains(body, "inviata") {
		t.Fatalf("upload: %.300s", body)
	}
	if q, _ := s.svc.PendingConversions(context.Background()); len(q) != 1 {
		t.Fatalf("queue: %d", len(q))
	}
}
