package main

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/ponte-id/ponte/adapters/cns/cnstest"
	"github.com/ponte-id/ponte/internal/clientcert"
	"github.com/ponte-id/ponte/internal/codicefiscale"
	"github.com/ponte-id/ponte/loadtest/flow"
)

func TestParseMethods(t *testing.T) {
	for _, c := range []struct {
		in   string
		want []string
		bad  bool
	}{
		{"pin", []string{"pin"}, false},
		{"pin,spid,cns", []string{"pin", "spid", "cns"}, false},
		{" cns , pin", []string{"cns", "pin"}, false},
		{"pin,pin", nil, true},
		{"pin,sms", nil, true},
		{"", nil, true},
	} {
		got, err := parseMethods(c.in)
		if (err != nil) != c.bad || !reflect.DeepEqual(got, c.want) {
			t.Errorf("parseMethods(%q) = %v, %v; want %v, error %v", c.in, got, err, c.want, c.bad)
		}
	}
}

// TestArrival: the methods in turn, a share of strangers, a share of forms
// among the rest, each method its share.
func TestArrival(t *testing.T) {
	for _, c := range []struct {
		name             string
		methods          []string
		forms, strangers float64
		want             map[string]int
	}{
		{"PIN only, 10% forms", []string{"pin"}, 0.1, 0, map[string]int{"pin": 900, methodForm: 100}},
		{"three methods, no forms", []string{"pin", "spid", "cns"}, 0, 0, map[string]int{"pin": 333, "spid": 334, "cns": 333}},
		{"three methods, 10% forms", []string{"pin", "spid", "cns"}, 0.1, 0, map[string]int{"pin": 300, "spid": 300, "cns": 300, methodForm: 100}},
		{"PIN only, half strangers, 10% forms of the rest", []string{"pin"}, 0.1, 0.5, map[string]int{"pin": 450, methodForm: 50, methodStranger: 500}},
		{"three methods, half strangers", []string{"pin", "spid", "cns"}, 0, 0.5, map[string]int{"pin": 167, "spid": 166, "cns": 167, methodStranger: 500}},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := map[string]int{}
			for k := 1; k <= 1000; k++ {
				got[arrival(k, c.methods, c.forms, c.strangers)]++
			}
			if !reflect.DeepEqual(got, c.want) {
				t.Errorf("arrivals = %v, want %v", got, c.want)
			}
		})
	}
}

func TestCitizensDistinctAndValid(t *testing.T) {
	seen := map[string]bool{}
	for i := range maxCitizens {
		cf, _, _, _ := citizen(i)
		if seen[cf] {
			t.Fatalf("citizen %d: %s twice", i, cf)
		}
		seen[cf] = true
		if ch, err := codicefiscale.CheckChar(cf[:15]); err != nil || string(ch) != cf[15:] {
			t.Fatalf("citizen %d: %s has a bad check character", i, cf)
		}
	}
}

// TestCardHost: the card host forwards the card of the handshake, and only
// on /login/cns/; the issuer's host never forwards a certificate header a
// client wrote; every answer names the node that gave it.
func TestCardHost(t *testing.T) {
	ca := must(cnstest.NewRoot("CNS CA"))
	card := must(ca.Issue(cnstest.Card{FiscalNumber: "BNCLRA90D55A000X"}))
	tlsCA := must(cnstest.NewRoot("TLS CA"))
	server := must(tlsCA.Server("127.0.0.1"))
	node := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, r.Host+"\n"+r.Header.Get("X-Forwarded-Proto")+"\n"+r.Header.Get(headerCert))
	}))
	defer node.Close()
	proxy := balancer([]string{node.Listener.Addr().String()})
	issuer := httptest.NewServer(issuerHost(proxy))
	defer issuer.Close()
	cardSrv := httptest.NewUnstartedServer(cardHost(proxy, "127.0.0.1:18600"))
	cardSrv.TLS = &tls.Config{Certificates: []tls.Certificate{server}, ClientAuth: tls.RequestClientCert, SessionTicketsDisabled: true}
	cardSrv.StartTLS()
	defer cardSrv.Close()
	roots := x509.NewCertPool()
	roots.AddCert(tlsCA.Cert)
	client := func(c *tls.Certificate) *http.Client {
		conf := &tls.Config{RootCAs: roots}
		if c != nil {
			conf.Certificates = []tls.Certificate{*c}
		}
		return &http.Client{Transport: &http.Transport{TLSClientConfig: conf}}
	}
	forged := clientcert.EscapeNginx(string(cnstest.PEM(card.Leaf)))
	for _, c := range []struct {
		name, url string
		client    *http.Client
		header    string
		status    int
		wantCert  bool
		wantLines []string // Host and X-Forwarded-Proto
	}{
		{"card presented", cardSrv.URL + "/login/cns/card?challenge=x", client(&card), "", 200, true, []string{"127.0.0.1:18600", "https"}},
		{"card presented, header forged too", cardSrv.URL + "/login/cns/card", client(&card), "forged", 200, true, []string{"127.0.0.1:18600", "https"}},
		{"no card", cardSrv.URL + "/login/cns/card", client(nil), "", 200, false, []string{"127.0.0.1:18600", "https"}},
		{"no card, header forged", cardSrv.URL + "/login/cns/card", client(nil), forged, 200, false, []string{"127.0.0.1:18600", "https"}},
		{"another path on the card host", cardSrv.URL + "/token", client(&card), "", 404, false, nil},
		{"the issuer, header forged", issuer.URL + "/login/cns/card", http.DefaultClient, forged, 200, false, []string{strings.TrimPrefix(issuer.URL, "http://"), "http"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodGet, c.url, nil)
			if c.header != "" {
				req.Header.Set(headerCert, c.header)
			}
			resp, err := c.client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != c.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, c.status, body)
			}
			if c.status != 200 {
				return
			}
			if got := resp.Header.Get(headerNode); got != node.Listener.Addr().String() {
				t.Errorf("%s: %q, want the node %s", headerNode, got, node.Listener.Addr())
			}
			lines := strings.SplitN(string(body), "\n", 3)
			if !reflect.DeepEqual(lines[:2], c.wantLines) {
				t.Errorf("Host, X-Forwarded-Proto = %q, want %q", lines[:2], c.wantLines)
			}
			chain, err := clientcert.ParseNginx(lines[2])
			if err != nil {
				t.Fatalf("the node cannot read the header: %v", err)
			}
			if got := len(chain) == 1 && chain[0].Equal(card.Leaf); got != c.wantCert || (!c.wantCert && len(chain) != 0) {
				t.Errorf("forwarded %d certificates (the card: %v), want the card: %v", len(chain), got, c.wantCert)
			}
		})
	}
}

