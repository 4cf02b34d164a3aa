package clientcert_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/ponte-id/ponte/internal/clientcert"
	"github.com/ponte-id/ponte/internal/clientcert/certtest"
)

func TestNew(t *testing.T) {
	for _, tc := range []struct {
		name    string
		opts    clientcert.Options
		wantErr []string
	}{
		{name: "zero: TLS only", opts: clientcert.Options{}},
		{name: "CIDRs and IPs", opts: clientcert.Options{TrustedProxies: []string{"10.0.0.0/8", "127.0.0.1", "::1", "fd00::/8", "::ffff:10.0.0.0/104"}, Header: clientcert.FormatRFC9440}},
		{name: "nginx", opts: clientcert.Options{TrustedProxies: []string{"10.0.0.1"}, Header: clientcert.FormatNginx}},
		{name: "envoy", opts: clientcert.Options{TrustedProxies: []string{"10.0.0.1"}, Header: clientcert.FormatEnvoy}},
		{name: "a header without proxies", opts: clientcert.Options{Header: clientcert.FormatNginx},
			wantErr: []string{`Header "nginx" needs TrustedProxies`}},
		{name: "proxies without a header", opts: clientcert.Options{TrustedProxies: []string{"10.0.0.1"}},
			wantErr: []string{"TrustedProxies needs Header"}},
		{name: "every problem at once", opts: clientcert.Options{TrustedProxies: []string{"10.0.0.1", "proxy.local", "fe80::1%eth0", "10.0.0.0/33"}, Header: "haproxy"},
			wantErr: []string{`TrustedProxies[1] "proxy.local"`, `TrustedProxies[2] "fe80::1%eth0"`, `TrustedProxies[3] "10.0.0.0/33"`, `Header "haproxy"`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := clientcert.New(tc.opts, nil)
			if len(tc.wantErr) == 0 {
				if err != nil || s == nil {
					t.Fatalf("New: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("accepted")
			}
			for _, want := range tc.wantErr {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q lacks %q", err, want)
				}
			}
		})
	}
}

// seen is what a handler behind a Source saw of a request.
type seen struct {
	Chain   []string // subject CNs, leaf first
	Headers []string // certificate headers still on the request
}

// observer stands in for a login method: it reports the chain it finds with
// From and any certificate header left.
var observer = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	var s seen
	for _, c := range clientcert.From(r.Context()) {
		s.Chain = append(s.Chain, c.Subject.CommonName)
	}
	for _, h := range []string{clientcert.HeaderClientCert, clientcert.HeaderClientCertChain, clientcert.HeaderNginx, clientcert.HeaderXFCC} {
		if len(r.Header.Values(h)) > 0 {
			s.Headers = append(s.Headers, h)
		}
	}
	json.NewEncoder(w).Encode(s)
})

// syncBuffer is a log destination shared by the server's goroutines and the test.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func get(t *testing.T, client *http.Client, url string, header http.Header) seen {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header = header
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
	var s seen
	if err := json.NewDecoder(resp.Body).Decode(&s); err != nil {
		t.Fatal(err)
	}
	return s
}

