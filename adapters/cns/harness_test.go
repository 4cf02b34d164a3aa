package cns_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ponte-id/ponte/adapters/cns"
	"github.com/ponte-id/ponte/adapters/cns/cnstest"
	"github.com/ponte-id/ponte/idp"
	"github.com/ponte-id/ponte/idp/provider"
	"github.com/ponte-id/ponte/internal/clientcert"
	"github.com/ponte-id/ponte/internal/clientcert/certtest"
	"github.com/ponte-id/ponte/internal/edge"
)

const (
	citizenCF = "RSSMRA80A01H501U"
	otherCF   = "BNCLRA90D55F205C"
)

// must returns v, or panics on err (which fails the test that called it).
func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// revServer publishes CRLs and answers OCSP on 127.0.0.1, as a CA's
// distribution point and responder do.
type revServer struct {
	srv       *httptest.Server
	responder atomic.Pointer[cnstest.Responder]
	mu        sync.Mutex
	crls      map[string][]byte
	crlDown   bool
	crlGets   atomic.Int64
}

func newRevServer(t testing.TB) *revServer {
	rs := &revServer{crls: map[string][]byte{}}
	mux := http.NewServeMux()
	mux.HandleFunc("/ocsp", func(w http.ResponseWriter, r *http.Request) {
		if o := rs.responder.Load(); o != nil {
			o.ServeHTTP(w, r)
			return
		}
		http.NotFound(w, r)
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		rs.crlGets.Add(1)
		rs.mu.Lock()
		data, ok := rs.crls[r.URL.Path]
		down := rs.crlDown
		rs.mu.Unlock()
		switch {
		case down:
			http.Error(w, "down", http.StatusServiceUnavailable)
		case !ok:
			http.NotFound(w, r)
		default:
			w.Header().Set("Content-Type", "application/pkix-crl")
			_, _ = w.Write(data)
		}
	})
	rs.srv = httptest.NewServer(mux)
	t.Cleanup(rs.srv.Close)
	return rs
}

func (rs *revServer) url(path string) string { return rs.srv.URL + path }

func (rs *revServer) publish(path string, der []byte) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	rs.crls[path] = der
}

func (rs *revServer) setCRLDown(down bool) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	rs.crlDown = down
}

// pki is the CNS of one test: a root (the configured CA), an issuing CA
// below it whose status the root's CRL gives, cards from the issuing CA
// whose status its responder and its CRL give.
type pki struct {
	t             testing.TB
	root, issuing *cnstest.CA
	rev           *revServer
	ocsp          *cnstest.Responder
	caFile        string
}

