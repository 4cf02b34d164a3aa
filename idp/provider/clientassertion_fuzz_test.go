package provider_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/ponte-id/ponte/idp/clients"
	"github.com/ponte-id/ponte/storage/storagetest"
)

// FuzzClientAssertion posts private_key_jwt client assertions (RFC 7523) made
// of arbitrary headers and claims to the token endpoint, signed with the
// client's key or carrying an arbitrary signature: the answer is an OAuth
// error (400 or 401 JSON), never a 5xx.
func FuzzClientAssertion(f *testing.F) {
	e := newEnv(f, storagetest.SQLite(f))
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		f.Fatal(err)
	}
	set, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: key.Public(), KeyID: "k1", Algorithm: "ES256", Use: "sig"}}})
	c := e.NewRP(clients.Spec{AuthMethod: clients.AuthPrivateKeyJWT, JWKS: set})
	now := time.Now().Unix()
	claims := func(extra string) string {
		return `{"iss":"` + c.ID + `","sub":"` + c.ID + `","aud":"` + e.Issuer + `/token","jti":"j` + extra + `","iat":` +
			itoa(now) + `,"exp":` + itoa(now+60) + `}`
	}
	f.Add(`{"alg":"ES256","kid":"k1"}`, claims("1"), true, "")
	f.Add(`{"alg":"none"}`, claims("2"), false, "")
	f.Add(`{"alg":"HS256","kid":"k1"}`, claims("3"), false, "c2VjcmV0")
	f.Add(`{"alg":"ES256","kid":"k1","crit":["exp"]}`, `{"iss":"`+c.ID+`","sub":"x","aud":["a","b"],"exp":"tomorrow"}`, true, "")
	f.Add(`{"alg":"ES256","kid":"k1"}`, `{"iss":"`+c.ID+`","sub":"`+c.ID+`","aud":"`+e.Issuer+`/token","exp":1e400}`, true, "")
	f.Add(`{"alg":"ES256","kid":"../../k1","jku":"http://127.0.0.1:1/"}`, `[]`, true, "")
	f.Fuzz(func(t *testing.T, header, payload string, sign bool, sig string) {
		b64 := base64.RawURLEncoding.EncodeToString
		input := b64([]byte(header)) + "." + b64([]byte(payload))
		if sign {
			h := sha256.Sum256([]byte(input))
			r, s, err := ecdsa.Sign(rand.Reader, key, h[:])
			if err != nil {
				t.Fatal(err)
			}
			raw := make([]byte, 64)
			r.FillBytes(raw[:32])
			s.FillBytes(raw[32:])
			sig = b64(raw)
		}
		form := url.Values{"grant_type": {"client_credentials"}, "client_id": {c.ID},
			"client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"},
			"client_assertion":      {input + "." + sig}}
		resp, err := http.Post(e.Issuer+"/token", "application/x-www-form-urlencoded", strings.NewReader(form.Encode()))
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		var oauthErr struct {
			Error string `json:"error"`
		}
		if resp.StatusCode >= 500 || json.Unmarshal(body, &oauthErr) != nil || oauthErr.Error == "" {
			t.Fatalf("assertion %s . %s (signed %v): %d %.300s", header, payload, sign, resp.StatusCode, body)
		}
	})
}

func itoa(n int64) string { b, _ := json.Marshal(n); return string(b) }
