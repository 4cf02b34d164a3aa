// Package backchannel delivers the logout tokens of OpenID Connect
// Back-Channel Logout 1.0 from the durable outbox that idp/provider fills
// when a session ends. A Sender claims due messages under a lease (so that
// several nodes never post one twice at once), signs each logout token at
// delivery (typ logout+jwt; iss, aud, iat, exp, jti, events, sub, sid; never
// a nonce) with the provider's current key of the client's algorithm, and
// posts it to the client's registered URI only: no redirect followed, short
// timeouts, a bounded response read. Failures are retried with exponential
// backoff; after MaxAttempts, or at once on an answer that retrying cannot
// fix (a redirect, 4xx but 408 and 429), the message is parked for an operator
// (Parked, Requeue).
package backchannel

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/ponte-id/ponte/idp/keys"
	"github.com/ponte-id/ponte/storage"
)

// EventLogout is the event of a logout token (Back-Channel Logout 1.0 §2.4).
const EventLogout = "http://schemas.openid.net/event/backchannel-logout"

// TokenType is the JOSE typ of a logout token (§2.4, RFC 8725 §3.11).
const TokenType = "logout+jwt"

// Store is what the sender needs of storage.
type Store interface {
	storage.Logouts
	GetClient(ctx context.Context, id string) (storage.Client, error)
}

// Options shape a Sender. Zero values take the defaults given.
type Options struct {
	Issuer string
	Store  Store
	Keys   *keys.Manager
	// HTTPClient posts the tokens; the default has Timeout (no redirects,
	// no proxy from the environment).
	HTTPClient *http.Client
	// Timeout bounds one delivery (default 5 s).
	Timeout time.Duration
	// TokenTTL is a logout token's lifetime from its signing (default 2 minutes).
	TokenTTL time.Duration
	// MaxAttempts failed deliveries park a message (default 10).
	MaxAttempts int
	// Backoff is the wait after the first failure, doubled after each
	// (default 30 s), up to MaxBackoff (default 1 hour).
	Backoff, MaxBackoff time.Duration
	// Poll is how often the outbox is read when nothing wakes the sender (default 5 s).
	Poll time.Duration
	// Batch is how many messages one pass claims (default 50), Parallel how
	// many it posts at once (default 8).
	Batch, Parallel int
	Logger          *slog.Logger
	Now             func() time.Time
}

// Sender delivers queued logout tokens.
type Sender struct {
	o    Options
	wake chan struct{}
}

// maxResponse is how much of a relying party's answer is read (for the log).
const maxResponse = 4 << 10

