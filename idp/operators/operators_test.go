package operators

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/ponte-id/ponte/idp"
)

func TestRequire(t *testing.T) {
	reg, err := Parse([]string{"op-1=" + HashToken("secret-one"), "op-2=" + HashToken("secret-two")})
	if err != nil {
		t.Fatal(err)
	}
	h := reg.Require(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte(idp.OperatorFrom(r.Context())))
	}))
	cases := []struct {
		header, wantBody string
		wantStatus       int
	}{
		{"Bearer secret-one", "op-1", 200},
		{"Bearer secret-two", "op-2", 200},
		{"Bearer secret-three", "", 401},
		{"Basic c2VjcmV0LW9uZQ==", "", 401},
		{"", "", 401},
	}
	for _, tc := range cases {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest(http.MethodGet, "/", nil)
		if tc.header != "" {
			req.Header.Set("Authorization", tc.header)
		}
		h.ServeHTTP(rec, req)
		if rec.Code != tc.wantStatus || (tc.wantStatus == 200 && rec.Body.String() != tc.wantBody) {
			t.Errorf("%q: %d %q", tc.header, rec.Code, rec.Body.String())
		}
	}
	if _, err := Parse([]string{"op=short", "=" + HashToken("x"), "nohash"}); err == nil {
		t.Fatal("bad entries accepted")
	}
}
