package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ponte-id/ponte/adapters/pin"
	"github.com/ponte-id/ponte/idp/clients"
	"github.com/ponte-id/ponte/idp/operators"
	"github.com/ponte-id/ponte/internal/config"
	"github.com/ponte-id/ponte/internal/edge"
	"github.com/ponte-id/ponte/storage"
)

const securityCF = "RSSMRA80A01H501U"

// securityLog is the server's stderr, written by its goroutines and read by the test.
type securityLog struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *securityLog) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *securityLog) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// serving returns the address of the "ponte is serving" line, if logged yet.
func (b *securityLog) serving() string {
	sc := bufio.NewScanner(strings.NewReader(b.String()))
	for sc.Scan() {
		var line struct{ Msg, Addr string }
		if json.Unmarshal(sc.Bytes(), &line) == nil && line.Msg == "ponte is serving" {
			return line.Addr
		}
	}
	return ""
}

// liveNode is a `ponte serve` running in the test.
type liveNode struct {
	base string
	logs *securityLog
}

// startLiveNode runs `ponte serve` as the binary does, configured by PONTE_*
// variables (on a SQLite file of its own, debug logging, one operator whose
// token is "operator-token"), after prepare has had the opened app.
func startLiveNode(t *testing.T, issuer string, prepare func(*app)) liveNode {
	t.Helper()
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); strings.HasPrefix(k, "PONTE_") {
			t.Setenv(k, "")
		}
	}
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	for k, v := range map[string]string{
		"PONTE_ADDR": "127.0.0.1:0", "PONTE_ISSUER": issuer, "PONTE_DB": filepath.Join(t.TempDir(), "ponte.db"),
		"PONTE_MASTER_KEY": base64.StdEncoding.EncodeToString(key), "PONTE_LOG_LEVEL": "debug", "PONTE_LOG_FORMAT": "json",
		"PONTE_OPERATORS": "op1=" + operators.HashToken("operator-token"), "PONTE_DEV": "false",
	} {
		t.Setenv(k, v)
	}
	if prepare != nil {
		cfg, err := config.Load("", os.Environ())
		if err != nil {
			t.Fatal(err)
		}
		a, err := openApp(t.Context(), cfg, io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		prepare(a)
		a.Close()
	}
	logs := serveInProcess(t, "serving", func(logs *securityLog) bool { return logs.serving() != "" })
	return liveNode{base: "http://" + logs.serving(), logs: logs}
}

// serveInProcess runs `ponte serve` in this process with the environment set
// (stopped when the test ends, which fails if serve returned an error), and
// waits up to 30 s for ready to report true, failing the test, with the log,
// if serve ends first or the wait runs out.
func serveInProcess(t *testing.T, what string, ready func(*securityLog) bool) *securityLog {
	t.Helper()
	logs := &securityLog{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- cmdServe(ctx, nil, logs) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for !ready(logs) {
		select {
		case err := <-done:
			t.Fatalf("serve ended: %v\n%s", err, logs)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("serve not %s:\n%s", what, logs)
		}
	}
	return logs
}

// TestServeLogsNoFiscalNumber drives a real `ponte serve`, logging at debug
// level, with requests that carry a codice fiscale in the query (login_hint),
// in a form (a PIN login that fails, which records the failure under a key
// holding the codice fiscale), and in the path (the operator API's audit
// trail): the log holds the masked form, never the whole code, in any case.
func TestServeLogsNoFiscalNumber(t *testing.T) {
	const redirect = "http://127.0.0.1:9/cb"
	var clientID string
	n := startLiveNode(t, "http://127.0.0.1:8080", func(a *app) {
		c, _, err := a.registry.Create(t.Context(), clients.Spec{Name: "RP", RedirectURIs: []string{redirect}})
		if err != nil {
			t.Fatal(err)
		}
		clientID = c.ID
	})
	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Jar: jar, Timeout: 20 * time.Second}
	get := func(u string, header ...string) *http.Response {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, u, nil)
		for i := 0; i+1 < len(header); i += 2 {
			req.Header.Set(header[i], header[i+1])
		}
		resp, err := browser.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp
	}

	sum := sha256.Sum256([]byte("a-verifier-of-enough-length-for-pkce-0123456789"))
	resp := get(n.base + "/authorize?" + url.Values{
		"client_id": {clientID}, "redirect_uri": {redirect}, "response_type": {"code"}, "scope": {"openid"},
		"state": {"state-0123456789abcdef"}, "nonce": {"nonce-0123456789abcdef"}, "login_hint": {securityCF},
		"code_challenge": {base64.RawURLEncoding.EncodeToString(sum[:])}, "code_challenge_method": {"S256"},
	}.Encode())
	challenge := resp.Request.URL.Query().Get("challenge")
	if resp.StatusCode != http.StatusOK || challenge == "" {
		t.Fatalf("authorize did not lead to the chooser: %d %s", resp.StatusCode, resp.Request.URL)
	}
	if resp := get(n.base + "/login/pin/?challenge=" + url.QueryEscape(challenge)); resp.StatusCode != http.StatusOK {
		t.Fatalf("PIN login page: %d", resp.StatusCode)
	}
	resp, err := browser.PostForm(n.base+"/login/pin/", url.Values{
		"challenge": {challenge}, "fiscal_number": {securityCF}, "pin": {"wrongpin"},
	})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	for _, cf := range []string{securityCF, strings.ToLower(securityCF)} {
		if resp := get(n.base+"/operator/pin/audit/"+cf, "Authorization", "Bearer operator-token"); resp.StatusCode != http.StatusOK {
			t.Fatalf("audit trail of %s: %d", cf, resp.StatusCode)
		}
	}
	get(n.base + "/nowhere/" + securityCF + "?fiscal_number=" + securityCF)

	out := n.logs.String()
	if strings.Contains(strings.ToUpper(out), securityCF) {
		t.Fatalf("a whole codice fiscale was logged:\n%s", out)
	}
	for _, want := range []string{`"msg":"sql"`, "INSERT INTO pin_attempts", `/operator/pin/audit/RSS************U"`, `/operator/pin/audit/rss************u"`, `"path":"/nowhere/RSS************U"`} {
		if !strings.Contains(out, want) {
			t.Errorf("the log lacks %s:\n%s", want, out)
		}
	}
}

