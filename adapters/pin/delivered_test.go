package pin_test

import (
	"context"
	"encoding/json"
	"io"
	"mime/quotedprintable"
	"net"
	"net/http"
	"net/http/httptest"
	"net/mail"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"

	gosmtp "github.com/emersion/go-smtp"
	"golang.org/x/oauth2"

	"github.com/ponte-id/ponte/adapters/pin/delivery"
	"github.com/ponte-id/ponte/idp"
	"github.com/ponte-id/ponte/idp/clients"
	"github.com/ponte-id/ponte/internal/oidctest"
	"github.com/ponte-id/ponte/storage/storagetest"
)

// mailbox is a real SMTP server on loopback that keeps the decoded bodies it receives.
type mailbox struct {
	mu     sync.Mutex
	bodies []string
	addr   string
}

func startMailbox(t *testing.T) *mailbox {
	mb := &mailbox{}
	srv := gosmtp.NewServer(gosmtp.BackendFunc(func(*gosmtp.Conn) (gosmtp.Session, error) { return &mailSession{mb: mb}, nil }))
	srv.Domain, srv.AllowInsecureAuth = "localhost", true
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	mb.addr = ln.Addr().String()
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return mb
}

type mailSession struct{ mb *mailbox }

func (s *mailSession) Mail(string, *gosmtp.MailOptions) error { return nil }
func (s *mailSession) Rcpt(string, *gosmtp.RcptOptions) error { return nil }
func (s *mailSession) Reset()                                 {}
func (s *mailSession) Logout() error                          { return nil }
func (s *mailSession) Data(r io.Reader) error {
	msg, err := mail.ReadMessage(r)
	if err != nil {
		return err
	}
	body := io.Reader(msg.Body)
	if strings.EqualFold(msg.Header.Get("Content-Transfer-Encoding"), "quoted-printable") {
		body = quotedprintable.NewReader(body)
	}
	b, err := io.ReadAll(body)
	if err != nil {
		return err
	}
	s.mb.mu.Lock()
	s.mb.bodies = append(s.mb.bodies, string(b))
	s.mb.mu.Unlock()
	return nil
}

func (mb *mailbox) reset() {
	mb.mu.Lock()
	mb.bodies = nil
	mb.mu.Unlock()
}

func (mb *mailbox) all() string {
	mb.mu.Lock()
	defer mb.mu.Unlock()
	return strings.Join(mb.bodies, "\n")
}

// gateway is the SMS gateway stub: it records the texts it is asked to send.
type gateway struct {
	mu    sync.Mutex
	texts []string
}

func (g *gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var p struct {
		To   string `json:"to"`
		Text string `json:"text"`
	}
	if r.Header.Get("Authorization") != "Bearer sms-token" || json.NewDecoder(r.Body).Decode(&p) != nil {
		http.Error(w, "bad request", http.StatusBadRequest)
		return
	}
	g.mu.Lock()
	g.texts = append(g.texts, p.To+": "+p.Text)
	g.mu.Unlock()
}

func (g *gateway) all() string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return strings.Join(g.texts, "\n")
}

var half = regexp.MustCompile(`: ([A-Z2-9]{8})\b`)

// only returns the one 8-character PIN half in text.
func only(t *testing.T, what, text string) string {
	t.Helper()
	m := half.FindAllStringSubmatch(text, -1)
	if len(m) != 1 {
		t.Fatalf("%s: want one PIN half in %q", what, text)
	}
	return m[0][1]
}

