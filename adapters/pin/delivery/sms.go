package delivery

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"
)

// SMSConfig configures an SMSSender.
type SMSConfig struct {
	// URL is the gateway's endpoint; https, or http to a loopback host only.
	URL string
	// Token is sent as "Authorization: Bearer <Token>".
	Token string
	// Timeout bounds one request (default 15s).
	Timeout time.Duration
	// HTTPClient sends the requests; nil means a client that follows no redirects.
	HTTPClient *http.Client
}

// SMSSender sends text messages through an HTTP gateway: it POSTs
// {"to": ..., "text": ..., "id": ...} as JSON. A 2xx answer means sent; a 4xx
// one a permanent failure (except 408 and 429, which are retried); a 5xx
// answer or a network error is retried.
type SMSSender struct {
	cfg    SMSConfig
	client *http.Client
}

// smsPayload is the JSON body posted to the gateway.
type smsPayload struct {
	To   string `json:"to"`
	Text string `json:"text"`
	ID   string `json:"id"`
}

// phoneShape is an E.164-like number: an optional +, then 8 to 15 digits.
var phoneShape = regexp.MustCompile(`^\+?[0-9]{8,15}$`)

// NewSMS validates cfg and returns a sender. Errors name the offending field.
func NewSMS(cfg SMSConfig) (*SMSSender, error) {
	bad := func(field, format string, args ...any) error {
		return fmt.Errorf("delivery: sms: %s: %s", field, fmt.Sprintf(format, args...))
	}
	u, err := url.Parse(cfg.URL)
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return nil, bad("URL", "want an absolute https URL, got %q", cfg.URL)
	}
	if u.User != nil {
		return nil, bad("URL", "must not hold credentials (use Token)")
	}
	if u.Scheme == "http" && !isLoopbackHost(u.Hostname()) {
		return nil, bad("URL", "http is allowed only for a loopback host; use https")
	}
	if cfg.Token == "" {
		return nil, bad("Token", "required")
	}
	if strings.ContainsAny(cfg.Token, "\r\n\t ") {
		return nil, bad("Token", "must not contain white space")
	}
	if cfg.Timeout < 0 {
		return nil, bad("Timeout", "must not be negative")
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 15 * time.Second
	}
	client := cfg.HTTPClient
	if client == nil {
		client = &http.Client{
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	}
	return &SMSSender{cfg: cfg, client: client}, nil
}

// Send posts m to the gateway. A To that is not a phone number is a permanent
// failure. Errors never quote the gateway's answer, which might echo the text.
func (s *SMSSender) Send(ctx context.Context, m Outgoing) error {
	to := compactPhone(m.To)
	if !phoneShape.MatchString(to) {
		return permanent(errors.New("sms: recipient is not a phone number (want +, then 8 to 15 digits)"))
	}
	body, err := json.Marshal(smsPayload{To: to, Text: m.Body, ID: m.ID})
	if err != nil {
		return permanent(err)
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.cfg.URL, bytes.NewReader(body))
	if err != nil {
		return permanent(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("Authorization", "Bearer "+s.cfg.Token)
	resp, err := s.client.Do(req)
	if err != nil {
		// The error holds the URL, never the body.
		return fmt.Errorf("sms: gateway: %w", err)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	_ = resp.Body.Close()
	switch code := resp.StatusCode; {
	case code >= 200 && code < 300:
		return nil
	case code == http.StatusRequestTimeout || code == http.StatusTooManyRequests:
		return fmt.Errorf("sms: gateway answered %s", resp.Status)
	case code >= 400 && code < 500:
		return permanent(fmt.Errorf("sms: gateway answered %s", resp.Status))
	default:
		return fmt.Errorf("sms: gateway answered %s", resp.Status)
	}
}

// compactPhone drops the separators people type in phone numbers.
func compactPhone(s string) string {
	return strings.Map(func(r rune) rune {
		switch r {
		case ' ', '-', '.', '/', '(', ')':
			return -1
		}
		return r
	}, strings.TrimSpace(s))
}
