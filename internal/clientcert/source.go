package clientcert

import (
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strings"
)

// The header formats Options.Header names.
const (
	// FormatRFC9440 reads Client-Cert and Client-Cert-Chain (RFC 9440).
	FormatRFC9440 = "rfc9440"
	// FormatNginx reads X-SSL-Client-Cert set to nginx's $ssl_client_escaped_cert.
	FormatNginx = "nginx"
	// FormatEnvoy reads Envoy's X-Forwarded-Client-Cert.
	FormatEnvoy = "envoy"
)

// certHeaders are deleted from every request.
var certHeaders = []string{HeaderClientCert, HeaderClientCertChain, HeaderNginx, HeaderXFCC}

// Options configure a Source. The zero Options read the TLS handshake only.
type Options struct {
	// TrustedProxies are the CIDRs or IPs of the TLS-terminating proxies
	// whose certificate header is believed. They are matched against the TCP
	// peer of the request, never against X-Forwarded-For: trusting a proxy
	// for the client's address does not trust it for a certificate.
	TrustedProxies []string
	// Header is the format those proxies use: "" (none), FormatRFC9440,
	// FormatNginx or FormatEnvoy. It is set if and only if TrustedProxies is.
	Header string
}

// Source finds the client certificate chain of each request and carries it
// in the request's context (With) for the login method, which reads it with
// From and verifies it. Its methods are safe for concurrent use.
type Source struct {
	proxies []netip.Prefix
	read    func(http.Header) ([]*x509.Certificate, error)
	log     *slog.Logger
}

// New validates opts, reporting every bad field at once, and returns a
// Source; log receives the reasons a header is ignored (nil discards them).
func New(opts Options, log *slog.Logger) (*Source, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Source{log: log}
	var errs []error
	for i, p := range opts.TrustedProxies {
		prefix, err := parseProxy(p)
		if err != nil {
			errs = append(errs, fmt.Errorf("clientcert: TrustedProxies[%d] %q: not an IP or CIDR", i, p))
			continue
		}
		s.proxies = append(s.proxies, prefix)
	}
	switch opts.Header {
	case "":
	case FormatRFC9440:
		s.read = readRFC9440
	case FormatNginx:
		s.read = readNginx
	case FormatEnvoy:
		s.read = readXFCC
	default:
		errs = append(errs, fmt.Errorf("clientcert: Header %q: want %q, %q, %q or none",
			opts.Header, FormatRFC9440, FormatNginx, FormatEnvoy))
	}
	switch {
	case opts.Header != "" && len(opts.TrustedProxies) == 0:
		errs = append(errs, fmt.Errorf("clientcert: Header %q needs TrustedProxies: the addresses of the proxies that set it", opts.Header))
	case opts.Header == "" && len(opts.TrustedProxies) > 0:
		errs = append(errs, errors.New("clientcert: TrustedProxies needs Header: the format those proxies use"))
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return s, nil
}

// parseProxy reads a CIDR or a single IP as a prefix of unmapped addresses.
func parseProxy(s string) (netip.Prefix, error) {
	if !strings.Contains(s, "/") {
		addr, err := netip.ParseAddr(s)
		if err != nil || addr.Zone() != "" {
			return netip.Prefix{}, errors.New("not an IP")
		}
		addr = addr.Unmap()
		return netip.PrefixFrom(addr, addr.BitLen()), nil
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	if p.Addr().Is4In6() && p.Bits() >= 96 {
		p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
	}
	return p.Masked(), nil
}

// Handler runs Apply on every request before next.
func (s *Source) Handler(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		next.ServeHTTP(w, s.Apply(r))
	})
}

// Apply returns r carrying its client certificate chain, leaf first, in its
// context, and deletes every certificate header (Client-Cert,
// Client-Cert-Chain, X-SSL-Client-Cert, X-Forwarded-Client-Cert) from it, so
// that nothing after it can read a forged one. It must see r.RemoteAddr as
// the server set it: the TCP peer, before any X-Forwarded-For rewriting.
//
// The chain is the one presented in r's TLS handshake, if any (never that of
// a resumed session, presented in an earlier handshake: that is logged and
// yields no chain); otherwise, if the TCP peer is one of the TrustedProxies,
// the one in their header. A header that does not parse is logged at Info and
// yields no chain: the request goes on without one. Nothing is verified here.
func (s *Source) Apply(r *http.Request) *http.Request {
	chain := s.chain(r)
	for _, h := range certHeaders {
		r.Header.Del(h)
	}
	if len(chain) == 0 {
		return r
	}
	return r.WithContext(With(r.Context(), chain))
}

// chain finds r's chain; see Apply.
func (s *Source) chain(r *http.Request) []*x509.Certificate {
	if r.TLS != nil && r.TLS.DidResume && len(r.TLS.PeerCertificates) > 0 {
		// A resumed session's certificates were presented in an earlier
		// handshake, not in this one (CardTLSConfig never resumes).
		s.log.WarnContext(r.Context(), "client certificate of a resumed TLS session ignored")
		return nil
	}
	if r.TLS != nil && len(r.TLS.PeerCertificates) > 0 {
		// The connection's slice is shared by its requests: hand out a copy.
		return slices.Clone(r.TLS.PeerCertificates)
	}
	if !hasCertHeader(r.Header) {
		return nil
	}
	peer, ok := tcpPeer(r.RemoteAddr)
	if s.read == nil || !ok || !s.trusted(peer) {
		s.log.DebugContext(r.Context(), "client certificate header from an untrusted peer removed", "peer", r.RemoteAddr)
		return nil
	}
	chain, err := s.read(r.Header)
	if err != nil {
		s.log.InfoContext(r.Context(), "client certificate header ignored", "peer", peer.String(), "err", err)
		return nil
	}
	return chain
}

func (s *Source) trusted(peer netip.Addr) bool {
	for _, p := range s.proxies {
		if p.Contains(peer) {
			return true
		}
	}
	return false
}

func hasCertHeader(h http.Header) bool {
	for _, name := range certHeaders {
		if len(h.Values(name)) > 0 {
			return true
		}
	}
	return false
}

// tcpPeer reads the address of RemoteAddr ("ip:port"), unmapped and without zone.
func tcpPeer(remoteAddr string) (netip.Addr, bool) {
	host, _, err := net.SplitHostPort(remoteAddr)
	if err != nil {
		return netip.Addr{}, false
	}
	addr, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}, false
	}
	return addr.WithZone("").Unmap(), true
}

func readRFC9440(h http.Header) ([]*x509.Certificate, error) {
	cert, err := single(h, HeaderClientCert)
	if err != nil {
		return nil, err
	}
	return ParseRFC9440(cert, strings.Join(h.Values(HeaderClientCertChain), ", "))
}

func readNginx(h http.Header) ([]*x509.Certificate, error) {
	v, err := single(h, HeaderNginx)
	if err != nil {
		return nil, err
	}
	return ParseNginx(v)
}

// readXFCC joins the header's lines as one list (RFC 9110 §5.3).
func readXFCC(h http.Header) ([]*x509.Certificate, error) {
	return ParseXFCC(strings.Join(h.Values(HeaderXFCC), ", "))
}

// single returns the one line of a header that is not a list; a repeated one
// is an error.
func single(h http.Header, name string) (string, error) {
	switch v := h.Values(name); len(v) {
	case 0:
		return "", nil
	case 1:
		return v[0], nil
	default:
		return "", fmt.Errorf("%s: %d lines, want 1", name, len(v))
	}
}
