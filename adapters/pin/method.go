package pin

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/ponte-id/ponte/adapters/pin/delivery"
	"github.com/ponte-id/ponte/idp"
	"github.com/ponte-id/ponte/internal/config"
	"github.com/ponte-id/ponte/internal/method"
	"github.com/ponte-id/ponte/storage"
)

// Plug is the PIN as cmd/ponte lists it: its configuration section and Open.
var Plug = method.Plug{Section: section, Open: Open}

// Open decodes the "pin" section (defaults, YAML, PONTE_* variables),
// validates it, and returns the PIN login method with its outbox dispatcher.
// In dev mode, channels without a sender go to the development mailbox.
func Open(sec config.Section, d method.Deps) (idp.Authenticator, error) {
	cfg := DefaultConfig()
	if err := config.Decode(sec, &cfg, settings); err != nil {
		return nil, err
	}
	cfg.BaseURL = d.Issuer
	s, err := NewService(cfg, Deps{Store: d.Store, Box: d.Box, Revoker: d.Revoker, Citizens: d.Citizens, Limiter: d.Limiter, Now: d.Now, Logger: d.Logger})
	if err != nil {
		return nil, err
	}
	a := &authenticator{s: s}
	if d.Dev {
		a.mailbox = delivery.NewDev(delivery.DefaultDevMessages)
	}
	if a.outbox, err = s.dispatcher(cfg.Delivery, a.mailbox); err != nil {
		return nil, err
	}
	return a, nil
}

// authenticator is the PIN as a login method: its pages are the citizen's
// whole PIN lifecycle; it delivers the outbox in the background, offers the
// operators' API, sweeps its expired records and explains the step up.
type authenticator struct {
	s *Service
	// outbox delivers queued messages (nil: this node does not).
	outbox *delivery.Dispatcher
	// mailbox is the development mailbox, in dev mode.
	mailbox *delivery.DevSender
}

var (
	_ idp.Authenticator = (*authenticator)(nil)
	_ idp.BodyLimit     = (*authenticator)(nil)
	_ idp.Runner        = (*authenticator)(nil)
	_ idp.OperatorAPI   = (*authenticator)(nil)
	_ idp.Sweeper       = (*authenticator)(nil)
	_ idp.StepUpHinter  = (*authenticator)(nil)
	_ idp.ConsolePages  = (*authenticator)(nil)
)

// Authenticator returns the PIN login method without an outbox dispatcher
// (tests, and nodes that leave delivery to others).
func (s *Service) Authenticator() idp.Authenticator { return &authenticator{s: s} }

// ServiceOf returns the PIN service behind a method opened by Open (for
// `ponte demo`, which seeds citizens).
func ServiceOf(a idp.Authenticator) (*Service, bool) {
	pa, ok := a.(*authenticator)
	if !ok {
		return nil, false
	}
	return pa.s, true
}

// DevMailbox is the development mailbox's page, in dev mode; nil otherwise.
func DevMailbox(a idp.Authenticator) http.Handler {
	if pa, ok := a.(*authenticator); ok && pa.mailbox != nil {
		return pa.mailbox.Handler()
	}
	return nil
}

func (*authenticator) Method() idp.Method { return idp.MethodPIN }

func (*authenticator) Label(locale string) string {
	if locale == "en" {
		return "INPS PIN"
	}
	return "PIN INPS"
}

// MaxLevel is dispositivo: a dispositivo PIN reaches it.
func (*authenticator) MaxLevel() idp.Level { return idp.LevelDispositivo }

// Handler serves the PIN pages below the path the core mounts them on.
func (a *authenticator) Handler(host idp.Host) http.Handler {
	a.s.mount.Store(new(host.MethodURL("")))
	return a.s.handler(host)
}

// MaxBodyBytes lets the conversion upload through the edge: two documents of
// up to MaxUpload each, and a MiB for the form's other fields and the
// multipart framing. The pages cap their bodies at the same size.
func (a *authenticator) MaxBodyBytes() int64 { return a.s.maxBody() }

func (s *Service) maxBody() int64 { return 2*s.cfg.MaxUpload + (1 << 20) }

