package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"html"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

var (
	demoSubRE    = regexp.MustCompile(`"sub": "([^"]+)"`)
	demoAcrRE    = regexp.MustCompile(`"acr": "([^"]+)"`)
	demoHrefRE   = regexp.MustCompile(`href="(/login/spid/start\?[^"]+)"`)
	demoActionRE = regexp.MustCompile(`<form method="post" action="([^"]+)"`)
	demoHiddenRE = regexp.MustCompile(`<input type="hidden" name="([^"]+)" value="([^"]*)">`)
)

// TestSPIDDemo runs `ponte demo` and logs a demo citizen in with SPID on one
// machine, through the demo relying party: the chooser, SPID's list, the
// test identity provider served by Ponte itself, the ACS; then the same
// citizen with the PIN the demo printed. Both logins give the same sub, SPID
// at the dispositivo level.
func TestSPIDDemo(t *testing.T) {
	t.Chdir(t.TempDir())
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); strings.HasPrefix(k, "PONTE_") {
			t.Setenv(k, "")
		}
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	for k, v := range map[string]string{
		"PONTE_ADDR": addr, "PONTE_ISSUER": "http://" + addr, "PONTE_DB": filepath.Join(t.TempDir(), "ponte.db"),
		"PONTE_MASTER_KEY": base64.StdEncoding.EncodeToString(key), "PONTE_CNS_ENABLED": "false", "PONTE_LOG_LEVEL": "error",
	} {
		t.Setenv(k, v)
	}
	t.Setenv("PONTE_DEV", "")
	t.Setenv("PONTE_SPID_TEST_IDP", "")
	var stdout, stderr syncBuffer
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- cmdDemo(ctx, nil, &stdout, &stderr) }()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	base := "http://" + addr
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if resp, err := http.Get(base + "/healthz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK && strings.Contains(stdout.String(), "SP metadata") {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the demo did not start:\n%s\n%s", stdout.String(), stderr.String())
		}
	}
	jar, _ := cookiejar.New(nil)
	b := &http.Client{Jar: jar, Timeout: 10 * time.Second}
	get := func(u string) (*http.Response, string) {
		t.Helper()
		resp, err := b.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp, html.UnescapeString(string(body))
	}
	postForm := func(page string) (*http.Response, string) {
		t.Helper()
		m := demoActionRE.FindStringSubmatch(page)
		if m == nil {
			t.Fatalf("no form in %.400s", page)
		}
		v := url.Values{}
		for _, h := range demoHiddenRE.FindAllStringSubmatch(page, -1) {
			v.Set(h[1], h[2])
		}
		if strings.Contains(page, `name="user"`) {
			v.Set("user", demoCitizens[1].FiscalNumber)
			v.Set("action", "login")
		}
		u := m[1]
		if strings.HasPrefix(u, "/") {
			u = base + u
		}
		resp, err := b.PostForm(u, v)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp, html.UnescapeString(string(body))
	}

	// SPID: the demo RP → the chooser → SPID's list → the test IdP → the ACS → the RP.
	_, body := get(base + "/demo/login?level=dispositivo")
	challenge := regexp.MustCompile(`/login/spid/\?challenge=([^"&]+)`).FindStringSubmatch(body)
	if challenge == nil {
		t.Fatalf("the chooser does not offer SPID: %.600s", body)
	}
	_, body = get(base + "/login/spid/?challenge=" + challenge[1])
	link := demoHrefRE.FindStringSubmatch(body)
	if link == nil || !strings.Contains(body, "Gestore SPID di prova") {
		t.Fatalf("SPID's list: %.600s", body)
	}
	_, body = get(base + link[1]) // straight to the test IdP
	_, body = postForm(body)      // log in as Laura Bianchi: the page that posts to the ACS
	resp, body := postForm(body)  // the ACS, the resume, the demo RP's callback
	sub, acr := demoSubRE.FindStringSubmatch(body), demoAcrRE.FindStringSubmatch(body)
	if resp.StatusCode != http.StatusOK || sub == nil || acr == nil || acr[1] != "urn:inps:loa:dispositivo" {
		t.Fatalf("the SPID login did not reach the demo RP at dispositivo: %d %.800s", resp.StatusCode, body)
	}

	// The PIN the demo printed, in a new browser: the same subject.
	pin := regexp.MustCompile(demoCitizens[1].FiscalNumber + `  PIN (\S+)`).FindStringSubmatch(stdout.String())
	if pin == nil {
		t.Fatalf("no PIN for %s in:\n%s", demoCitizens[1].FiscalNumber, stdout.String())
	}
	jar2, _ := cookiejar.New(nil)
	b = &http.Client{Jar: jar2, Timeout: 10 * time.Second}
	_, body = get(base + "/demo/login?level=dispositivo")
	ch := regexp.MustCompile(`name="challenge" value="([^"]+)"`).FindStringSubmatch(body)
	if ch == nil {
		t.Fatalf("chooser: %.400s", body)
	}
	r2, err := b.PostForm(base+"/login/pin/", url.Values{"challenge": {ch[1]}, "fiscal_number": {demoCitizens[1].FiscalNumber}, "pin": {pin[1]}})
	if err != nil {
		t.Fatal(err)
	}
	pb, _ := io.ReadAll(r2.Body)
	r2.Body.Close()
	pinSub := demoSubRE.FindStringSubmatch(html.UnescapeString(string(pb)))
	if pinSub == nil || pinSub[1] != sub[1] {
		t.Fatalf("PIN sub %v, SPID sub %s: want the same subject\n%.600s", pinSub, sub[1], pb)
	}
}
