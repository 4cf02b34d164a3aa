package provider_test

import (
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/ponte-id/ponte/idp"
	"github.com/ponte-id/ponte/internal/oidctest"
	"github.com/ponte-id/ponte/storage/storagetest"
)

// uploadAuth is the test login method with the optional capability of a
// larger request body (idp.BodyLimit), as a method with an upload has.
type uploadAuth struct{ testAuth }

func (uploadAuth) Method() idp.Method  { return "upload" }
func (uploadAuth) MaxBodyBytes() int64 { return 1 << 20 }

// TestMethodBodyLimit: a login method that declares a larger body limit gets
// it below its prefix, and only there.
func TestMethodBodyLimit(t *testing.T) {
	e := oidctest.Start(t, storagetest.SQLite(t), oidctest.Options{
		Methods: func(string) []idp.Authenticator { return []idp.Authenticator{testAuth{}, uploadAuth{}} },
	})
	body := url.Values{"challenge": {"x"}, "pad": {strings.Repeat("x", 512<<10)}}.Encode()
	for _, tc := range []struct {
		path   string
		status int
	}{
		{"/login/test/", http.StatusRequestEntityTooLarge},
		{"/login/upload/", http.StatusBadRequest}, // read whole, then the challenge is unknown
	} {
		resp, err := http.Post(e.Issuer+tc.path, "application/x-www-form-urlencoded", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.status {
			t.Errorf("%s: %d %.100s, want %d", tc.path, resp.StatusCode, got, tc.status)
		}
	}
}
