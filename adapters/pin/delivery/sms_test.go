package delivery

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// gateway is an SMS gateway on loopback answering with status.
type gateway struct {
	*httptest.Server
	mu       sync.Mutex
	status   int
	requests []smsRequest
}

type smsRequest struct {
	auth, contentType string
	payload           map[string]string
}

func startGateway(t *testing.T, status int) *gateway {
	t.Helper()
	g := &gateway{status: status}
	g.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var p map[string]string
		if r.Method != http.MethodPost || json.Unmarshal(body, &p) != nil {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		g.mu.Lock()
		g.requests = append(g.requests, smsRequest{r.Header.Get("Authorization"), r.Header.Get("Content-Type"), p})
		status := g.status
		g.mu.Unlock()
		w.WriteHeader(status)
		// A chatty gateway echoes the text; errors must not.
		_, _ = w.Write(body)
	}))
	t.Cleanup(g.Close)
	return g
}

func (g *gateway) got() []smsRequest {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]smsRequest(nil), g.requests...)
}

func (g *gateway) setStatus(s int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.status = s
}

func newSMSSender(t *testing.T, url string) *SMSSender {
	t.Helper()
	s, err := NewSMS(SMSConfig{URL: url, Token: "tok-123", Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestSMSSend(t *testing.T) {
	tests := []struct {
		status    int
		ok        bool
		permanent bool
	}{
		{http.StatusOK, true, false},
		{http.StatusAccepted, true, false},
		{http.StatusBadRequest, false, true},
		{http.StatusUnauthorized, false, true},
		{http.StatusTooManyRequests, false, false},
		{http.StatusInternalServerError, false, false},
		{http.StatusServiceUnavailable, false, false},
		{http.StatusFound, false, false},
	}
	for _, tt := range tests {
		t.Run(http.StatusText(tt.status), func(t *testing.T) {
			g := startGateway(t, tt.status)
			err := newSMSSender(t, g.URL).Send(context.Background(), Outgoing{ID: "m1", Channel: "sms", To: "+39 333 123-4789", Body: "PIN: ABCD1234"})
			if (err == nil) != tt.ok || errors.Is(err, ErrPermanent) != tt.permanent {
				t.Fatalf("Send = %v; want ok %v, permanent %v", err, tt.ok, tt.permanent)
			}
			if err != nil && strings.Contains(err.Error(), "ABCD1234") {
				t.Errorf("error quotes the text: %v", err)
			}
			reqs := g.got()
			if len(reqs) != 1 {
				t.Fatalf("gateway got %d requests", len(reqs))
			}
			r := reqs[0]
			if r.auth != "Bearer tok-123" || r.contentType != "application/json" {
				t.Errorf("headers: Authorization %q, Content-Type %q", r.auth, r.contentType)
			}
			want := map[string]string{"to": "+393331234789", "text": "PIN: ABCD1234", "id": "m1"}
			if len(r.payload) != len(want) {
				t.Errorf("payload %v, want %v", r.payload, want)
			}
			for k, v := range want {
				if r.payload[k] != v {
					t.Errorf("payload %s = %q, want %q", k, r.payload[k], v)
				}
			}
		})
	}
}

func TestSMSRejectsBadNumbers(t *testing.T) {
	g := startGateway(t, http.StatusOK)
	s := newSMSSender(t, g.URL)
	for _, to := range []string{"", "1234567", "+1234567890123456", "++393331234789", "39333abc4789", "mario@example.it"} {
		err := s.Send(context.Background(), Outgoing{ID: "x", To: to, Body: "b"})
		if !errors.Is(err, ErrPermanent) {
			t.Errorf("Send to %q = %v, want a permanent failure", to, err)
		}
	}
	for _, to := range []string{"33312347", "+393331234789", "003933312347891"} {
		if err := s.Send(context.Background(), Outgoing{ID: "x", To: to, Body: "b"}); err != nil {
			t.Errorf("Send to %q = %v", to, err)
		}
	}
	if n := len(g.got()); n != 3 {
		t.Errorf("gateway got %d requests, want 3", n)
	}
}

func TestSMSNetworkErrorRetryable(t *testing.T) {
	g := startGateway(t, http.StatusOK)
	url := g.URL
	g.Close()
	err := newSMSSender(t, url).Send(context.Background(), Outgoing{ID: "x", To: "+393331234789", Body: "b"})
	if err == nil || errors.Is(err, ErrPermanent) {
		t.Fatalf("Send to a closed gateway = %v, want a retryable error", err)
	}
}

func TestNewSMSValidates(t *testing.T) {
	tests := []struct {
		name  string
		cfg   SMSConfig
		field string
	}{
		{"https", SMSConfig{URL: "https://sms.example.it/send", Token: "t"}, ""},
		{"http loopback", SMSConfig{URL: "http://127.0.0.1:8080/send", Token: "t"}, ""},
		{"http remote", SMSConfig{URL: "http://sms.example.it/send", Token: "t"}, "URL"},
		{"relative", SMSConfig{URL: "/send", Token: "t"}, "URL"},
		{"ftp", SMSConfig{URL: "ftp://sms.example.it/", Token: "t"}, "URL"},
		{"userinfo", SMSConfig{URL: "https://u:p@sms.example.it/", Token: "t"}, "URL"},
		{"no token", SMSConfig{URL: "https://sms.example.it/send"}, "Token"},
		{"token injection", SMSConfig{URL: "https://sms.example.it/send", Token: "t\r\nX: y"}, "Token"},
		{"negative timeout", SMSConfig{URL: "https://sms.example.it/send", Token: "t", Timeout: -1}, "Timeout"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewSMS(tt.cfg)
			switch {
			case tt.field == "" && err != nil:
				t.Fatalf("NewSMS: %v", err)
			case tt.field != "" && (err == nil || !strings.Contains(err.Error(), tt.field)):
				t.Fatalf("NewSMS: err = %v, want one naming %s", err, tt.field)
			}
		})
	}
}

// TestDispatcherOverSMS: 200 is sent, 400 parked and never retried, 503
// retried after the backoff, checked through the outbox with the clock.
func TestDispatcherOverSMS(t *testing.T) {
	tests := []struct {
		status int
		// wantNext: 0 sent, -1 parked, else the retry wait.
		wantNext time.Duration
	}{
		{http.StatusOK, 0},
		{http.StatusBadRequest, -1},
		{http.StatusServiceUnavailable, 30 * time.Second},
	}
	for _, tt := range tests {
		t.Run(http.StatusText(tt.status), func(t *testing.T) {
			forEachBackend(t, func(t *testing.T, b backend) {
				ctx := context.Background()
				g := startGateway(t, tt.status)
				ob, box, clk := b.open(t), testBox(t), newClock()
				d := dispatcher(t, ob, Config{Box: box, Senders: map[string]Sender{"sms": newSMSSender(t, g.URL)}}, clk, nil)
				id := enqueue(t, ob, box, clk.Now(), "sms", "+393331234789", "PIN: {{secret}}", "ABCD1234")
				if _, _, err := d.RunOnce(ctx); err != nil {
					t.Fatal(err)
				}
				if r := g.got(); len(r) != 1 || r[0].payload["text"] != "PIN: ABCD1234" {
					t.Fatalf("gateway got %+v", r)
				}
				m := get(t, ob, id)
				switch {
				case tt.wantNext == 0:
					if m.SentAt.IsZero() || len(m.Secret) != 0 {
						t.Fatalf("not marked sent: %+v", m)
					}
					return
				case tt.wantNext < 0:
					if m.NextAttemptAt.Before(clk.Now().AddDate(99, 0, 0)) {
						t.Fatalf("400 not parked: next %v", m.NextAttemptAt)
					}
				default:
					// The default backoff: 30s less up to a quarter of jitter.
					lo, hi := clk.Now().Add(tt.wantNext-tt.wantNext/4), clk.Now().Add(tt.wantNext)
					if m.NextAttemptAt.Before(lo.Add(-time.Second)) || m.NextAttemptAt.After(hi.Add(time.Second)) {
						t.Fatalf("next attempt %v, want within [%v, %v]", m.NextAttemptAt, lo, hi)
					}
				}
				if m.Attempts != 1 || !m.SentAt.IsZero() || !strings.Contains(m.LastError, http.StatusText(tt.status)) {
					t.Fatalf("after a %d: %+v", tt.status, m)
				}
				// Not retried before its time; then retried (503) or never (400).
				if _, _, err := d.RunOnce(ctx); err != nil || len(g.got()) != 1 {
					t.Fatalf("retried at once: %d requests, %v", len(g.got()), err)
				}
				g.setStatus(http.StatusOK)
				clk.Advance(tt.wantNext + time.Second)
				if tt.wantNext < 0 {
					clk.Advance(30 * 24 * time.Hour)
				}
				if _, _, err := d.RunOnce(ctx); err != nil {
					t.Fatal(err)
				}
				m = get(t, ob, id)
				if tt.wantNext < 0 {
					if len(g.got()) != 1 || !m.SentAt.IsZero() {
						t.Fatalf("a permanent failure was retried")
					}
					return
				}
				if len(g.got()) != 2 || m.SentAt.IsZero() {
					t.Fatalf("503 not retried after the backoff: %d requests, %+v", len(g.got()), m)
				}
			})
		})
	}
}
