package provider_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"

	"golang.org/x/oauth2"

	"github.com/ponte-id/ponte/idp"
	"github.com/ponte-id/ponte/idp/clients"
	"github.com/ponte-id/ponte/storage"
	"github.com/ponte-id/ponte/storage/storagetest"
)

// clientLookups counts GetClient calls: fosite's first use of storage on the
// token, revocation, PAR and authorization endpoints (after it has parsed the
// body), and the introspection endpoint's own check. A request refused at the
// door makes none.
type clientLookups struct {
	storage.Store
	n atomic.Int32
}

func (s *clientLookups) GetClient(ctx context.Context, id string) (storage.Client, error) {
	s.n.Add(1)
	return s.Store.GetClient(ctx, id)
}

// multipartBody is a multipart form holding form and a file of size bytes.
func multipartBody(t *testing.T, form url.Values, size int) (*bytes.Buffer, string) {
	t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	for k, vs := range form {
		for _, v := range vs {
			_ = mw.WriteField(k, v)
		}
	}
	fw, err := mw.CreateFormFile("upload", "big.bin")
	if err != nil {
		t.Fatal(err)
	}
	_, _ = fw.Write(bytes.Repeat([]byte("x"), size))
	if err := mw.Close(); err != nil {
		t.Fatal(err)
	}
	return &buf, mw.FormDataContentType()
}

// unsized hides a body's length, so that it is sent chunked.
type unsized struct{ io.Reader }

// TestFormBodiesOnly: the OAuth endpoints and the browser's POSTs take only
// form-encoded bodies of modest size. A multipart body is refused before fosite
// parses it (ParseMultipartForm would hold or spool it, before any client
// authentication): 415 with an RFC 6749 error, or a page for a browser; a body
// declared larger than the limit is refused with 413 before it is read.
func TestFormBodiesOnly(t *testing.T) {
	store := &clientLookups{Store: storagetest.SQLite(t)}
	e := newEnv(t, store)
	r := e.NewRP(clients.Spec{})
	fields := url.Values{"grant_type": {"authorization_code"}, "code": {"x"}, "token": {"x"}, "redirect_uri": {redirectURI},
		"client_id": {r.ID}, "response_type": {"code"}, "scope": {"openid"}, "state": {randomString()}}

	for _, path := range []string{"/token", "/par", "/revoke", "/introspect", "/authorize", "/logout"} {
		oauthJSON := path != "/authorize" && path != "/logout"
		for _, tc := range []struct {
			name    string
			size    int
			chunked bool
			status  int
		}{
			{"small multipart", 1 << 10, false, http.StatusUnsupportedMediaType},
			{"1 MiB multipart, declared", 1 << 20, false, http.StatusRequestEntityTooLarge},
			{"1 MiB multipart, chunked", 1 << 20, true, http.StatusUnsupportedMediaType},
		} {
			t.Run(strings.TrimPrefix(path, "/")+"/"+tc.name, func(t *testing.T) {
				before := store.n.Load()
				body, ct := multipartBody(t, fields, tc.size)
				var rd io.Reader = body
				if tc.chunked {
					rd = unsized{body}
				}
				req, _ := http.NewRequest(http.MethodPost, e.Issuer+path, rd)
				req.Header.Set("Content-Type", ct)
				req.SetBasicAuth(url.QueryEscape(r.ID), url.QueryEscape(r.Secret))
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				got, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if n := store.n.Load() - before; n != 0 {
					t.Errorf("the request reached client authentication (%d lookups)", n)
				}
				if resp.StatusCode != tc.status {
					t.Fatalf("status %d, want %d: %.300s", resp.StatusCode, tc.status, got)
				}
				if tc.status != http.StatusUnsupportedMediaType {
					return
				}
				if !oauthJSON {
					if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/html") {
						t.Errorf("Content-Type %q, want a page", ct)
					}
					return
				}
				var oe struct {
					Error       string `json:"error"`
					Description string `json:"error_description"`
				}
				if err := json.Unmarshal(got, &oe); err != nil || oe.Error != "invalid_request" || oe.Description == "" {
					t.Errorf("body %s: want an RFC 6749 invalid_request error (%v)", got, err)
				}
				if resp.Header.Get("Cache-Control") != "no-store" {
					t.Errorf("Cache-Control %q", resp.Header.Get("Cache-Control"))
				}
			})
		}
	}

	t.Run("oversized form", func(t *testing.T) {
		big := url.Values{"grant_type": {"authorization_code"}, "code": {strings.Repeat("x", 70<<10)}}
		req, _ := http.NewRequest(http.MethodPost, e.Issuer+"/token", strings.NewReader(big.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth(url.QueryEscape(r.ID), url.QueryEscape(r.Secret))
		before := store.n.Load()
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusRequestEntityTooLarge || store.n.Load() != before {
			t.Fatalf("status %d after %d lookups, want 413 before any", resp.StatusCode, store.n.Load()-before)
		}
	})

	t.Run("a body with no type", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodPost, e.Issuer+"/token", strings.NewReader("grant_type=authorization_code"))
		req.SetBasicAuth(url.QueryEscape(r.ID), url.QueryEscape(r.Secret))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnsupportedMediaType {
			t.Fatalf("status %d, want 415", resp.StatusCode)
		}
	})

	// Form-encoded requests still work: the code flow, a refresh, an
	// introspection and a revocation (with a charset parameter).
	t.Run("forms still work", func(t *testing.T) {
		tok, _, _ := codeFlow(r, newBrowser(t), citizenCF, idp.LevelConsultazione)
		if !introspect(t, r, tok.AccessToken) {
			t.Fatal("fresh access token is not active")
		}
		refreshed, err := r.Conf.TokenSource(r.Ctx(), &oauth2.Token{RefreshToken: tok.RefreshToken}).Token()
		if err != nil {
			t.Fatalf("refresh: %v", err)
		}
		req, _ := http.NewRequest(http.MethodPost, e.Issuer+"/revoke", strings.NewReader(url.Values{"token": {refreshed.AccessToken}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded; charset=UTF-8")
		req.SetBasicAuth(url.QueryEscape(r.ID), url.QueryEscape(r.Secret))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("revoke: %d", resp.StatusCode)
		}
		if introspect(t, r, refreshed.AccessToken) {
			t.Fatal("revoked access token is still active")
		}
	})
}
