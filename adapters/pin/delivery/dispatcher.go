package delivery

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/ponte-id/ponte/internal/seal"
	"github.com/ponte-id/ponte/storage"
)

// Defaults of Config.
const (
	DefaultBatch       = 20
	DefaultLease       = time.Minute
	DefaultMaxAttempts = 10
)

// maxReason caps, in bytes, the failure reason stored with a message (the
// store keeps no more).
const maxReason = 500

// Config configures a Dispatcher.
type Config struct {
	// Outbox is where the PIN adapter queues its messages.
	Outbox storage.Outbox
	// Box opens the sealed secrets (associated data "outbox:"+ID).
	Box *seal.Box
	// Senders maps a channel (email, pec, sms, post) to its sender. Messages
	// of a channel without a sender stay queued (with no senders at all, the
	// dispatcher does nothing).
	Senders map[string]Sender
	// Batch is how many messages of a channel one claim takes (default 20).
	Batch int
	// Lease is how long a claim keeps the messages from other dispatchers
	// (default 1m); a batch is abandoned, to be claimed again, when nine
	// tenths of it have passed. Keep it well above the senders' timeouts.
	Lease time.Duration
	// MaxAttempts is how many failed attempts park a message (default 10).
	MaxAttempts int
	// Backoff is the wait before the next attempt after attempt failures
	// (1 after the first); the default is 30s·2^(attempt-1), at most 1h,
	// less a random jitter of up to a quarter.
	Backoff func(attempt int) time.Duration
	// Now is the clock for the outbox's times (default time.Now).
	Now func() time.Time
	// Logger receives one line per failure (default slog.Default()). It never
	// sees a body, a secret or a whole recipient.
	Logger *slog.Logger
}

// Dispatcher moves due outbox messages to their channel's Sender. It is safe
// for concurrent use, and several dispatchers (in one process or many) may
// share an outbox: a claim leases each message to one of them.
type Dispatcher struct {
	cfg      Config
	channels []string
	log      *slog.Logger
}

