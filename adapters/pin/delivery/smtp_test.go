package delivery

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"io"
	"math/big"
	"mime"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	gosmtp "github.com/emersion/go-smtp"
)

// received is a message the test SMTP server accepted.
type received struct {
	from, to   string
	data       []byte
	user, pass string
	tls        bool
}

// smtpServer is a real SMTP server on loopback (go-smtp).
type smtpServer struct {
	addr string
	// mechs are the AUTH mechanisms offered (nil: none); user/pass the accepted credentials.
	mechs      []string
	user, pass string
	// rcptErr, when set, is the answer to RCPT.
	rcptErr error

	mu   sync.Mutex
	msgs []received
}

type serverOpts struct {
	mechs      []string
	user, pass string
	rcptErr    error
	// tlsConfig enables STARTTLS, or implicit TLS with implicit.
	tlsConfig *tls.Config
	implicit  bool
}

func startSMTP(t *testing.T, o serverOpts) *smtpServer {
	t.Helper()
	s := &smtpServer{mechs: o.mechs, user: o.user, pass: o.pass, rcptErr: o.rcptErr}
	srv := gosmtp.NewServer(gosmtp.BackendFunc(func(c *gosmtp.Conn) (gosmtp.Session, error) {
		_, isTLS := c.TLSConnectionState()
		return &smtpSession{srv: s, tls: isTLS, conn: c}, nil
	}))
	srv.Domain = "mx.test"
	srv.AllowInsecureAuth = o.tlsConfig == nil // loopback only
	srv.ReadTimeout, srv.WriteTimeout = 10*time.Second, 10*time.Second
	srv.ErrorLog = testLogger{t}
	var l net.Listener
	var err error
	if o.implicit {
		l, err = tls.Listen("tcp", "127.0.0.1:0", o.tlsConfig)
	} else {
		srv.TLSConfig = o.tlsConfig
		l, err = net.Listen("tcp", "127.0.0.1:0")
	}
	if err != nil {
		t.Fatal(err)
	}
	s.addr = l.Addr().String()
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })
	return s
}

func (s *smtpServer) received() []received {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]received(nil), s.msgs...)
}

type testLogger struct{ t *testing.T }

func (l testLogger) Printf(format string, v ...any) { l.t.Logf("smtp server: "+format, v...) }
func (l testLogger) Println(v ...any)               { l.t.Log(append([]any{"smtp server:"}, v...)...) }

type smtpSession struct {
	srv        *smtpServer
	conn       *gosmtp.Conn
	tls        bool
	user, pass string
	authed     bool
	cur        received
}

func (s *smtpSession) AuthMechanisms() []string { return s.srv.mechs }

func (s *smtpSession) Auth(mech string) (sasl.Server, error) {
	check := func(user, pass string) error {
		if user != s.srv.user || pass != s.srv.pass {
			return errors.New("invalid credentials")
		}
		s.user, s.pass, s.authed = user, pass, true
		return nil
	}
	switch mech {
	case sasl.Plain:
		return sasl.NewPlainServer(func(_, user, pass string) error { return check(user, pass) }), nil
	case sasl.Login:
		return &loginServer{check: check}, nil
	}
	return nil, gosmtp.ErrAuthUnknownMechanism
}

func (s *smtpSession) Mail(from string, _ *gosmtp.MailOptions) error {
	if len(s.srv.mechs) > 0 && !s.authed {
		return gosmtp.ErrAuthRequired
	}
	_, s.tls = s.conn.TLSConnectionState()
	s.cur = received{from: from, user: s.user, pass: s.pass, tls: s.tls}
	return nil
}

func (s *smtpSession) Rcpt(to string, _ *gosmtp.RcptOptions) error {
	if s.srv.rcptErr != nil {
		return s.srv.rcptErr
	}
	s.cur.to = to
	return nil
}

func (s *smtpSession) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	s.cur.data = b
	s.srv.mu.Lock()
	s.srv.msgs = append(s.srv.msgs, s.cur)
	s.srv.mu.Unlock()
	return nil
}

func (s *smtpSession) Reset()        {}
func (s *smtpSession) Logout() error { return nil }

// loginServer is the server side of AUTH LOGIN, which go-sasl lacks.
type loginServer struct {
	check func(user, pass string) error
	step  int
	user  string
}

func (l *loginServer) Next(resp []byte) ([]byte, bool, error) {
	l.step++
	switch l.step {
	case 1:
		if len(resp) > 0 {
			l.user, l.step = string(resp), 2
			return []byte("Password:"), false, nil
		}
		return []byte("Username:"), false, nil
	case 2:
		l.user = string(resp)
		return []byte("Password:"), false, nil
	case 3:
		return nil, true, l.check(l.user, string(resp))
	}
	return nil, false, errors.New("unexpected response")
}