func newPKI(t testing.TB) *pki {
	t.Helper()
	rev := newRevServer(t)
	root := must(cnstest.NewRoot("Test CNS root"))
	issuing := must(root.NewIntermediate("Test CNS issuing CA", cnstest.CAOptions{CRLDistributionPoints: []string{rev.url("/root.crl")}}))
	p := &pki{t: t, root: root, issuing: issuing, rev: rev, ocsp: cnstest.NewResponder(issuing)}
	rev.responder.Store(p.ocsp)
	p.publishCRLs(cnstest.CRLOptions{})
	p.caFile = filepath.Join(t.TempDir(), "cns-ca.pem")
	if err := os.WriteFile(p.caFile, cnstest.PEM(root.Cert), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// trustIssuing writes the issuing CA into the CA bundle beside the root:
// what a deployment behind a proxy that forwards only the leaf (nginx) needs.
func (p *pki) trustIssuing() {
	if err := os.WriteFile(p.caFile, cnstest.PEM(p.root.Cert, p.issuing.Cert), 0o600); err != nil {
		p.t.Fatal(err)
	}
}

// publishCRLs publishes a fresh CRL of each CA, the issuing CA's with o.
func (p *pki) publishCRLs(o cnstest.CRLOptions) {
	p.rev.publish("/root.crl", must(p.root.CRL(cnstest.CRLOptions{})))
	p.rev.publish("/issuing.crl", must(p.issuing.CRL(o)))
}

// card issues a card for citizenCF with an RSA key (unless mod says
// otherwise), whose status is published by the responder and the CRL.
func (p *pki) card(mod ...func(*cnstest.Card)) tls.Certificate {
	p.t.Helper()
	c := cnstest.Card{FiscalNumber: citizenCF, GivenName: "MARIO", FamilyName: "ROSSI", Key: cnstest.ECDSA,
		OCSPServer: []string{p.rev.url("/ocsp")}, CRLDistributionPoints: []string{p.rev.url("/issuing.crl")}}
	for _, m := range mod {
		m(&c)
	}
	return must(p.issuing.Issue(c))
}

// config is the method enabled for p's CA.
func (p *pki) config(cardURL, issuer string) cns.Config {
	c := cns.DefaultConfig()
	c.Enabled, c.CardURL, c.CAFile, c.Issuer = true, cardURL, p.caFile, issuer
	c.Revocation.RetryAfter = time.Millisecond
	return c
}

// logBook keeps the log records of a test.
type logBook struct {
	mu      sync.Mutex
	records []slog.Record
}

type bookHandler struct {
	b     *logBook
	attrs []slog.Attr
}

func (h bookHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h bookHandler) Handle(_ context.Context, r slog.Record) error {
	r = r.Clone()
	r.AddAttrs(h.attrs...)
	h.b.mu.Lock()
	defer h.b.mu.Unlock()
	h.b.records = append(h.b.records, r)
	return nil
}
func (h bookHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return bookHandler{h.b, append(append([]slog.Attr{}, h.attrs...), as...)}
}
func (h bookHandler) WithGroup(string) slog.Handler { return h }

func (b *logBook) logger() *slog.Logger { return slog.New(bookHandler{b: b}) }

// reasons lists the reasons of the refusals logged so far.
func (b *logBook) reasons() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []string
	for _, r := range b.records {
		if r.Message != "cns: login refused" {
			continue
		}
		r.Attrs(func(a slog.Attr) bool {
			if a.Key == "reason" {
				out = append(out, a.Value.String())
			}
			return true
		})
	}
	return out
}

// text is every record, for failure messages and for checks of what the log holds.
func (b *logBook) text() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	var s strings.Builder
	for _, r := range b.records {
		fmt.Fprintf(&s, "%s %s", r.Level, r.Message)
		r.Attrs(func(a slog.Attr) bool { fmt.Fprintf(&s, " %s=%v", a.Key, a.Value); return true })
		s.WriteString("\n")
	}
	return s.String()
}

// fakeHost is the Host a method sees, without a provider behind it: the
// challenge "good" belongs to every browser; logins are recorded, not made.
type fakeHost struct {
	mu     sync.Mutex
	states map[string]fakeState
}

type fakeState struct {
	challenge string
	data      []byte
}

var _ idp.Host = (*fakeHost)(nil)

func (h *fakeHost) LoginRequest(r *http.Request, challenge string) (idp.LoginRequest, error) {
	if challenge != "good" {
		return idp.LoginRequest{}, idp.ErrUnknownChallenge
	}
	return idp.LoginRequest{Challenge: challenge, MinLevel: idp.LevelDispositivo, Locale: "it"}, nil
}
func (h *fakeHost) CompleteLogin(w http.ResponseWriter, r *http.Request, challenge string, id idp.Identity) {
	fmt.Fprintf(w, "completed %s %s %s %v", challenge, id.FiscalNumber, id.Level.ACR(), id.AMR)
}
func (h *fakeHost) ReturnLogin(w http.ResponseWriter, r *http.Request, challenge string, id idp.Identity) {
	http.Error(w, "ReturnLogin is not for the CNS", http.StatusTeapot)
}
func (h *fakeHost) LoginURL(challenge string) string {
	return "/login?challenge=" + url.QueryEscape(challenge)
}
func (h *fakeHost) MethodURL(p string) string { return "/login/cns" + p }
func (h *fakeHost) SaveState(_ context.Context, key, challenge string, data []byte, _ time.Duration) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.states == nil {
		h.states = map[string]fakeState{}
	}
	h.states[key] = fakeState{challenge, data}
	return nil
}
func (h *fakeHost) TakeState(_ context.Context, key string) (string, []byte, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	s, ok := h.states[key]
	if !ok {
		return "", nil, idp.ErrUnknownState
	}
	delete(h.states, key)
	return s.challenge, s.data, nil
}
func (h *fakeHost) UseOnce(context.Context, string, time.Time) error { return nil }
func (h *fakeHost) EndSessions(context.Context, string) (int, error) { return 0, nil }
func (h *fakeHost) ClientCertificates(r *http.Request) ([]*x509.Certificate, error) {
	return clientcert.From(r.Context()), nil
}

