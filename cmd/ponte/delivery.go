package main

import (
	"github.com/ponte-id/ponte/adapters/pin/delivery"
	"github.com/ponte-id/ponte/internal/config"
)

// dispatcher builds the outbox's senders from the configuration. In dev mode
// every channel without a real sender goes to dev, the development mailbox.
func (a *app) dispatcher(dev *delivery.DevSender) (*delivery.Dispatcher, error) {
	d := a.cfg.Delivery
	senders := map[string]delivery.Sender{}
	for channel, m := range map[string]config.SMTP{delivery.ChannelEmail: d.Email, delivery.ChannelPEC: d.PEC} {
		if m.Addr == "" {
			continue
		}
		s, err := delivery.NewSMTP(delivery.SMTPConfig{Addr: m.Addr, From: m.From, Username: m.Username, Password: m.Password, TLS: m.TLS})
		if err != nil {
			return nil, err
		}
		senders[channel] = s
	}
	if d.SMSURL != "" {
		s, err := delivery.NewSMS(delivery.SMSConfig{URL: d.SMSURL, Token: d.SMSToken})
		if err != nil {
			return nil, err
		}
		senders[delivery.ChannelSMS] = s
	}
	if d.PostDir != "" {
		s, err := delivery.NewPost(delivery.PostConfig{Dir: d.PostDir})
		if err != nil {
			return nil, err
		}
		senders[delivery.ChannelPost] = s
	}
	for _, channel := range []string{delivery.ChannelEmail, delivery.ChannelPEC, delivery.ChannelSMS, delivery.ChannelPost} {
		if _, ok := senders[channel]; ok {
			continue
		}
		if a.cfg.Dev && dev != nil {
			senders[channel] = dev
			continue
		}
		a.log.Warn("no sender configured: messages of this channel stay queued", "channel", channel)
	}
	return delivery.New(delivery.Config{Outbox: a.store, Box: a.box, Senders: senders, Logger: a.log})
}