// TestSourceHeaders runs a Source over a real loopback listener: the test
// client's TCP address is 127.0.0.1, a trusted proxy in some cases and not in
// others.
func TestSourceHeaders(t *testing.T) {
	p := newPKI(t)
	rfc := http.Header{
		clientcert.HeaderClientCert:      {sfBinary(p.leaf)},
		clientcert.HeaderClientCertChain: {sfBinary(p.inter)},
	}
	nginx := http.Header{clientcert.HeaderNginx: {clientcert.EscapeNginx(certtest.PEM(p.leaf))}}
	envoy := http.Header{clientcert.HeaderXFCC: {`By=x;Cert="` + clientcert.EscapeNginx(certtest.PEM(p.leaf)) + `"`}}
	every := http.Header{}
	for _, h := range []http.Header{rfc, nginx, envoy} {
		for k, v := range h {
			every[k] = v
		}
	}
	leafInter := []string{p.leaf.Subject.CommonName, p.inter.Subject.CommonName}
	leaf := []string{p.leaf.Subject.CommonName}
	loopback := []string{"127.0.0.1"}
	for _, tc := range []struct {
		name    string
		opts    clientcert.Options
		header  http.Header
		want    []string
		wantLog string
	}{
		{name: "no proxy trusted: every header removed", header: every},
		{name: "another proxy trusted", opts: clientcert.Options{TrustedProxies: []string{"10.0.0.0/8"}, Header: clientcert.FormatRFC9440}, header: rfc},
		{name: "RFC 9440 from a trusted proxy", opts: clientcert.Options{TrustedProxies: loopback, Header: clientcert.FormatRFC9440}, header: rfc, want: leafInter},
		{name: "trusted as a CIDR", opts: clientcert.Options{TrustedProxies: []string{"127.0.0.0/8"}, Header: clientcert.FormatRFC9440}, header: rfc, want: leafInter},
		{name: "nginx from a trusted proxy", opts: clientcert.Options{TrustedProxies: loopback, Header: clientcert.FormatNginx}, header: nginx, want: leaf},
		{name: "Envoy from a trusted proxy", opts: clientcert.Options{TrustedProxies: loopback, Header: clientcert.FormatEnvoy}, header: envoy, want: leaf},
		{name: "only the configured format is read", opts: clientcert.Options{TrustedProxies: loopback, Header: clientcert.FormatNginx}, header: func() http.Header {
			h := rfc.Clone()
			h[clientcert.HeaderXFCC] = envoy[clientcert.HeaderXFCC]
			return h
		}()},
		{name: "malformed: no chain, logged", opts: clientcert.Options{TrustedProxies: loopback, Header: clientcert.FormatRFC9440},
			header: http.Header{clientcert.HeaderClientCert: {":" + base64.StdEncoding.EncodeToString(p.leaf.Raw[:100]) + ":"}}, wantLog: "client certificate header ignored"},
		{name: "Client-Cert repeated: no chain, logged", opts: clientcert.Options{TrustedProxies: loopback, Header: clientcert.FormatRFC9440},
			header: http.Header{clientcert.HeaderClientCert: {sfBinary(p.leaf), sfBinary(p.inter)}}, wantLog: "Client-Cert: 2 lines"},
		{name: "XFCC over two lines: the last element", opts: clientcert.Options{TrustedProxies: loopback, Header: clientcert.FormatEnvoy},
			header: http.Header{clientcert.HeaderXFCC: {`Cert="` + clientcert.EscapeNginx(certtest.PEM(p.inter)) + `"`, envoy[clientcert.HeaderXFCC][0]}}, want: leaf},
	} {
		t.Run(tc.name, func(t *testing.T) {
			logs := &syncBuffer{}
			src, err := clientcert.New(tc.opts, slog.New(slog.NewJSONHandler(logs, nil)))
			if err != nil {
				t.Fatal(err)
			}
			srv := httptest.NewServer(src.Handler(observer))
			t.Cleanup(srv.Close)
			got := get(t, srv.Client(), srv.URL, tc.header.Clone())
			if strings.Join(got.Chain, "|") != strings.Join(tc.want, "|") {
				t.Errorf("chain %q, want %q", got.Chain, tc.want)
			}
			if len(got.Headers) > 0 {
				t.Errorf("certificate headers reached the handler: %v", got.Headers)
			}
			if out := logs.String(); !strings.Contains(out, tc.wantLog) {
				t.Errorf("log %q lacks %q", out, tc.wantLog)
			} else if strings.Contains(out, base64.StdEncoding.EncodeToString(p.leaf.Raw[:30])) {
				t.Errorf("the log holds certificate data: %s", out)
			}
		})
	}
}