// New checks opts and returns a Sender.
func New(o Options) (*Sender, error) {
	if o.Issuer == "" || o.Store == nil || o.Keys == nil {
		return nil, errors.New("backchannel: issuer, store and keys are required")
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&o.Timeout, 5*time.Second)
	def(&o.TokenTTL, 2*time.Minute)
	def(&o.Backoff, 30*time.Second)
	def(&o.MaxBackoff, time.Hour)
	def(&o.Poll, 5*time.Second)
	if o.MaxAttempts <= 0 {
		o.MaxAttempts = 10
	}
	if o.Batch <= 0 {
		o.Batch = 50
	}
	if o.Parallel <= 0 {
		o.Parallel = 8
	}
	if o.HTTPClient == nil {
		o.HTTPClient = NewHTTPClient(o.Timeout)
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Sender{o: o, wake: make(chan struct{}, 1)}, nil
}

// NewHTTPClient is the client a Sender posts with: it follows no redirect
// (a 3xx is a failure: only the registered URI is called), takes no proxy
// from the environment, and gives up after timeout.
func NewHTTPClient(timeout time.Duration) *http.Client {
	t := &http.Transport{
		DialContext:            (&net.Dialer{Timeout: timeout}).DialContext,
		TLSHandshakeTimeout:    timeout,
		ResponseHeaderTimeout:  timeout,
		MaxResponseHeaderBytes: 16 << 10,
		MaxIdleConnsPerHost:    2,
		IdleConnTimeout:        30 * time.Second,
		ForceAttemptHTTP2:      true,
	}
	return &http.Client{Transport: t, Timeout: timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// Wake makes a running sender read the outbox now.
func (s *Sender) Wake() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// Run delivers until ctx ends: a pass at once, then one whenever woken and at
// least every Poll.
func (s *Sender) Run(ctx context.Context) error {
	t := time.NewTicker(s.o.Poll)
	defer t.Stop()
	for {
		for {
			n, err := s.DeliverDue(ctx)
			if err != nil && ctx.Err() == nil {
				s.o.Logger.Log(ctx, storage.Severity(err), "back-channel logout: reading the outbox failed", "err", err)
			}
			if n < s.o.Batch || err != nil {
				break
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		case <-s.wake:
		}
	}
}

// DeliverDue claims one batch of due messages, delivers them, and returns how many it claimed.
func (s *Sender) DeliverDue(ctx context.Context) (int, error) {
	now := s.o.Now()
	// The lease outlasts every delivery of the batch.
	lease := s.o.Timeout*time.Duration(1+s.o.Batch/s.o.Parallel) + time.Minute
	msgs, err := s.o.Store.ClaimLogouts(ctx, now, s.o.Batch, lease)
	if err != nil {
		return 0, err
	}
	var wg sync.WaitGroup
	sem := make(chan struct{}, s.o.Parallel)
	for _, m := range msgs {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			s.deliver(ctx, m)
		})
	}
	wg.Wait()
	return len(msgs), nil
}

// permanent marks a failure that retrying cannot fix.
type permanent struct{ error }

// deliver posts one message and records the outcome.
func (s *Sender) deliver(ctx context.Context, m storage.LogoutMessage) {
	log := s.o.Logger.With("client", m.ClientID, "jti", m.ID, "attempt", m.Attempts+1)
	c, err := s.o.Store.GetClient(ctx, m.ClientID)
	if errors.Is(err, storage.ErrNotFound) || err == nil && c.BackchannelLogoutURI == "" {
		// The client is gone or takes no logouts any more: nothing to deliver.
		log.InfoContext(ctx, "back-channel logout dropped: the client no longer takes them")
		if err := s.o.Store.DeleteLogout(ctx, m.ID); err != nil && !errors.Is(err, storage.ErrNotFound) {
			log.ErrorContext(ctx, "back-channel logout: dropping failed", "err", err)
		}
		return
	}
	if err == nil {
		err = s.post(ctx, c, m)
	}
	if err == nil {
		if err := s.o.Store.DeleteLogout(ctx, m.ID); err != nil && !errors.Is(err, storage.ErrNotFound) {
			log.Log(ctx, storage.Severity(err), "back-channel logout: recording delivery failed", "err", err)
			return
		}
		log.InfoContext(ctx, "back-channel logout delivered")
		return
	}
	if ctx.Err() != nil {
		return // shutting down: the lease ends and another pass retries
	}
	var perm permanent
	park := errors.As(err, &perm) || m.Attempts+1 >= s.o.MaxAttempts
	next := s.o.Now().Add(s.backoff(m.Attempts))
	if park {
		next = s.o.Now()
		log.WarnContext(ctx, "back-channel logout parked", "err", err)
	} else {
		log.InfoContext(ctx, "back-channel logout failed; will retry", "err", err, "next", next)
	}
	if err := s.o.Store.FailLogout(ctx, m.ID, next, err.Error(), park); err != nil {
		log.ErrorContext(ctx, "back-channel logout: recording the failure failed", "err", err)
	}
}

// backoff is the wait after the (attempts+1)th failure.
func (s *Sender) backoff(attempts int) time.Duration {
	d := s.o.Backoff
	for range attempts {
		d *= 2
		if d >= s.o.MaxBackoff {
			return s.o.MaxBackoff
		}
	}
	return d
}

// Token signs m's logout token for client c (Back-Channel Logout 1.0 §2.4).
func (s *Sender) Token(c storage.Client, m storage.LogoutMessage) (string, error) {
	now := s.o.Now()
	claims := map[string]any{
		"iss":    s.o.Issuer,
		"aud":    c.ID,
		"iat":    now.Unix(),
		"exp":    now.Add(s.o.TokenTTL).Unix(),
		"jti":    m.ID,
		"events": map[string]any{EventLogout: map[string]any{}},
	}
	if m.Subject != "" {
		claims["sub"] = m.Subject
	}
	if m.SID != "" {
		claims["sid"] = m.SID
	}
	return s.o.Keys.SignJWT(c.IDTokenSigningAlg, TokenType, claims)
}

// post sends the logout token to the client's registered URI (§2.5).
func (s *Sender) post(ctx context.Context, c storage.Client, m storage.LogoutMessage) error {
	tok, err := s.Token(c, m)
	if err != nil {
		return fmt.Errorf("signing: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, s.o.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.BackchannelLogoutURI,
		strings.NewReader(url.Values{"logout_token": {tok}}.Encode()))
	if err != nil {
		return permanent{fmt.Errorf("request: %w", err)}
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := s.o.HTTPClient.Do(req)
	if err != nil {
		return errors.New(scrub(err))
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, maxResponse))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxResponse)) // let the connection be reused when cheap
	switch code := resp.StatusCode; {
	case code >= 200 && code < 300: // §2.8: 200 (some frameworks answer 204)
		return nil
	case code >= 300 && code < 400:
		// Only the registered URI is called: a redirect means it is wrong.
		return permanent{fmt.Errorf("HTTP %d: redirect to %q not followed", code, resp.Header.Get("Location"))}
	case code >= 400 && code < 500 && code != http.StatusRequestTimeout && code != http.StatusTooManyRequests:
		return permanent{fmt.Errorf("HTTP %d: %s", code, summary(body))}
	default:
		return fmt.Errorf("HTTP %d: %s", code, summary(body))
	}
}

// scrub states a transport error without the token (url.Error quotes only
// the URL, which holds no secret; the body is never quoted).
func scrub(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Op + " " + ue.URL + ": " + ue.Err.Error()
	}
	return err.Error()
}

// summary is the start of a response body, one line, for the operators.
func summary(b []byte) string {
	s := strings.Join(strings.Fields(string(b)), " ")
	if len(s) > 200 {
		s = s[:200]
	}
	return strings.ToValidUTF8(s, "\uFFFD")
}

// Parked returns up to limit messages the sender gave up on, oldest first,
// with their last error: for operators (the staff's admin API, `ponte logouts`).
func Parked(ctx context.Context, st storage.Logouts, limit int) ([]storage.LogoutMessage, error) {
	return st.ListLogouts(ctx, true, limit)
}

// Requeue makes a parked message due now, its attempts counted afresh (after
// the relying party's endpoint has been fixed).
func Requeue(ctx context.Context, st storage.Logouts, id string, now time.Time) (storage.LogoutMessage, error) {
	return st.RequeueLogout(ctx, id, now)
}