// TestDeliveredPath: the online request's halves travel through the real
// channels — email over SMTP to a server on loopback, the second half into the
// print batch — and open the first access and then OIDC tokens at the
// consultazione level; recovery sends its link by email and the provisional
// PIN by the SMS gateway and email.
func TestDeliveredPath(t *testing.T) {
	for _, be := range storagetest.Backends() {
		t.Run(be.Name, func(t *testing.T) {
			store := be.Open(t)
			s := newSite(t, store)
			ctx := context.Background()
			mb := startMailbox(t)
			gw := &gateway{}
			sms := httptest.NewServer(gw)
			t.Cleanup(sms.Close)
			postDir := t.TempDir()
			email, err := delivery.NewSMTP(delivery.SMTPConfig{Addr: mb.addr, From: "pin@inps.example.it", TLS: delivery.TLSNone})
			if err != nil {
				t.Fatal(err)
			}
			smsSender, err := delivery.NewSMS(delivery.SMSConfig{URL: sms.URL, Token: "sms-token"})
			if err != nil {
				t.Fatal(err)
			}
			post, err := delivery.NewPost(delivery.PostConfig{Dir: postDir, Now: s.clock.Now})
			if err != nil {
				t.Fatal(err)
			}
			d, err := delivery.New(delivery.Config{Outbox: store, Box: s.box, Now: s.clock.Now,
				Senders: map[string]delivery.Sender{"email": email, "sms": smsSender, "post": post}})
			if err != nil {
				t.Fatal(err)
			}
			deliver := func() {
				if _, failed, err := d.RunOnce(ctx); err != nil || failed != 0 {
					t.Fatalf("delivery: %d failed, %v", failed, err)
				}
			}

			b := oidctest.NewBrowser(t)
			resp, _ := b.Post(s.env.Issuer+"/login/pin/request", url.Values{
				"fiscal_number": {cf}, "given_name": {"Mario"}, "family_name": {"Rossi"}, "gender": {"M"},
				"birthdate": {"1980-01-01"}, "birth_place": {"Roma"}, "street": {"Via Roma"}, "number": {"1"},
				"postal_code": {"00100"}, "city": {"Roma"}, "province": {"RM"}, "mobile": {"+393331234567"},
				"email": {"mario@example.it"}, "preferred_phone": {"+393331234567"}, "callback_slot": {"09-13"},
				"first_half_via": {"email"},
			})
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("request: %d", resp.StatusCode)
			}
			deliver()
			first := only(t, "email", mb.all())
			batch, err := os.ReadFile(filepath.Join(postDir, "post-"+s.clock.Now().Local().Format("2006-01-02")+".jsonl"))
			if err != nil {
				files, _ := os.ReadDir(postDir)
				t.Fatalf("print batch: %v (%v)", err, files)
			}
			second := only(t, "print batch", string(batch))
			if msgs, _ := store.ListMessages(ctx, 10); len(msgs) != 2 || msgs[0].Secret != nil || msgs[1].Secret != nil {
				t.Fatal("delivered halves must be erased from the outbox")
			}

			r := s.env.NewRP(clients.Spec{})
			verifier := oauth2.GenerateVerifier()
			_, body := s.pinLogin(b, r.Conf.AuthCodeURL(oidctest.RandomString(), oauth2.S256ChallengeOption(verifier)), cf, first+second)
			resp, _ = b.Post(s.env.Issuer+"/login/pin/change", url.Values{"ticket": {field(t, ticketField, body)},
				"challenge": {field(t, challengeField, body)}, "new_pin": {"Nuovo123"}, "confirm_pin": {"Nuovo123"}})
			if _, claims := s.exchange(r, oidctest.RPRedirect(resp), verifier); claims["acr"] != idp.ACRConsultazione {
				t.Fatalf("acr %v", claims["acr"])
			}

			// Recovery: link by email, provisional PIN by SMS and email.
			mb.reset()
			b.Post(s.env.Issuer+"/login/pin/recover", url.Values{"fiscal_number": {cf}, "email": {"mario@example.it"}, "mobile": {"+39 333 1234567"}})
			deliver()
			link := regexp.MustCompile(`https?://\S+code=\S+`).FindString(mb.all())
			u, err := url.Parse(link)
			if err != nil || link == "" {
				t.Fatalf("no recovery link in %q", mb.all())
			}
			if resp, _ := b.Post(s.env.Issuer+u.Path, url.Values{"code": {u.Query().Get("code")}}); resp.StatusCode != http.StatusOK {
				t.Fatalf("recovery confirm: %d", resp.StatusCode)
			}
			mb.reset()
			deliver()
			provisional := only(t, "sms", gw.all()) + only(t, "email", mb.all())
			if !strings.HasPrefix(gw.all(), "+393331234567: ") {
				t.Fatalf("SMS to the mobile on record: %q", gw.all())
			}
			_, body = s.pinLogin(b, r.Conf.AuthCodeURL(oidctest.RandomString(), oauth2.S256ChallengeOption(oauth2.GenerateVerifier()), oauth2.SetAuthURLParam("prompt", "login")), cf, provisional)
			if !strings.Contains(body, `name="ticket"`) {
				t.Fatalf("a provisional PIN must lead to the change form: %.300s", body)
			}
		})
	}
}
