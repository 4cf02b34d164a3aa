// Package delivery delivers the PIN adapter's outbox over its channels.
//
// The PIN adapter enqueues every notification (a PIN half, a recovery link, a
// warning) in storage.Outbox inside the transaction of the event it reports,
// with the secret part sealed. This package owns what happens next: a
// Dispatcher claims the due messages of each channel, opens the secret,
// renders the body and hands the result to that channel's Sender, then marks
// the message sent (which erases the secret) or failed (with a retry time).
//
// The senders are SMTPSender (email, and PEC, which is certified email over
// SMTP: two instances with their own server and From), SMSSender (an HTTP SMS
// gateway), PostSender (the daily print batch for the postal letters) and
// DevSender (an in-memory mailbox shown on a local page, for development and
// the demo only).
//
// Delivery is at least once: a message whose Send succeeded but whose MarkSent
// failed (or whose lease ran out mid-send) is sent again later.
package delivery

import (
	"context"
	"errors"
	"fmt"
	"strings"
)

// The channels of storage.Message.Channel that a Dispatcher knows.
const (
	ChannelEmail = "email"
	ChannelPEC   = "pec"
	ChannelSMS   = "sms"
	ChannelPost  = "post"
)

// channels lists the known channels in the order a Dispatcher serves them.
var channels = []string{ChannelEmail, ChannelPEC, ChannelSMS, ChannelPost}

// placeholder is the mark in a message body that the opened secret replaces.
const placeholder = "{{secret}}"

// ErrPermanent marks a failure that retrying cannot fix (a recipient the
// provider rejects, a malformed address). Senders wrap it; the Dispatcher then
// parks the message for an operator instead of retrying. Test with errors.Is.
var ErrPermanent = errors.New("permanent delivery failure")

// permanent wraps err as a permanent failure.
func permanent(err error) error {
	if err == nil || errors.Is(err, ErrPermanent) {
		return err
	}
	return fmt.Errorf("%w: %w", ErrPermanent, err)
}

// Outgoing is a rendered message, ready for a Sender: the secret is filled in.
type Outgoing struct {
	// ID is the outbox message's ID.
	ID string
	// Channel is email, pec, sms or post.
	Channel string
	// To is an email address, a phone number or a postal address, by channel.
	To      string
	Subject string
	// Body is the text with the secret in place of {{secret}}.
	Body string
}

// Sender delivers messages over one channel. Implementations are safe for
// concurrent use. An error wrapping ErrPermanent means retrying is pointless;
// any other error is retried later.
type Sender interface {
	Send(ctx context.Context, m Outgoing) error
}

// maskRecipient hides most of a recipient for logs: the last 3 characters of a
// phone number or of an email's local part ("***789", "***ssi@example.it"),
// nothing at all of short values.
func maskRecipient(to string) string {
	local, domain, isEmail := strings.Cut(to, "@")
	if !isEmail {
		local, domain = to, ""
	} else {
		domain = "@" + domain
	}
	r := []rune(local)
	if len(r) < 6 {
		return "***" + domain
	}
	return "***" + string(r[len(r)-3:]) + domain
}

// hasCRLF reports whether s holds a line break (a header injection attempt).
func hasCRLF(s string) bool { return strings.ContainsAny(s, "\r\n") }
