package delivery

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"mime"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"net/smtp"
	"net/textproto"
	"slices"
	"strings"
	"time"
)

// The TLS modes of SMTPConfig.TLS.
const (
	// TLSNone sends in clear text; allowed only to a loopback server (a local relay).
	TLSNone = "none"
	// TLSStartTLS upgrades the connection with STARTTLS and fails if the server
	// does not offer it (the usual port 587).
	TLSStartTLS = "starttls"
	// TLSImplicit speaks TLS from the first byte (the usual port 465).
	TLSImplicit = "implicit"
)

// SMTPConfig configures an SMTPSender.
type SMTPConfig struct {
	// Addr is the server's host:port.
	Addr string
	// From is the sender, "noreply@example.it" or "INPS <noreply@example.it>";
	// its address is also the envelope sender.
	From string
	// Username and Password, when set, authenticate with AUTH PLAIN (or LOGIN
	// if the server offers only that), always over TLS or to a loopback server.
	Username string
	Password string
	// TLS is none (loopback servers only), starttls or implicit; empty means starttls.
	TLS string
	// Timeout bounds a whole Send, from dialling to QUIT (default 30s).
	Timeout time.Duration
	// HelloName is the name sent with EHLO (default "localhost").
	HelloName string
	// RootCAs verifies the server's certificate; nil means the system roots.
	RootCAs *x509.CertPool
}

// SMTPSender sends plain-text mail through one SMTP server: one instance for
// email, another (with the PEC provider's server and mailbox) for PEC.
type SMTPSender struct {
	cfg      SMTPConfig
	host     string
	from     *mail.Address
	domain   string
	loopback bool
	now      func() time.Time
}

// NewSMTP validates cfg and returns a sender. Errors name the offending field.
func NewSMTP(cfg SMTPConfig) (*SMTPSender, error) {
	bad := func(field, format string, args ...any) error {
		return fmt.Errorf("delivery: smtp: %s: %s", field, fmt.Sprintf(format, args...))
	}
	host, port, err := net.SplitHostPort(cfg.Addr)
	if err != nil || host == "" || port == "" {
		return nil, bad("Addr", "want host:port, got %q", cfg.Addr)
	}
	if hasCRLF(cfg.From) {
		return nil, bad("From", "must not contain a line break")
	}
	from, err := mail.ParseAddress(cfg.From)
	if err != nil {
		return nil, bad("From", "not an email address: %v", err)
	}
	at := strings.LastIndexByte(from.Address, '@')
	if at < 0 || !isASCII(from.Address) {
		return nil, bad("From", "not an ASCII email address")
	}
	if (cfg.Username == "") != (cfg.Password == "") {
		return nil, bad("Username", "Username and Password go together")
	}
	if hasCRLF(cfg.Username) || hasCRLF(cfg.Password) {
		return nil, bad("Username", "credentials must not contain a line break")
	}
	if cfg.TLS == "" {
		cfg.TLS = TLSStartTLS
	}
	loopback := isLoopbackHost(host)
	switch cfg.TLS {
	case TLSNone:
		if !loopback {
			return nil, bad("TLS", "%q is allowed only for a loopback server, not %q", TLSNone, host)
		}
	case TLSStartTLS, TLSImplicit:
	default:
		return nil, bad("TLS", "want %s, %s or %s, got %q", TLSNone, TLSStartTLS, TLSImplicit, cfg.TLS)
	}
	if cfg.Timeout < 0 {
		return nil, bad("Timeout", "must not be negative")
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 30 * time.Second
	}
	if cfg.HelloName == "" {
		cfg.HelloName = "localhost"
	}
	if strings.ContainsAny(cfg.HelloName, " \t\r\n") || !isASCII(cfg.HelloName) {
		return nil, bad("HelloName", "not a host name: %q", cfg.HelloName)
	}
	return &SMTPSender{
		cfg: cfg, host: host, from: from, domain: from.Address[at+1:],
		loopback: loopback, now: time.Now,
	}, nil
}