func TestIsLoopback(t *testing.T) {
	for host, want := range map[string]bool{"127.0.0.1": true, "::1": true, "10.0.0.1": false, "localhost": false, "": false} {
		if got := isLoopback(host); got != want {
			t.Errorf("isLoopback(%q) = %v", host, got)
		}
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// TestTable: a run's JSON line, as `run` prints it, becomes one row per
// method in the order they took turns; a bad line is an error naming it.
func TestTable(t *testing.T) {
	line := `{"label":"kill-node","duration_s":10,"methods_in_turn":["pin","spid"],"mixups":0,"methods":{` +
		`"pin":{"completed":61,"held_per_s":6.1,"kinds":{"ok":61,"503 with Retry-After":25,"not sent (in-flight bound)":7,"other 5xx":1,"code that did not redeem":3},"p50_ms":840,"p99_ms":17230,"mixups":0,"recovered_by_retry":4},` +
		`"spid":{"completed":5,"held_per_s":0.5,"kinds":{"ok":5,"transport error":2,"error redirect":1,"other 4xx":1,"429":1},"p50_ms":1000,"p99_ms":2000,"mixups":1,"acs_reposts":3,"spid_cross_node":2},` +
		`"recover-form":{"kinds":{"form ok":9}}}}`
	for _, c := range []struct {
		name, in string
		want     []string
		bad      string
	}{
		{"two methods", line + "\n\n", []string{
			"| kill-node | pin | 10 | 61 | 6.1 | 25 | 1 | 0 | 0 | 0 | 3 | 4 | — | — | 7 | 840 ms | 17.2 s | **0** |",
			"| kill-node | spid | 1 | 5 | 0.5 | 0 | 0 | 2 | 1 | 2 | 0 | 0 | 3 | 2 | 0 | 1.0 s | 2.0 s | **1** |",
		}, ""},
		{"not JSON", line + "\n{oops\n", nil, "line 2"},
	} {
		t.Run(c.name, func(t *testing.T) {
			var out strings.Builder
			err := tableCmd(nil, strings.NewReader(c.in), &out)
			if c.bad != "" {
				if err == nil || !strings.Contains(err.Error(), c.bad) {
					t.Fatalf("error %v, want one naming %q", err, c.bad)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got := strings.Split(strings.TrimSpace(out.String()), "\n")
			if !reflect.DeepEqual(got[2:], c.want) || got[0]+"\n"+got[1] != tableHeader {
				t.Errorf("table:\n%s\nwant rows:\n%s", out.String(), strings.Join(c.want, "\n"))
			}
		})
	}
}

func TestSchedule(t *testing.T) {
	for _, c := range []struct {
		rate  int
		d     time.Duration
		total int
		last  time.Duration // when the last arrival is due
	}{
		{1000, 20 * time.Second, 20000, 20*time.Second - time.Millisecond},
		{25, 20 * time.Second, 500, 20*time.Second - 40*time.Millisecond},
		{3, 1500 * time.Millisecond, 4, time.Second},
		{1, 500 * time.Millisecond, 0, 0},
	} {
		total := arrivalsIn(c.rate, c.d)
		if total != c.total {
			t.Errorf("arrivalsIn(%d, %v) = %d, want %d", c.rate, c.d, total, c.total)
		}
		if total > 0 {
			if got := dueAt(total-1, c.rate); got != c.last {
				t.Errorf("rate %d: the last arrival due at %v, want %v", c.rate, got, c.last)
			}
		}
	}
}

func TestClassify(t *testing.T) {
	for _, c := range []struct {
		name string
		err  error
		want string
	}{
		{"the gate's 503", &flow.StatusError{Step: "PIN form", Status: 503, RetryAfter: "1"}, k503},
		{"503 without Retry-After", &flow.StatusError{Status: 503}, k503NoRA},
		{"the balancer's 502", &flow.StatusError{Status: 502}, k5xx},
		{"a courtesy page", &flow.StatusError{Status: 403}, k4xx},
		{"429", &flow.StatusError{Status: 429}, k429},
		{"a redirect elsewhere than the relying party", &flow.StatusError{Status: 303}, kErrRedirect},
		{"error=server_error at the relying party", &flow.RedirectError{Code: "server_error"}, kErrRedirect},
		{"wrapped", fmt.Errorf("x: %w", &flow.RedirectError{Code: "temporarily_unavailable"}), kErrRedirect},
		{"the token endpoint's 503", fmt.Errorf("token: %w", &oauth2.RetrieveError{Response: &http.Response{StatusCode: 503}}), k503},
		{"connection refused", errors.New("dial tcp: connection refused"), kTransport},
	} {
		if got := classify(c.err); got != c.want {
			t.Errorf("%s: %q, want %q", c.name, got, c.want)
		}
	}
}
