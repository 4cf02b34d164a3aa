package pin_test

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"golang.org/x/net/http/httpguts"

	"github.com/ponte-id/ponte/adapters/pin"
	"github.com/ponte-id/ponte/storage/storagetest"
)

// formPaths are the PIN's forms a stranger can post.
var formPaths = []string{"/", "/change", "/request", "/activate", "/recover", "/recover/confirm", "/revoke", "/convert"}

// FuzzForms posts arbitrary bodies to every PIN form of a real site (a
// citizen on record): each answers a page, never a 5xx or a stack trace.
func FuzzForms(f *testing.F) {
	s := newSite(f, storagetest.SQLite(f), func(c *pin.Config) {
		c.Limits.PerIP, c.Throttle.FreeIPFailures, c.Throttle.FreeAccountFailures = 1<<30, 1<<30, 1<<30
	})
	if err := s.svc.Seed(context.Background(), marioAccount(), "Abcd1234"); err != nil {
		f.Fatal(err)
	}
	mario := url.Values{"fiscal_number": {cf}, "given_name": {"Mario"}, "family_name": {"Rossi"}, "gender": {"M"},
		"birthdate": {"1980-01-01"}, "birth_place": {"Roma"}, "street": {"Via Roma"}, "number": {"1"}, "postal_code": {"00100"},
		"city": {"Roma"}, "province": {"RM"}, "mobile": {"+393331234567"}, "email": {"mario.rossi@example.it"}}
	for i := range formPaths {
		f.Add(uint8(i), mario.Encode(), "application/x-www-form-urlencoded")
		f.Add(uint8(i), "fiscal_number="+cf+"&pin=Abcd1234&challenge=x", "application/x-www-form-urlencoded")
		f.Add(uint8(i), "fiscal_number=%ff%00&pin=%zz&email=a@@b&birthdate=9999-99-99", "application/x-www-form-urlencoded")
		f.Add(uint8(i), "--b\r\nContent-Disposition: form-data; name=\"document\"; filename=\"a.pdf\"\r\n\r\n%PDF\r\n--b--\r\n", "multipart/form-data; boundary=b")
	}
	f.Fuzz(func(t *testing.T, path uint8, body, contentType string) {
		if !httpguts.ValidHeaderFieldValue(contentType) {
			return // the client would not send it
		}
		u := s.env.Issuer + "/login/pin" + formPaths[int(path)%len(formPaths)]
		req, err := http.NewRequest(http.MethodPost, u, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", contentType)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		page, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode >= 500 && resp.StatusCode != http.StatusServiceUnavailable || strings.Contains(string(page), "goroutine ") {
			t.Fatalf("POST %s %q (%s): %d %.300s", u, body, contentType, resp.StatusCode, page)
		}
	})
}
