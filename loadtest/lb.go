package main

import (
	"context"
	"crypto/tls"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/http/httputil"
	"strings"
	"sync/atomic"
	"time"

	"github.com/ponte-id/ponte/internal/clientcert"
	"github.com/ponte-id/ponte/loadtest/flow"
)

// headerNode names, on every answer, the node that gave it (the balancer's
// own: the load client tells from it which node issued a SPID AuthnRequest
// and which one consumed its response).
const headerNode = flow.NodeHeader

// headerCert is where the card host puts the card, as deploy/cluster's
// nginx does ($ssl_client_escaped_cert; PONTE_CLIENT_CERT_HEADER=nginx).
const headerCert = "X-SSL-Client-Cert"

// lbCmd is a small load balancer on loopback, as nginx with
// proxy_next_upstream error: a request whose connection to a node cannot be
// made goes to the next node (it was never sent); a node refusing
// connections is left alone for a second. A request in flight on a node that
// dies gets 502. With -card-listen it is also the CNS card host of
// deploy/cluster/nginx.conf: TLS that asks for a client certificate, no
// session resumption or keep-alive, only /login/cns/ forwarded, the card in
// X-SSL-Client-Cert.
func lbCmd(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("lb", flag.ContinueOnError)
	listen := fs.String("listen", "127.0.0.1:18600", "listen address (loopback)")
	backends := fs.String("backends", "", "comma-separated host:port of the nodes (loopback)")
	cardListen := fs.String("card-listen", "", "the card host's listen address (loopback; empty: none)")
	cardCert := fs.String("card-cert", "", "the card host's TLS certificate (PEM chain)")
	cardKey := fs.String("card-key", "", "its key")
	if err := fs.Parse(args); err != nil {
		return err
	}
	nodes := strings.Split(*backends, ",")
	for _, a := range append([]string{*listen}, nodes...) {
		if h, _, err := net.SplitHostPort(a); err != nil || !isLoopback(h) {
			return fmt.Errorf("%q must be a loopback host:port", a)
		}
	}
	proxy := balancer(nodes)
	srv := &http.Server{Addr: *listen, Handler: issuerHost(proxy), ReadHeaderTimeout: 10 * time.Second}
	servers := []*http.Server{srv}
	errs := make(chan error, 2)
	if *cardListen != "" {
		if h, _, err := net.SplitHostPort(*cardListen); err != nil || !isLoopback(h) {
			return errors.New("-card-listen must be a loopback host:port")
		}
		pair, err := tls.LoadX509KeyPair(*cardCert, *cardKey)
		if err != nil {
			return fmt.Errorf("card host: %w", err)
		}
		card := &http.Server{Addr: *cardListen, Handler: cardHost(proxy, *listen), ReadHeaderTimeout: 10 * time.Second,
			TLSConfig: &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{pair},
				// ssl_verify_client optional_no_ca: ask, verify nothing (Ponte does); ssl_session_tickets off.
				ClientAuth: tls.RequestClientCert, SessionTicketsDisabled: true},
			ErrorLog: log.New(io.Discard, "", 0)}
		card.SetKeepAlivesEnabled(false) // keepalive_timeout 0
		servers = append(servers, card)
		go func() { errs <- card.ListenAndServeTLS("", "") }()
	}
	go func() { errs <- srv.ListenAndServe() }()
	go func() {
		<-ctx.Done()
		for _, s := range servers {
			_ = s.Close()
		}
	}()
	if err := <-errs; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// balancer proxies to nodes, picking them in turn at each new connection.
func balancer(nodes []string) *httputil.ReverseProxy {
	downUntil := make([]atomic.Int64, len(nodes))
	var next atomic.Uint64
	dialer := &net.Dialer{Timeout: time.Second}
	tr := &http.Transport{MaxIdleConnsPerHost: 512, IdleConnTimeout: 30 * time.Second,
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var errs []error
			start := next.Add(1)
			for k := range len(nodes) {
				i := int(start+uint64(k)) % len(nodes)
				if time.Now().UnixNano() < downUntil[i].Load() && k < len(nodes)-1 {
					continue
				}
				c, err := dialer.DialContext(ctx, "tcp", nodes[i])
				if err == nil {
					return c, nil
				}
				downUntil[i].Store(time.Now().Add(time.Second).UnixNano())
				errs = append(errs, err)
			}
			return nil, errors.Join(errs...)
		}}
	type nodeKey struct{}
	return &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.Out.URL.Scheme, r.Out.URL.Host = "http", "ponte-nodes" // the dialer picks the node
			r.Out.Host = r.In.Host
			r.SetXForwarded()
			node := new(string)
			ctx := context.WithValue(r.Out.Context(), nodeKey{}, node)
			r.Out = r.Out.WithContext(httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
				GotConn: func(i httptrace.GotConnInfo) { *node = i.Conn.RemoteAddr().String() }}))
		},
		ModifyResponse: func(resp *http.Response) error {
			if node, ok := resp.Request.Context().Value(nodeKey{}).(*string); ok {
				resp.Header.Set(headerNode, *node)
			}
			return nil
		},
		Transport: tr,
		// A node that dies or closes a connection gives 502, counted by `run`.
		ErrorLog: log.New(io.Discard, "", 0),
	}
}

// issuerHost is the issuer's host: a certificate header a client sent never
// reaches the nodes (nginx: proxy_set_header X-SSL-Client-Cert "").
func issuerHost(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Header.Del(headerCert)
		next.ServeHTTP(w, r)
	})
}

// cardHost forwards the card pages with the card the handshake presented
// (none: an empty header) and the issuer's Host, and answers 404 elsewhere.
func cardHost(next http.Handler, issuerHost string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasPrefix(r.URL.Path, "/login/cns/") {
			http.NotFound(w, r)
			return
		}
		r.Header.Del(headerCert)
		if r.TLS != nil && len(r.TLS.PeerCertificates) > 0 {
			r.Header.Set(headerCert, clientcert.EscapeNginx(string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: r.TLS.PeerCertificates[0].Raw}))))
		}
		r.Host = issuerHost
		next.ServeHTTP(w, r)
	})
}