// methodRoute mounts a method's pages as the provider does.
func methodRoute(h http.Handler) provider.Route {
	return provider.Route{Path: "/login/cns", Prefix: true, Handler: http.StripPrefix("/login/cns", h)}
}

// tlsListener serves h with the card listener's TLS (clientcert.CardTLSConfig)
// on ln until the test ends, and returns the pool that trusts its certificate.
func tlsListener(t testing.TB, ln net.Listener, h http.Handler) *x509.CertPool {
	t.Helper()
	return tlsListenerWith(t, ln, h, nil)
}

// tlsListenerWith is tlsListener with the TLS configuration changed by
// tweak (if not nil): a card listener configured otherwise than Ponte's.
func tlsListenerWith(t testing.TB, ln net.Listener, h http.Handler, tweak func(*tls.Config)) *x509.CertPool {
	t.Helper()
	ca := must(cnstest.NewRoot("Test server CA"))
	certFile, keyFile := certtest.WriteKeyPair(t, t.TempDir(), must(ca.Server()))
	cfg, err := clientcert.CardTLSConfig(certFile, keyFile, 0)
	if err != nil {
		t.Fatal(err)
	}
	if tweak != nil {
		tweak(cfg)
	}
	srv := &http.Server{Handler: h, TLSConfig: cfg, ErrorLog: log.New(io.Discard, "", 0), ReadHeaderTimeout: 10 * time.Second}
	done := make(chan error, 1)
	go func() { done <- srv.ServeTLS(ln, "", "") }()
	t.Cleanup(func() {
		srv.Close()
		if err := <-done; !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("serve: %v", err)
		}
	})
	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert)
	return pool
}

func listen(t testing.TB) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

// cardBench is a method alone behind the card listener (the edge, TLS that
// asks for a certificate) with a fakeHost: what the refusal tests drive.
type cardBench struct {
	method idp.Authenticator
	host   *fakeHost
	logs   *logBook
	url    string
	pool   *x509.CertPool
}

func newCardBench(t testing.TB, p *pki, tweak func(*cns.Config)) *cardBench {
	t.Helper()
	ln := listen(t)
	url := "https://" + ln.Addr().String()
	cfg := p.config(url, "http://issuer.test")
	if tweak != nil {
		tweak(&cfg)
	}
	logs := &logBook{}
	m := must(cns.New(cfg, cns.Deps{Logger: logs.logger()}))
	host := &fakeHost{}
	h := must(edge.New([]provider.Route{methodRoute(m.Handler(host))}, edge.Options{}))
	return &cardBench{method: m, host: host, logs: logs, url: url, pool: tlsListener(t, ln, h)}
}

// get fetches the card page for challenge "good" presenting card (none if
// nil), without following redirects.
func (cb *cardBench) get(t testing.TB, card *tls.Certificate) (*http.Response, string) {
	t.Helper()
	cfg := &tls.Config{RootCAs: cb.pool}
	if card != nil {
		cfg.Certificates = []tls.Certificate{*card}
	}
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: cfg},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	defer c.CloseIdleConnections()
	resp, err := c.Get(cb.url + "/login/cns" + cns.PathCard + "?challenge=good")
	if err != nil {
		t.Fatalf("card page: %v (a TLS failure?)", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, string(body)
}