// selfSigned returns a server certificate for 127.0.0.1 and a pool trusting it.
func selfSigned(t *testing.T) (*tls.Config, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "ponte test smtp"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		DNSNames:              []string{"localhost"},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}, pool
}

func newSMTP(t *testing.T, cfg SMTPConfig) *SMTPSender {
	t.Helper()
	s, err := NewSMTP(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// parse reads a received message, decoding the quoted-printable body.
func parse(t *testing.T, data []byte) (*mail.Message, string) {
	t.Helper()
	if bytes.Contains(bytes.ReplaceAll(data, []byte("\r\n"), nil), []byte("\n")) {
		t.Errorf("message has bare LF line ends:\n%q", data)
	}
	for _, line := range strings.Split(string(data), "\r\n") {
		if len(line) > 78 {
			t.Errorf("line longer than 78 characters: %q", line)
		}
	}
	msg, err := mail.ReadMessage(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("received message does not parse: %v\n%s", err, data)
	}
	body, err := io.ReadAll(quotedprintable.NewReader(msg.Body))
	if err != nil {
		t.Fatalf("body is not quoted-printable: %v", err)
	}
	return msg, strings.ReplaceAll(string(body), "\r\n", "\n")
}

func TestSMTPSendsMessage(t *testing.T) {
	srv := startSMTP(t, serverOpts{mechs: []string{sasl.Plain}, user: "ponte", pass: "s3cret pass"})
	s := newSMTP(t, SMTPConfig{
		Addr: srv.addr, From: "INPS PIN <noreply@inps.example.it>", Username: "ponte", Password: "s3cret pass",
		TLS: TLSNone, HelloName: "ponte.test",
	})
	fixed := time.Date(2026, 3, 2, 10, 0, 0, 0, time.FixedZone("CET", 3600))
	s.now = func() time.Time { return fixed }

	body := "Gentile cittadino, ecco la seconda parte (8 caratteri) del suo PIN INPS: K7=Q2ZX9\n" +
		".una riga che comincia con un punto\n" +
		"Unisca le due parti per il primo accesso. La seconda parte le arriverà per posta all'indirizzo di residenza."
	subject := "PIN INPS: è arrivata la seconda parte — una riga piuttosto lunga con accenti àèìòù"
	m := Outgoing{ID: "abc_DEF-123", Channel: "email", To: "mario.rossi@example.it", Subject: subject, Body: body}
	if err := s.Send(context.Background(), m); err != nil {
		t.Fatalf("Send: %v", err)
	}
	got := srv.received()
	if len(got) != 1 {
		t.Fatalf("server received %d messages, want 1", len(got))
	}
	r := got[0]
	if r.from != "noreply@inps.example.it" || r.to != "mario.rossi@example.it" {
		t.Errorf("envelope %s -> %s", r.from, r.to)
	}
	if r.user != "ponte" || r.pass != "s3cret pass" {
		t.Errorf("AUTH PLAIN credentials %q/%q", r.user, r.pass)
	}
	msg, gotBody := parse(t, r.data)
	h := msg.Header
	dec := new(mime.WordDecoder)
	gotSubject, err := dec.DecodeHeader(h.Get("Subject"))
	if err != nil || gotSubject != subject {
		t.Errorf("Subject = %q (raw %q), %v; want %q", gotSubject, h.Get("Subject"), err, subject)
	}
	if !strings.HasPrefix(h.Get("Subject"), "=?utf-8?q?") {
		t.Errorf("non-ASCII Subject not RFC 2047 encoded: %q", h.Get("Subject"))
	}
	if d, err := h.Date(); err != nil || !d.Equal(fixed) {
		t.Errorf("Date = %v, %v; want %v", d, err, fixed)
	}
	from, err := mail.ParseAddress(h.Get("From"))
	if err != nil || from.Name != "INPS PIN" || from.Address != "noreply@inps.example.it" {
		t.Errorf("From = %q", h.Get("From"))
	}
	if to, err := mail.ParseAddress(h.Get("To")); err != nil || to.Address != "mario.rossi@example.it" {
		t.Errorf("To = %q", h.Get("To"))
	}
	for name, want := range map[string]string{
		"Message-Id":                "<abc_DEF-123.ponte@inps.example.it>",
		"Mime-Version":              "1.0",
		"Content-Type":              "text/plain; charset=utf-8",
		"Content-Transfer-Encoding": "quoted-printable",
	} {
		if got := h.Get(name); got != want {
			t.Errorf("%s = %q, want %q", name, got, want)
		}
	}
	if strings.TrimSuffix(gotBody, "\n") != body {
		t.Errorf("body = %q, want %q", gotBody, body)
	}
}

func TestSMTPAuthLogin(t *testing.T) {
	srv := startSMTP(t, serverOpts{mechs: []string{sasl.Login}, user: "ponte", pass: "pw"})
	s := newSMTP(t, SMTPConfig{Addr: srv.addr, From: "noreply@inps.example.it", Username: "ponte", Password: "pw", TLS: TLSNone})
	if err := s.Send(context.Background(), Outgoing{ID: "1", To: "a@example.it", Subject: "s", Body: "b"}); err != nil {
		t.Fatalf("Send: %v", err)
	}
	if got := srv.received(); len(got) != 1 || got[0].user != "ponte" || got[0].pass != "pw" {
		t.Fatalf("received %+v", got)
	}
}

func TestSMTPFailures(t *testing.T) {
	tests := []struct {
		name      string
		opts      serverOpts
		cfg       SMTPConfig
		m         Outgoing
		permanent bool
	}{
		{
			name: "CRLF in To", m: Outgoing{To: "a@example.it\r\nBcc: victim@example.it", Subject: "s", Body: "b"},
			permanent: true,
		},
		{
			name: "LF in To", m: Outgoing{To: "a@example.it\nBcc: victim@example.it", Subject: "s", Body: "b"},
			permanent: true,
		},
		{
			name: "CRLF in Subject", m: Outgoing{To: "a@example.it", Subject: "hi\r\nBcc: victim@example.it", Body: "b"},
			permanent: true,
		},
		{
			name: "malformed address", m: Outgoing{To: "not an address", Subject: "s", Body: "b"},
			permanent: true,
		},
		{
			name: "recipient rejected 550",
			opts: serverOpts{rcptErr: &gosmtp.SMTPError{Code: 550, EnhancedCode: gosmtp.EnhancedCode{5, 1, 1}, Message: "no such user"}},
			m:    Outgoing{To: "a@example.it", Subject: "s", Body: "b"}, permanent: true,
		},
		{
			name: "greylisted 451",
			opts: serverOpts{rcptErr: &gosmtp.SMTPError{Code: 451, EnhancedCode: gosmtp.EnhancedCode{4, 7, 1}, Message: "try later"}},
			m:    Outgoing{To: "a@example.it", Subject: "s", Body: "b"},
		},
		{
			name: "wrong password",
			opts: serverOpts{mechs: []string{sasl.Plain}, user: "ponte", pass: "right"},
			cfg:  SMTPConfig{Username: "ponte", Password: "wrong"},
			m:    Outgoing{To: "a@example.it", Subject: "s", Body: "b"},
		},
		{
			name: "starttls not offered",
			cfg:  SMTPConfig{TLS: TLSStartTLS},
			m:    Outgoing{To: "a@example.it", Subject: "s", Body: "b"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := startSMTP(t, tt.opts)
			cfg := tt.cfg
			cfg.Addr, cfg.From = srv.addr, "noreply@inps.example.it"
			if cfg.TLS == "" {
				cfg.TLS = TLSNone
			}
			err := newSMTP(t, cfg).Send(context.Background(), tt.m)
			if err == nil {
				t.Fatal("Send succeeded")
			}
			if errors.Is(err, ErrPermanent) != tt.permanent {
				t.Errorf("Send: %v; permanent = %v, want %v", err, errors.Is(err, ErrPermanent), tt.permanent)
			}
			if n := len(srv.received()); n != 0 {
				t.Errorf("server accepted %d messages", n)
			}
		})
	}
}

func TestSMTPStartTLS(t *testing.T) {
	serverTLS, pool := selfSigned(t)
	srv := startSMTP(t, serverOpts{tlsConfig: serverTLS, mechs: []string{sasl.Plain}, user: "u", pass: "p"})
	m := Outgoing{ID: "x1", To: "a@example.it", Subject: "PIN", Body: "PIN: ABCD1234"}

	// Without trusting the certificate the handshake fails (retryable).
	untrusted := newSMTP(t, SMTPConfig{Addr: srv.addr, From: "noreply@inps.example.it", Username: "u", Password: "p", TLS: TLSStartTLS})
	if err := untrusted.Send(context.Background(), m); err == nil || errors.Is(err, ErrPermanent) {
		t.Fatalf("untrusted certificate: err = %v, want a retryable error", err)
	}

	s := newSMTP(t, SMTPConfig{Addr: srv.addr, From: "noreply@inps.example.it", Username: "u", Password: "p", TLS: TLSStartTLS, RootCAs: pool})
	if err := s.Send(context.Background(), m); err != nil {
		t.Fatalf("Send: %v", err)
	}
	got := srv.received()
	if len(got) != 1 || !got[0].tls || got[0].user != "u" {
		t.Fatalf("received %+v, want one message over TLS, authenticated", got)
	}
	if _, body := parse(t, got[0].data); strings.TrimSpace(body) != "PIN: ABCD1234" {
		t.Errorf("body %q", body)
	}
}

func TestSMTPImplicitTLS(t *testing.T) {
	serverTLS, pool := selfSigned(t)
	srv := startSMTP(t, serverOpts{tlsConfig: serverTLS, implicit: true})
	s := newSMTP(t, SMTPConfig{Addr: srv.addr, From: "noreply@inps.example.it", TLS: TLSImplicit, RootCAs: pool})
	if err := s.Send(context.Background(), Outgoing{ID: "x", To: "a@example.it", Subject: "s", Body: "b"}); err != nil {
		t.Fatalf("Send: %v", err)
	}
	if got := srv.received(); len(got) != 1 || !got[0].tls {
		t.Fatalf("received %+v, want one message over TLS", got)
	}
}

func TestSMTPTimeout(t *testing.T) {
	// A server that accepts and never greets.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	s := newSMTP(t, SMTPConfig{Addr: l.Addr().String(), From: "noreply@inps.example.it", TLS: TLSNone, Timeout: 200 * time.Millisecond})
	start := time.Now()
	err = s.Send(context.Background(), Outgoing{ID: "x", To: "a@example.it", Subject: "s", Body: "b"})
	if err == nil || errors.Is(err, ErrPermanent) || time.Since(start) > 5*time.Second {
		t.Fatalf("Send = %v after %v; want a quick retryable error", err, time.Since(start))
	}
}

func TestNewSMTPValidates(t *testing.T) {
	ok := SMTPConfig{Addr: "smtp.example.it:587", From: "noreply@inps.example.it"}
	tests := []struct {
		name  string
		edit  func(*SMTPConfig)
		field string // empty: valid
	}{
		{"defaults", func(*SMTPConfig) {}, ""},
		{"implicit", func(c *SMTPConfig) { c.TLS = TLSImplicit }, ""},
		{"none on loopback", func(c *SMTPConfig) { c.Addr, c.TLS = "127.0.0.1:25", TLSNone }, ""},
		{"none on localhost", func(c *SMTPConfig) { c.Addr, c.TLS = "localhost:25", TLSNone }, ""},
		{"none on ::1", func(c *SMTPConfig) { c.Addr, c.TLS = "[::1]:25", TLSNone }, ""},
		{"no port", func(c *SMTPConfig) { c.Addr = "smtp.example.it" }, "Addr"},
		{"empty addr", func(c *SMTPConfig) { c.Addr = "" }, "Addr"},
		{"bad from", func(c *SMTPConfig) { c.From = "nobody" }, "From"},
		{"from injection", func(c *SMTPConfig) { c.From = "a@example.it\r\nBcc: b@example.it" }, "From"},
		{"none on remote", func(c *SMTPConfig) { c.TLS = TLSNone }, "TLS"},
		{"unknown tls", func(c *SMTPConfig) { c.TLS = "ssl" }, "TLS"},
		{"user without password", func(c *SMTPConfig) { c.Username = "u" }, "Username"},
		{"negative timeout", func(c *SMTPConfig) { c.Timeout = -time.Second }, "Timeout"},
		{"bad hello", func(c *SMTPConfig) { c.HelloName = "a b" }, "HelloName"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := ok
			tt.edit(&cfg)
			_, err := NewSMTP(cfg)
			switch {
			case tt.field == "" && err != nil:
				t.Fatalf("NewSMTP: %v", err)
			case tt.field != "" && (err == nil || !strings.Contains(err.Error(), tt.field)):
				t.Fatalf("NewSMTP: err = %v, want one naming %s", err, tt.field)
			}
		})
	}
}

// TestDispatcherOverSMTP runs the whole path: outbox, dispatcher, SMTP.
func TestDispatcherOverSMTP(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		srv := startSMTP(t, serverOpts{})
		ob, box, clk := b.open(t), testBox(t), newClock()
		s := newSMTP(t, SMTPConfig{Addr: srv.addr, From: "noreply@inps.example.it", TLS: TLSNone})
		d := dispatcher(t, ob, Config{Box: box, Senders: map[string]Sender{"email": s, "pec": s}}, clk, nil)
		id := enqueue(t, ob, box, clk.Now(), "pec", "mario@pec.example.it", "PIN INPS, prima parte: {{secret}}", "ABCD1234")
		if sent, failed, err := d.RunOnce(context.Background()); sent != 1 || failed != 0 || err != nil {
			t.Fatalf("RunOnce = %d, %d, %v", sent, failed, err)
		}
		got := srv.received()
		if len(got) != 1 {
			t.Fatalf("server received %d messages", len(got))
		}
		if _, body := parse(t, got[0].data); strings.TrimSpace(body) != "PIN INPS, prima parte: ABCD1234" {
			t.Errorf("body %q", body)
		}
		if m := get(t, ob, id); m.SentAt.IsZero() || len(m.Secret) != 0 {
			t.Errorf("not marked sent with the secret erased: %+v", m)
		}
	})
}