// New validates cfg, fills in the defaults and returns a Dispatcher. Errors
// name the offending field.
func New(cfg Config) (*Dispatcher, error) {
	bad := func(field, format string, args ...any) error {
		return fmt.Errorf("delivery: %s: %s", field, fmt.Sprintf(format, args...))
	}
	if cfg.Outbox == nil {
		return nil, bad("Outbox", "required")
	}
	if cfg.Box == nil {
		return nil, bad("Box", "required")
	}
	var chans []string
	for _, ch := range channels {
		if _, ok := cfg.Senders[ch]; ok {
			chans = append(chans, ch)
		}
	}
	for ch, s := range cfg.Senders {
		if !slices.Contains(channels, ch) {
			return nil, bad("Senders", "unknown channel %q (want %s)", ch, strings.Join(channels, ", "))
		}
		if s == nil {
			return nil, bad("Senders", "the %s sender is nil", ch)
		}
	}
	if cfg.Batch < 0 || cfg.Lease < 0 || cfg.MaxAttempts < 0 {
		return nil, bad("Batch", "Batch, Lease and MaxAttempts must not be negative")
	}
	if cfg.Batch == 0 {
		cfg.Batch = DefaultBatch
	}
	if cfg.Lease == 0 {
		cfg.Lease = DefaultLease
	}
	if cfg.MaxAttempts == 0 {
		cfg.MaxAttempts = DefaultMaxAttempts
	}
	if cfg.Backoff == nil {
		cfg.Backoff = DefaultBackoff
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	return &Dispatcher{cfg: cfg, channels: chans, log: log.With("component", "pin-delivery")}, nil
}

// DefaultBackoff waits 30s·2^(attempt-1), at most an hour, less a random
// jitter of up to a quarter so that failed messages do not retry in lockstep.
func DefaultBackoff(attempt int) time.Duration {
	const base, ceiling = 30 * time.Second, time.Hour
	d := ceiling
	if attempt < 1 {
		attempt = 1
	}
	if attempt <= 8 { // 30s·2^7 = 64m: beyond that the ceiling applies
		d = min(base<<(attempt-1), ceiling)
	}
	return d - rand.N(d/4+1)
}

// RunOnce serves every channel that has a sender once: it claims up to Batch
// due messages, sends them and marks each sent or failed. sent and failed
// count this call's attempts; err joins the outbox's errors (a sender's
// failure is not an error of RunOnce, it is recorded on the message).
func (d *Dispatcher) RunOnce(ctx context.Context) (sent, failed int, err error) {
	sent, failed, _, err = d.runOnce(ctx)
	return sent, failed, err
}

// runOnce is RunOnce that also reports whether some channel had a full batch
// (so more messages may be due).
func (d *Dispatcher) runOnce(ctx context.Context) (sent, failed int, more bool, err error) {
	var errs []error
	for _, ch := range d.channels {
		if err := ctx.Err(); err != nil {
			errs = append(errs, err)
			break
		}
		s, f, full, err := d.runChannel(ctx, ch)
		sent, failed, more = sent+s, failed+f, more || full
		if err != nil {
			errs = append(errs, err)
		}
	}
	return sent, failed, more, errors.Join(errs...)
}

// runChannel claims and delivers one batch of a channel.
func (d *Dispatcher) runChannel(ctx context.Context, ch string) (sent, failed int, full bool, err error) {
	// Sending stops before the lease runs out, so that no other dispatcher
	// claims a message this one is still sending. The lease counts from the
	// claim, so the budget does too.
	budget, cancel := context.WithTimeout(ctx, d.cfg.Lease-d.cfg.Lease/10)
	defer cancel()
	msgs, err := d.cfg.Outbox.ClaimDue(ctx, ch, d.cfg.Now(), d.cfg.Batch, d.cfg.Lease)
	if err != nil {
		return 0, 0, false, fmt.Errorf("delivery: claim %s: %w", ch, err)
	}
	sender := d.cfg.Senders[ch]
	var errs []error
	for i, m := range msgs {
		if budget.Err() != nil {
			if ctx.Err() == nil {
				d.log.WarnContext(ctx, "lease nearly over; leaving the rest of the batch for the next claim",
					"channel", ch, "left", len(msgs)-i)
			}
			break
		}
		ok, err := d.deliver(ctx, budget, sender, m)
		switch {
		case ok:
			sent++
		case ctx.Err() == nil:
			failed++
		}
		if err != nil {
			errs = append(errs, err)
		}
	}
	return sent, failed, len(msgs) >= d.cfg.Batch, errors.Join(errs...)
}

// deliver sends one claimed message and records the outcome. ok reports that
// the sender accepted it; err is an outbox error.
func (d *Dispatcher) deliver(ctx, budget context.Context, sender Sender, m storage.Message) (ok bool, err error) {
	out := Outgoing{ID: m.ID, Channel: m.Channel, To: m.To, Subject: m.Subject, Body: m.Body}
	var secret []byte
	if len(m.Secret) > 0 {
		secret, err = d.cfg.Box.Open(m.Secret, []byte("outbox:"+m.ID))
		if err != nil {
			return false, d.fail(ctx, m, permanent(fmt.Errorf("open secret: %w", err)), "", nil)
		}
		defer clear(secret)
	}
	if strings.Contains(m.Body, placeholder) {
		if secret == nil {
			return false, d.fail(ctx, m, permanent(errors.New("the body needs a secret but the message has none")), "", nil)
		}
		out.Body = strings.ReplaceAll(m.Body, placeholder, string(secret))
	}

	sendErr := sender.Send(budget, out)
	// Record the outcome even if ctx ends now: an unrecorded success is sent twice.
	mctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if sendErr == nil {
		if err := d.cfg.Outbox.MarkSent(mctx, m.ID, d.cfg.Now()); err != nil {
			d.log.ErrorContext(ctx, "message sent but not marked sent; it will be sent again",
				"id", m.ID, "channel", m.Channel, "to", maskRecipient(m.To), "err", err)
			return true, fmt.Errorf("delivery: mark %s sent: %w", m.ID, err)
		}
		return true, nil
	}
	if ctx.Err() != nil {
		// Shutting down: the lease runs out and the message is claimed again,
		// without counting this interrupted attempt.
		return false, nil
	}
	return false, d.fail(mctx, m, sendErr, out.Body, secret)
}

// fail records a failed attempt: retried after Backoff, or parked when the
// failure is permanent or the attempts are used up.
func (d *Dispatcher) fail(ctx context.Context, m storage.Message, cause error, body string, secret []byte) error {
	attempt := m.Attempts + 1
	now := d.cfg.Now()
	reason := scrub(cause.Error(), m.To, body, secret)
	attrs := []any{"id", m.ID, "channel", m.Channel, "to", maskRecipient(m.To), "attempt", attempt, "err", reason}
	var next time.Time
	switch perm := errors.Is(cause, ErrPermanent); {
	case perm || attempt >= d.cfg.MaxAttempts:
		next = now.Add(storage.ParkFor)
		why := "permanent failure"
		if !perm {
			why = fmt.Sprintf("%d attempts failed", attempt)
		}
		d.log.ErrorContext(ctx, "message not delivered and parked for an operator: "+why, attrs...)
	default:
		next = now.Add(d.cfg.Backoff(attempt))
		d.log.WarnContext(ctx, "message not delivered; will retry", append(attrs, "next", next)...)
	}
	if err := d.cfg.Outbox.MarkFailed(ctx, m.ID, next, reason); err != nil {
		return fmt.Errorf("delivery: mark %s failed: %w", m.ID, err)
	}
	return nil
}

// scrub keeps the recipient, the body and the secret out of a failure reason
// (a server may quote them back) and caps its length.
func scrub(reason, to, body string, secret []byte) string {
	// Values too short to be told from ordinary words are left alone.
	if len(body) >= 12 {
		reason = strings.ReplaceAll(reason, body, "[body]")
	}
	if len(secret) >= 4 {
		reason = strings.ReplaceAll(reason, string(secret), "[secret]")
	}
	if len(to) >= 6 {
		masked := maskRecipient(to)
		reason = strings.ReplaceAll(reason, to, masked)
		if c := compactPhone(to); c != to && c != "" {
			reason = strings.ReplaceAll(reason, c, masked)
		}
	}
	if len(reason) > maxReason {
		cut := maxReason - len("…")
		for cut > 0 && !utf8.RuneStart(reason[cut]) {
			cut--
		}
		reason = reason[:cut] + "…"
	}
	return reason
}

// Run calls RunOnce every interval (default 10s), and again at once after a
// full batch, until ctx is done. Outbox errors are logged.
func (d *Dispatcher) Run(ctx context.Context, every time.Duration) {
	if every <= 0 {
		every = 10 * time.Second
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		_, _, more, err := d.runOnce(ctx)
		if err != nil && ctx.Err() == nil {
			d.log.Log(ctx, storage.Severity(err), "outbox error", "err", err)
		}
		if ctx.Err() != nil {
			return
		}
		if more && err == nil {
			continue
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