// Run delivers the outbox until ctx ends, with the garbage collector tuned
// for argon2id (TuneGC) meanwhile.
func (a *authenticator) Run(ctx context.Context) error {
	defer TuneGC()()
	if a.outbox == nil {
		<-ctx.Done()
		return nil
	}
	a.outbox.Run(ctx, a.s.cfg.Delivery.Interval)
	return nil
}

// OperatorHandler is the operators' API (see Service.OperatorHandler).
func (a *authenticator) OperatorHandler() http.Handler { return a.s.OperatorHandler() }

// attemptsKept is how long a counter of attempts outlives its last attempt:
// longer than every delay, lockout and window, so a sweep forgets only
// counters that no longer throttle anything.
const attemptsKept = 30 * 24 * time.Hour

// Sweep deletes the single-use codes that expired and the counters of attempts
// quiet for a month.
func (a *authenticator) Sweep(ctx context.Context, now time.Time) error {
	_, err1 := a.s.store.DeleteExpiredCodes(ctx, now)
	_, err2 := a.s.store.DeleteQuietAttempts(ctx, now.Add(-attemptsKept))
	if err := errors.Join(err1, err2); err != nil {
		return fmt.Errorf("pin: sweep: %w", err)
	}
	return nil
}

// StepUpHint tells a citizen logged in with an ordinary PIN how it becomes
// dispositivo, with a link to the conversion page (the chooser adds the
// pending login's challenge to it, so the citizen can come back).
func (a *authenticator) StepUpHint(locale string) (idp.Hint, bool) {
	t := text[locale]
	if t == nil {
		t = text["it"]
	}
	return idp.Hint{Text: t["stepup_convert"], LinkURL: a.s.pages() + "/convert", LinkText: t["stepup_convert_now"]}, true
}

// Settings are the variables of the "pin" section, for documentation and tests.
func Settings() []config.Setting[Config] { return settings }

// Config returns the service's policy.
func (s *Service) Config() Config { return s.cfg }

// Store returns the service's storage.
func (s *Service) Store() storage.PINStore { return s.store }

// defaultMount is where the core mounts the PIN's pages, until Handler is
// given the Host that says so (the service alone, in tests, builds its links
// with it).
const defaultMount = "/login/" + string(idp.MethodPIN)

// pages is the path the PIN's pages are mounted on.
func (s *Service) pages() string {
	if p := s.mount.Load(); p != nil {
		return *p
	}
	return defaultMount
}

// dispatcher builds the outbox's senders from the configuration; in dev mode
// (dev not nil) every channel without a real sender goes to the development
// mailbox, and otherwise its messages stay queued.
func (s *Service) dispatcher(d Delivery, dev *delivery.DevSender) (*delivery.Dispatcher, error) {
	senders := map[string]delivery.Sender{}
	for channel, m := range map[string]SMTP{delivery.ChannelEmail: d.Email, delivery.ChannelPEC: d.PEC} {
		if m.Addr == "" {
			continue
		}
		sender, err := delivery.NewSMTP(delivery.SMTPConfig{Addr: m.Addr, From: m.From, Username: m.Username, Password: m.Password, TLS: m.TLS})
		if err != nil {
			return nil, err
		}
		senders[channel] = sender
	}
	if d.SMSURL != "" {
		sender, err := delivery.NewSMS(delivery.SMSConfig{URL: d.SMSURL, Token: d.SMSToken})
		if err != nil {
			return nil, err
		}
		senders[delivery.ChannelSMS] = sender
	}
	if d.PostDir != "" {
		sender, err := delivery.NewPost(delivery.PostConfig{Dir: d.PostDir})
		if err != nil {
			return nil, err
		}
		senders[delivery.ChannelPost] = sender
	}
	for _, channel := range []string{delivery.ChannelEmail, delivery.ChannelPEC, delivery.ChannelSMS, delivery.ChannelPost} {
		if _, ok := senders[channel]; ok {
			continue
		}
		if dev != nil {
			senders[channel] = dev
			continue
		}
		s.log.Warn("no sender configured: messages of this channel stay queued", "channel", channel)
	}
	return delivery.New(delivery.Config{Outbox: s.store, Box: s.box, Senders: senders, Now: s.now, Logger: s.log})
}
