package main

import (
	"bufio"
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/ponte-id/ponte/internal/config"
	"github.com/ponte-id/ponte/internal/edge"
	"github.com/ponte-id/ponte/internal/requestid"
)

// adminAddr returns the admin listener's address once logged.
func (b *securityLog) adminAddr() string {
	sc := bufio.NewScanner(strings.NewReader(b.String()))
	for sc.Scan() {
		var line struct {
			Msg, Addr string
			Admin     bool
		}
		if json.Unmarshal(sc.Bytes(), &line) == nil && line.Msg == "ponte is serving" && line.Admin {
			return line.Addr
		}
	}
	return ""
}

// TestServeObservability drives a real `ponte serve` with the admin
// listener on: every response and its log line carry one request ID; the
// admin listener serves the metrics (requests by route, logins by method and
// result, the gates, the outbox, the database pools, the methods' refusals)
// and the detailed readiness; the public listener serves neither metrics nor
// details.
func TestServeObservability(t *testing.T) {
	n := startLiveNode(t, "http://127.0.0.1:8080", func(*app) { t.Setenv("PONTE_ADMIN_ADDR", "127.0.0.1:0") })
	deadline := time.Now().Add(10 * time.Second)
	admin := n.logs.adminAddr()
	for ; admin == "" && time.Now().Before(deadline); admin = n.logs.adminAddr() {
		time.Sleep(10 * time.Millisecond)
	}
	if admin == "" {
		t.Fatalf("no admin listener logged:\n%s", n.logs)
	}
	jar, _ := cookiejar.New(nil)
	client := &http.Client{Jar: jar, Timeout: 20 * time.Second}
	get := func(u string) (*http.Response, string) {
		t.Helper()
		resp, err := client.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp, string(body)
	}

	// A wrong PIN: a result the metrics count.
	resp, err := client.PostForm(n.base+"/login/pin/", url.Values{"challenge": {"none"}, "fiscal_number": {securityCF}, "pin": {"wrongpin"}})
	if err != nil {
		t.Fatal(err)
	}
	// Read to the end: a page larger than the server's buffer starts to
	// arrive before the handler returns, and the request is counted after
	// it; the end of the body comes only once the request is counted.
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	resp, _ = get(n.base + "/.well-known/openid-configuration")
	id := resp.Header.Get(requestid.Header)
	if !requestid.WellFormed(id) {
		t.Fatalf("discovery answered without a request ID: %q", id)
	}
	if !strings.Contains(n.logs.String(), `"request_id":"`+id+`"`) {
		t.Errorf("no log line carries the request ID %s:\n%s", id, n.logs)
	}

	if resp, _ := get(n.base + "/metrics"); resp.StatusCode != http.StatusNotFound {
		t.Errorf("/metrics on the public listener: %d, want 404", resp.StatusCode)
	}
	resp, metrics := get("http://" + admin + "/metrics")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("admin /metrics: %d %s", resp.StatusCode, metrics)
	}
	for _, want := range []string{
		`ponte_http_request_duration_seconds_count{method="GET",route="/.well-known/openid-configuration",status="200"} 1`,
		`route="/login/pin/*rest"`,
		`ponte_logins_total{method="pin",result="success"} 0`,
		`ponte_tokens_issued_total{grant_type="authorization_code"} 0`,
		`ponte_admission_capacity{gate="token"}`,
		`ponte_admission_capacity{gate="node"}`,
		`ponte_admission_capacity{gate="argon2id",method="pin"}`,
		`ponte_admission_capacity{gate="saml",method="spid"}`,
		`ponte_admission_wait_seconds_bucket{gate="argon2id",method="pin",le="0.001"}`,
		`ponte_pin_outbox_backlog{method="pin"} 0`,
		`ponte_pin_outbox_parked{method="pin"} 0`,
		`ponte_spid_refusals_total{method="spid",reason="spid_rules"} 0`,
		`ponte_cns_refusals_total{method="cns",reason="revoked"} 0`,
		`go_sql_open_connections{db_name="read"}`,
		`go_sql_open_connections{db_name="write"}`,
		`go_goroutines`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("admin /metrics lacks %s", want)
		}
	}
	if strings.Contains(strings.ToUpper(metrics), securityCF) {
		t.Error("a codice fiscale reached the metrics")
	}

	for _, tc := range []struct {
		url    string
		detail bool
	}{{"http://" + admin + "/readyz", true}, {n.base + "/readyz", false}} {
		resp, body := get(tc.url)
		var rep edge.Report
		if resp.StatusCode != http.StatusOK || json.Unmarshal([]byte(body), &rep) != nil {
			t.Fatalf("%s: %d %s", tc.url, resp.StatusCode, body)
		}
		for _, c := range []string{"database", "migrations", "signing_keys"} {
			if !rep.Checks[c].OK {
				t.Errorf("%s: check %s not ok: %s", tc.url, c, body)
			}
		}
		for _, m := range []string{"pin", "spid", "cns"} {
			if rep.Methods[m].Status != "ok" {
				t.Errorf("%s: method %s: %s", tc.url, m, body)
			}
		}
	}
}

// TestAdminListenerWarns: an admin listener off loopback is opened (a
// monitoring network may need it) with a warning; on loopback, silently.
func TestAdminListenerWarns(t *testing.T) {
	for _, tc := range []struct {
		addr string
		warn bool
	}{{"127.0.0.1:0", false}, {"0.0.0.0:0", true}} {
		logs := &securityLog{}
		cfg := config.Default()
		cfg.Addr, cfg.AdminAddr = "127.0.0.1:0", tc.addr
		a := &app{cfg: cfg, log: newLogger(cfg, logs)}
		servers, err := a.listeners(http.NotFoundHandler(), http.NotFoundHandler())
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range servers {
			s.ln.Close()
		}
		if len(servers) != 2 || !servers[1].admin {
			t.Fatalf("%s: servers %+v", tc.addr, servers)
		}
		if got := strings.Contains(logs.String(), "admin listener is not on loopback"); got != tc.warn {
			t.Errorf("%s: warned = %v, want %v: %s", tc.addr, got, tc.warn, logs)
		}
	}
}
