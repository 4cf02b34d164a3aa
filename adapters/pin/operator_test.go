package pin_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/ponte-id/ponte/adapters/pin"
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
	if code, _ := call(t, "POST", srv.URL+"/callbacks", "token-7", map[string]any{"fiscal_number": cf, "confirmed": true}); code != http.StatusConflict {
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