// TestServePINUpload: the PIN method declares the size of its conversion
// upload (idp.BodyLimit), so that documents far above the edge's default
// limit reach it, while the same body anywhere else is refused with 413.
func TestServePINUpload(t *testing.T) {
	n := startLiveNode(t, "http://127.0.0.1:8080", func(a *app) {
		methods, err := a.openMethods()
		if err != nil {
			t.Fatal(err)
		}
		pins, _ := pin.ServiceOf(methods[0])
		if err := pins.Seed(t.Context(), storage.PINAccount{FiscalNumber: securityCF, Email: "mario@example.it"}, "Abcd1234"); err != nil {
			t.Fatal(err)
		}
	})
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	_ = mw.WriteField("fiscal_number", securityCF)
	_ = mw.WriteField("pin", "Abcd1234")
	for name, magic := range map[string]string{"form": "%PDF-1.7\n", "document": "\x89PNG\r\n\x1a\n"} {
		fw, _ := mw.CreateFormFile(name, name+".bin")
		_, _ = fw.Write(append([]byte(magic), bytes.Repeat([]byte{0}, 1<<20)...))
	}
	_ = mw.Close()
	body := buf.Bytes()
	if len(body) <= edge.DefaultMaxBody {
		t.Fatalf("the upload (%d bytes) is not above the default limit", len(body))
	}
	for _, tc := range []struct {
		path   string
		status int
		text   string
	}{
		{"/login/pin/convert", http.StatusOK, "inviata"},
		{"/operator/pin/requests", http.StatusRequestEntityTooLarge, ""},
	} {
		resp, err := http.Post(n.base+tc.path, mw.FormDataContentType(), bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.status || !strings.Contains(string(got), tc.text) {
			t.Errorf("%s: %d %.300s, want %d %q", tc.path, resp.StatusCode, got, tc.status, tc.text)
		}
	}
}

// TestNewLoggerMasks checks the process logger in both formats.
func TestNewLoggerMasks(t *testing.T) {
	for _, format := range []string{"json", "text"} {
		var buf bytes.Buffer
		cfg := config.Default()
		cfg.Log.Format, cfg.Log.Level = format, "debug"
		newLogger(cfg, &buf).With("who", securityCF).Debug("login of "+securityCF, "path", "/audit/"+securityCF)
		if out := buf.String(); strings.Contains(out, securityCF) || strings.Count(out, "RSS************U") != 3 {
			t.Errorf("%s: %s", format, out)
		}
	}
}

// TestServeHSTS: Strict-Transport-Security only when the issuer is https.
func TestServeHSTS(t *testing.T) {
	for _, tc := range []struct{ issuer, want string }{
		{"https://login.example.it", "max-age=31536000"},
		{"http://127.0.0.1:8080", ""},
	} {
		t.Run(tc.issuer, func(t *testing.T) {
			n := startLiveNode(t, tc.issuer, nil)
			for _, path := range []string{"/healthz", "/.well-known/openid-configuration", "/nowhere"} {
				resp, err := http.Get(n.base + path)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				if got := resp.Header.Get("Strict-Transport-Security"); got != tc.want {
					t.Errorf("%s: Strict-Transport-Security %q, want %q", path, got, tc.want)
				}
			}
		})
	}
}