// Send delivers m to the email address m.To. A To or Subject holding a line
// break, a malformed address, and a 5xx reply to RCPT or DATA are permanent
// failures; anything else (connection, TLS, authentication, 4xx) is retryable.
func (s *SMTPSender) Send(ctx context.Context, m Outgoing) error {
	if hasCRLF(m.To) {
		return permanent(errors.New("smtp: recipient holds a line break (header injection refused)"))
	}
	if hasCRLF(m.Subject) {
		return permanent(errors.New("smtp: subject holds a line break (header injection refused)"))
	}
	to, err := mail.ParseAddress(m.To)
	if err != nil {
		return permanent(fmt.Errorf("smtp: recipient is not an email address: %w", err))
	}
	if !isASCII(to.Address) {
		return permanent(errors.New("smtp: internationalized recipient addresses are not supported"))
	}
	msg, err := s.compose(m, to)
	if err != nil {
		return permanent(err)
	}

	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	conn, err := s.dial(ctx)
	if err != nil {
		return fmt.Errorf("smtp: connect %s: %w", s.cfg.Addr, err)
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	// Cancelling ctx aborts any blocked read or write.
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()

	err = s.session(conn, to.Address, msg)
	if err != nil && ctx.Err() != nil {
		return fmt.Errorf("smtp: %w (%w)", ctx.Err(), err)
	}
	return err
}

// dial connects, in TLS from the start in implicit mode.
func (s *SMTPSender) dial(ctx context.Context) (net.Conn, error) {
	d := &net.Dialer{}
	if s.cfg.TLS == TLSImplicit {
		td := &tls.Dialer{NetDialer: d, Config: s.tlsConfig()}
		return td.DialContext(ctx, "tcp", s.cfg.Addr)
	}
	return d.DialContext(ctx, "tcp", s.cfg.Addr)
}

func (s *SMTPSender) tlsConfig() *tls.Config {
	return &tls.Config{ServerName: s.host, RootCAs: s.cfg.RootCAs, MinVersion: tls.VersionTLS12}
}

// session runs the SMTP dialogue on conn.
func (s *SMTPSender) session(conn net.Conn, rcpt string, msg []byte) error {
	c, err := smtp.NewClient(conn, s.host)
	if err != nil {
		return fmt.Errorf("smtp: greeting: %w", err)
	}
	defer c.Close()
	if err := c.Hello(s.cfg.HelloName); err != nil {
		return fmt.Errorf("smtp: hello: %w", err)
	}
	if s.cfg.TLS == TLSStartTLS {
		if ok, _ := c.Extension("STARTTLS"); !ok {
			return errors.New("smtp: the server does not offer STARTTLS")
		}
		if err := c.StartTLS(s.tlsConfig()); err != nil {
			return fmt.Errorf("smtp: starttls: %w", err)
		}
	}
	if s.cfg.Username != "" {
		ok, mechs := c.Extension("AUTH")
		if !ok {
			return errors.New("smtp: the server does not offer AUTH")
		}
		a, err := s.auth(strings.Fields(strings.ToUpper(mechs)))
		if err != nil {
			return err
		}
		if err := c.Auth(a); err != nil {
			return fmt.Errorf("smtp: auth: %w", err)
		}
	}
	if err := c.Mail(s.from.Address); err != nil {
		return fmt.Errorf("smtp: mail from: %w", err)
	}
	if err := c.Rcpt(rcpt); err != nil {
		return classify(fmt.Errorf("smtp: rcpt to: %w", err))
	}
	w, err := c.Data()
	if err != nil {
		return classify(fmt.Errorf("smtp: data: %w", err))
	}
	if _, err := w.Write(msg); err != nil {
		return fmt.Errorf("smtp: data: %w", err)
	}
	if err := w.Close(); err != nil {
		return classify(fmt.Errorf("smtp: data: %w", err))
	}
	// The message is accepted; a failing QUIT changes nothing.
	_ = c.Quit()
	return nil
}

// classify makes a 5xx server reply permanent.
func classify(err error) error {
	var te *textproto.Error
	if errors.As(err, &te) && te.Code >= 500 && te.Code < 600 {
		return permanent(err)
	}
	return err
}

// auth picks PLAIN, or LOGIN when the server offers only that.
func (s *SMTPSender) auth(mechs []string) (smtp.Auth, error) {
	switch {
	case slices.Contains(mechs, "PLAIN"):
		return &credentials{mech: "PLAIN", user: s.cfg.Username, pass: s.cfg.Password, host: s.host, loopback: s.loopback}, nil
	case slices.Contains(mechs, "LOGIN"):
		return &credentials{mech: "LOGIN", user: s.cfg.Username, pass: s.cfg.Password, host: s.host, loopback: s.loopback}, nil
	}
	return nil, fmt.Errorf("smtp: the server offers neither AUTH PLAIN nor LOGIN (%s)", strings.Join(mechs, " "))
}

// credentials is an smtp.Auth for PLAIN (RFC 4616) and LOGIN that refuses to
// send them in clear text except to a loopback server.
type credentials struct {
	mech, user, pass, host string
	loopback               bool
	step                   int
}

func (a *credentials) Start(server *smtp.ServerInfo) (string, []byte, error) {
	if !server.TLS && !a.loopback {
		return "", nil, errors.New("smtp: refusing to send credentials over an unencrypted connection")
	}
	if server.Name != a.host {
		return "", nil, errors.New("smtp: wrong host name")
	}
	if a.mech == "PLAIN" {
		return "PLAIN", []byte("\x00" + a.user + "\x00" + a.pass), nil
	}
	a.step = 0
	return "LOGIN", nil, nil
}

func (a *credentials) Next(_ []byte, more bool) ([]byte, error) {
	if !more {
		return nil, nil
	}
	if a.mech != "LOGIN" {
		return nil, errors.New("smtp: unexpected server challenge")
	}
	a.step++
	switch a.step {
	case 1:
		return []byte(a.user), nil
	case 2:
		return []byte(a.pass), nil
	}
	return nil, errors.New("smtp: unexpected server challenge")
}

// compose builds the RFC 5322 message, body in quoted-printable UTF-8, with
// CRLF line ends.
func (s *SMTPSender) compose(m Outgoing, to *mail.Address) ([]byte, error) {
	var b bytes.Buffer
	h := func(name, value string) { b.WriteString(foldHeader(name, value) + "\r\n") }
	h("Date", s.now().Format(time.RFC1123Z))
	h("From", s.from.String())
	h("To", to.String())
	h("Subject", encodeHeader(m.Subject))
	h("Message-ID", s.messageID(m.ID))
	h("MIME-Version", "1.0")
	h("Content-Type", "text/plain; charset=utf-8")
	h("Content-Transfer-Encoding", "quoted-printable")
	for line := range strings.SplitSeq(b.String(), "\r\n") {
		if len(line) > 998 {
			return nil, errors.New("smtp: a header line is longer than 998 characters")
		}
	}
	b.WriteString("\r\n")
	qp := quotedprintable.NewWriter(&b)
	if _, err := qp.Write([]byte(m.Body)); err != nil {
		return nil, err
	}
	if err := qp.Close(); err != nil {
		return nil, err
	}
	b.WriteString("\r\n")
	return b.Bytes(), nil
}

// encodeHeader encodes a value holding non-ASCII (or control) characters as
// RFC 2047 encoded words; plain ASCII stays as it is.
func encodeHeader(v string) string {
	return mime.QEncoding.Encode("utf-8", v)
}

// foldHeader renders "Name: value", folded at spaces so that lines stay
// within 78 characters where the words allow (unfolding restores the value;
// between encoded words the space carries no meaning).
func foldHeader(name, value string) string {
	var b strings.Builder
	b.WriteString(name + ":")
	line := len(name) + 1
	for _, word := range strings.Split(value, " ") {
		if word != "" && line > 0 && line+1+len(word) > 78 {
			b.WriteString("\r\n")
			line = 0
		}
		b.WriteString(" " + word)
		line += 1 + len(word)
	}
	return b.String()
}

// messageID is <ID@domain of From>, so that a retried message keeps its
// Message-ID; a random one stands in for an ID that is not a dot-atom.
func (s *SMTPSender) messageID(id string) string {
	if id == "" || len(id) > 128 || strings.IndexFunc(id, func(r rune) bool { return !isAtext(r) }) >= 0 {
		var r [16]byte
		_, _ = rand.Read(r[:])
		id = hex.EncodeToString(r[:])
	}
	return "<" + id + "." + "ponte@" + s.domain + ">"
}

// isAtext reports whether r may appear in an RFC 5322 dot-atom.
func isAtext(r rune) bool {
	switch {
	case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
		return true
	}
	return strings.ContainsRune("!#$%&'*+-/=?^_`{|}~", r)
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// isLoopbackHost reports whether host is localhost or a loopback IP.
func isLoopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
