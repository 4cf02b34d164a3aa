package operators

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/ponte-id/ponte/idp"
)

func TestRequire(t *testing.T) {
	reg, err := Parse([]string{"op-1=" + HashToken("secret-one"), " op-2=" + HashToken("secret-two") + " "})
	if err != nil {
		t.Fatal(err)
	}
	h := reg.Require(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte(idp.OperatorFrom(r.Context())))
	}))
	cases := []struct {
		name, header, wantBody string
		wantStatus             int
	}{
		{"first operator", "Bearer secret-one", "op-1", http.StatusOK},
		{"second operator, entry with spaces", "Bearer secret-two", "op-2", http.StatusOK},
		{"unknown token", "Bearer secret-three", "", http.StatusUnauthorized},
		{"hash instead of token", "Bearer " + HashToken("secret-one"), "", http.StatusUnauthorized},
		{"token with a suffix", "Bearer secret-one ", "", http.StatusUnauthorized},
		{"basic scheme", "Basic c2VjcmV0LW9uZQ==", "", http.StatusUnauthorized},
		{"bare token", "secret-one", "", http.StatusUnauthorized},
		{"empty bearer", "Bearer ", "", http.StatusUnauthorized},
		{"no header", "", "", http.StatusUnauthorized},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			req := httptest.NewRequest(http.MethodGet, "/", nil)
			if tc.header != "" {
				req.Header.Set("Authorization", tc.header)
			}
			h.ServeHTTP(rec, req)
			if rec.Code != tc.wantStatus {
				t.Fatalf("status %d, want %d", rec.Code, tc.wantStatus)
			}
			if tc.wantStatus == http.StatusOK {
				if rec.Body.String() != tc.wantBody {
					t.Errorf("operator %q, want %q", rec.Body.String(), tc.wantBody)
				}
				return
			}
			if got := rec.Header().Get("WWW-Authenticate"); got != `Bearer realm="ponte-operators"` {
				t.Errorf("WWW-Authenticate %q", got)
			}
			if !strings.Contains(rec.Body.String(), `"error":"operator authentication required"`) {
				t.Errorf("body %q", rec.Body.String())
			}
		})
	}
}

// TestRequireEmptyRegistry: with no operators, nothing gets through, not even
// an empty token.
func TestRequireEmptyRegistry(t *testing.T) {
	reg, err := Parse(nil)
	if err != nil {
		t.Fatal(err)
	}
	h := reg.Require(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.Error("handler reached")
	}))
	for _, header := range []string{"", "Bearer ", "Bearer x"} {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest(http.MethodGet, "/", nil)
		req.Header.Set("Authorization", header)
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusUnauthorized {
			t.Errorf("%q: status %d, want 401", header, rec.Code)
		}
	}
}

// TestParseRejects: each bad entry is rejected on its own, beside a good one,
// and the error names it by position and ID without echoing its value.
func TestParseRejects(t *testing.T) {
	good := "op-ok=" + HashToken("good")
	cases := []struct {
		name, entry string
		want        string // in the error
	}{
		{"hash too short", "op-short=" + HashToken("x")[:62], `entry 2 (id "op-short")`},
		{"hash too long", "op-long=" + HashToken("x") + "00", `entry 2 (id "op-long")`},
		{"hash not hex", "op-nothex=" + strings.Repeat("zz", 32), `entry 2 (id "op-nothex")`},
		{"hash empty", "op-nohash=", `entry 2 (id "op-nohash")`},
		{"no id", "=" + HashToken("x"), `entry 2 (id "")`},
		{"no separator", "op-token-pasted", `entry 2 (id "op-token-pasted")`},
		{"raw token instead of hash", "op-raw=s3cr3t-t0ken", `entry 2 (id "op-raw")`},
		{"empty entry", "", `entry 2 (id "")`},
		{"id listed twice", "op-ok=" + HashToken("other"), `entry 2: id "op-ok" is listed twice`},
		{"token shared by two ids", "op-twin=" + HashToken("good"), `entry 2 (id "op-twin"): its token hash is already another operator's`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]string{good, tc.entry})
			if err == nil {
				t.Fatalf("%q accepted", tc.entry)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not contain %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "op-ok\"") && !strings.Contains(tc.want, "op-ok") {
				t.Errorf("error %q blames the good entry", err)
			}
			if _, value, _ := strings.Cut(tc.entry, "="); value != "" && strings.Contains(err.Error(), value) {
				t.Errorf("error %q echoes the entry's value", err)
			}
		})
	}
}

// TestParseReportsEveryEntry: several bad entries give one error naming each.
func TestParseReportsEveryEntry(t *testing.T) {
	_, err := Parse([]string{"op=short", "=" + HashToken("x"), "nohash", "op-4=" + HashToken("y")})
	if err == nil {
		t.Fatal("bad entries accepted")
	}
	for _, want := range []string{`entry 1 (id "op")`, `entry 2 (id "")`, `entry 3 (id "nohash")`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %s", err, want)
		}
	}
	if strings.Contains(err.Error(), "entry 4") {
		t.Errorf("error %q blames the good entry 4", err)
	}
}

func TestHashToken(t *testing.T) {
	// SHA-256("abc"), FIPS 180-2 appendix B.1.
	if got := HashToken("abc"); got != "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad" {
		t.Errorf("HashToken(abc) = %s", got)
	}
}
