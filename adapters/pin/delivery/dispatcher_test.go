package delivery

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/ponte-id/ponte/storage"
	"github.com/ponte-id/ponte/storage/storagetest"
)

func TestNewValidates(t *testing.T) {
	ob, box, s := storagetest.SQLite(t), testBox(t), &recorder{}
	tests := []struct {
		name  string
		cfg   Config
		field string
	}{
		{"no outbox", Config{Box: box, Senders: map[string]Sender{"sms": s}}, "Outbox"},
		{"no box", Config{Outbox: ob, Senders: map[string]Sender{"sms": s}}, "Box"},
		{"unknown channel", Config{Outbox: ob, Box: box, Senders: map[string]Sender{"fax": s}}, "Senders"},
		{"nil sender", Config{Outbox: ob, Box: box, Senders: map[string]Sender{"sms": nil}}, "Senders"},
		{"negative batch", Config{Outbox: ob, Box: box, Senders: map[string]Sender{"sms": s}, Batch: -1}, "Batch"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(tt.cfg)
			if err == nil || !strings.Contains(err.Error(), tt.field) {
				t.Fatalf("New: err = %v, want one naming %s", err, tt.field)
			}
		})
	}
	idle, err := New(Config{Outbox: ob, Box: box})
	if err != nil {
		t.Fatalf("New without senders: %v", err)
	}
	if sent, failed, err := idle.RunOnce(context.Background()); sent+failed != 0 || err != nil {
		t.Errorf("RunOnce without senders = %d, %d, %v", sent, failed, err)
	}
	d, err := New(Config{Outbox: ob, Box: box, Senders: map[string]Sender{"post": s, "email": s}})
	if err != nil {
		t.Fatal(err)
	}
	if d.cfg.Batch != DefaultBatch || d.cfg.Lease != DefaultLease || d.cfg.MaxAttempts != DefaultMaxAttempts {
		t.Errorf("defaults not applied: %+v", d.cfg)
	}
	if got := strings.Join(d.channels, ","); got != "email,post" {
		t.Errorf("channels = %s, want email,post", got)
	}
}

func TestDefaultBackoff(t *testing.T) {
	tests := []struct {
		attempt int
		full    time.Duration
	}{
		{0, 30 * time.Second},
		{1, 30 * time.Second},
		{2, time.Minute},
		{3, 2 * time.Minute},
		{7, 32 * time.Minute},
		{8, time.Hour},
		{9, time.Hour},
		{1000, time.Hour},
	}
	for _, tt := range tests {
		for range 50 {
			got := DefaultBackoff(tt.attempt)
			if got > tt.full || got < tt.full-tt.full/4 {
				t.Fatalf("DefaultBackoff(%d) = %v, want within [%v, %v]", tt.attempt, got, tt.full-tt.full/4, tt.full)
			}
		}
	}
}

func TestMaskRecipient(t *testing.T) {
	tests := []struct{ in, want string }{
		{"+393331234789", "***789"},
		{"3331234789", "***789"},
		{"mario.rossi@example.it", "***ssi@example.it"},
		{"ab@example.it", "***@example.it"},
		{"", "***"},
		{"12345", "***"},
	}
	for _, tt := range tests {
		if got := maskRecipient(tt.in); got != tt.want {
			t.Errorf("maskRecipient(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestScrub(t *testing.T) {
	got := scrub("550 <mario.rossi@example.it> rejected, text ABCD1234, body \"PIN: ABCD1234\"", "mario.rossi@example.it", "PIN: ABCD1234", []byte("ABCD1234"))
	if want := "550 <***ssi@example.it> rejected, text [secret], body \"[body]\""; got != want {
		t.Errorf("scrub = %q, want %q", got, want)
	}
	if got := scrub("context deadline exceeded", "xe", "x", []byte("e")); got != "context deadline exceeded" {
		t.Errorf("short values scrubbed: %q", got)
	}
	long := scrub(strings.Repeat("è", 400), "", "", nil)
	if len(long) > maxReason || !utf8.ValidString(long) || !strings.HasSuffix(long, "…") || !strings.HasPrefix(long, "è") {
		t.Errorf("scrub did not cap cleanly: %d bytes", len(long))
	}
}

// dispatcher returns a Dispatcher over ob with senders, on clk, logging to buf.
func dispatcher(t *testing.T, ob storage.Outbox, cfg Config, clk *clock, buf *bytes.Buffer) *Dispatcher {
	t.Helper()
	cfg.Outbox = ob
	if cfg.Box == nil {
		t.Fatal("cfg.Box is required")
	}
	if clk != nil {
		cfg.Now = clk.Now
	}
	if buf != nil {
		cfg.Logger = slog.New(slog.NewJSONHandler(&syncWriter{w: buf}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	} else {
		cfg.Logger = slog.New(slog.NewTextHandler(t.Output(), nil))
	}
	d, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

type syncWriter struct {
	mu sync.Mutex
	w  *bytes.Buffer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

func TestDispatcherDelivers(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		ob, box, clk := b.open(t), testBox(t), newClock()
		email, sms, post := &recorder{}, &recorder{}, &recorder{}
		d := dispatcher(t, ob, Config{Box: box, Senders: map[string]Sender{"email": email, "sms": sms, "post": post}}, clk, nil)

		now := clk.Now()
		idEmail := enqueue(t, ob, box, now, "email", "mario.rossi@example.it", "Prima parte: {{secret}}\nFine.", "ABCD1234")
		idSMS := enqueue(t, ob, box, now, "sms", "+393331234789", "Seconda parte: {{secret}} ({{secret}})", "EFGH5678")
		idPost := enqueue(t, ob, box, now, "post", "Mario Rossi, Via Roma 1, 00100 Roma (RM)", "Nessun segreto.", "")
		idPEC := enqueue(t, ob, box, now, "pec", "mario@pec.example.it", "PEC: {{secret}}", "IJKL9012")
		idLater := enqueue(t, ob, box, now.Add(time.Hour), "email", "later@example.it", "Dopo: {{secret}}", "MNOP3456")

		clk.Advance(time.Second)
		sent, failed, err := d.RunOnce(ctx)
		if err != nil || sent != 3 || failed != 0 {
			t.Fatalf("RunOnce = %d sent, %d failed, %v; want 3, 0, nil", sent, failed, err)
		}
		checkOne := func(r *recorder, id, body string) {
			t.Helper()
			got := r.sent()
			if len(got) != 1 || got[0].ID != id || got[0].Body != body {
				t.Fatalf("sender got %+v, want one message %s with body %q", got, id, body)
			}
		}
		checkOne(email, idEmail, "Prima parte: ABCD1234\nFine.")
		checkOne(sms, idSMS, "Seconda parte: EFGH5678 (EFGH5678)")
		checkOne(post, idPost, "Nessun segreto.")
		if g := email.sent()[0]; g.Channel != "email" || g.To != "mario.rossi@example.it" || g.Subject != "PIN INPS: prima parte" {
			t.Errorf("email rendered as %+v", g)
		}
		for _, id := range []string{idEmail, idSMS, idPost} {
			m := get(t, ob, id)
			if m.SentAt.IsZero() || !near(m.SentAt, clk.Now()) {
				t.Errorf("%s: SentAt = %v, want %v", m.Channel, m.SentAt, clk.Now())
			}
			if len(m.Secret) != 0 {
				t.Errorf("%s: secret not erased after sending", m.Channel)
			}
		}
		// No PEC sender: the PEC message is not even claimed.
		if m := get(t, ob, idPEC); !m.SentAt.IsZero() || m.Attempts != 0 || m.LeaseUntil.After(clk.Now()) || len(m.Secret) == 0 {
			t.Errorf("pec message touched without a sender: %+v", m)
		}
		// The message due in an hour waits.
		if m := get(t, ob, idLater); !m.SentAt.IsZero() {
			t.Errorf("message sent before it was due")
		}

		sent, failed, err = d.RunOnce(ctx)
		if err != nil || sent != 0 || failed != 0 {
			t.Fatalf("second RunOnce = %d, %d, %v; want nothing to do", sent, failed, err)
		}
		clk.Advance(time.Hour)
		if sent, _, _ := d.RunOnce(ctx); sent != 1 || email.sent()[1].Body != "Dopo: MNOP3456" {
			t.Fatalf("the later message: sent %d, got %+v", sent, email.sent())
		}
	})
}

func TestDispatcherFailures(t *testing.T) {
	backoff := func(attempt int) time.Duration { return time.Duration(attempt) * time.Minute }
	tests := []struct {
		name        string
		err         error
		maxAttempts int
		// wantNext is the wait after each of the failures, 0 for parked.
		wantNext []time.Duration
	}{
		{"transient retried with backoff", errTransient, 5, []time.Duration{time.Minute, 2 * time.Minute, 3 * time.Minute}},
		{"permanent parked at once", permanent(errors.New("recipient rejected")), 5, []time.Duration{0}},
		{"parked after max attempts", errTransient, 3, []time.Duration{time.Minute, 2 * time.Minute, 0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			forEachBackend(t, func(t *testing.T, b backend) {
				ctx := context.Background()
				ob, box, clk := b.open(t), testBox(t), newClock()
				var logs bytes.Buffer
				s := &recorder{fail: func(m Outgoing) error {
					// A server quoting everything back must not leak into the store or the logs.
					return fmt.Errorf("%w (to %s, text %q)", tt.err, m.To, m.Body)
				}}
				d := dispatcher(t, ob, Config{Box: box, Senders: map[string]Sender{"sms": s},
					Backoff: backoff, MaxAttempts: tt.maxAttempts}, clk, &logs)
				id := enqueue(t, ob, box, clk.Now(), "sms", "+393331234789", "PIN: {{secret}}", "ABCD1234")

				for i, wait := range tt.wantNext {
					sent, failed, err := d.RunOnce(ctx)
					if err != nil || sent != 0 || failed != 1 {
						t.Fatalf("attempt %d: RunOnce = %d, %d, %v; want 0, 1, nil", i+1, sent, failed, err)
					}
					m := get(t, ob, id)
					if m.Attempts != i+1 {
						t.Errorf("attempt %d: Attempts = %d", i+1, m.Attempts)
					}
					if wait == 0 {
						if m.NextAttemptAt.Before(clk.Now().AddDate(99, 0, 0)) {
							t.Errorf("attempt %d: parked until %v, want ~100 years", i+1, m.NextAttemptAt)
						}
						if !strings.Contains(logs.String(), `"level":"ERROR"`) {
							t.Errorf("parking not logged at error level:\n%s", logs.String())
						}
					} else if !near(m.NextAttemptAt, clk.Now().Add(wait)) {
						t.Errorf("attempt %d: next at %v, want now+%v = %v", i+1, m.NextAttemptAt, wait, clk.Now().Add(wait))
					}
					if !m.SentAt.IsZero() || len(m.Secret) == 0 {
						t.Errorf("attempt %d: failed message marked sent or lost its secret", i+1)
					}
					if m.LastError == "" || strings.Contains(m.LastError, "ABCD1234") || strings.Contains(m.LastError, "3331234789") {
						t.Errorf("attempt %d: LastError = %q: want a reason without secret or recipient", i+1, m.LastError)
					}
					if wait > 0 {
						// Not due before the backoff is over.
						clk.Advance(wait - 2*time.Second)
						if _, failed, _ := d.RunOnce(ctx); failed != 0 {
							t.Fatalf("attempt %d: retried before the backoff was over", i+1)
						}
						clk.Advance(2 * time.Second)
					}
				}
				if tt.wantNext[len(tt.wantNext)-1] == 0 {
					clk.Advance(24 * time.Hour)
					if _, failed, _ := d.RunOnce(ctx); failed != 0 {
						t.Errorf("a parked message was retried")
					}
				}
				if n := len(s.sent()); n != len(tt.wantNext) {
					t.Errorf("sender called %d times, want %d", n, len(tt.wantNext))
				}
				for _, leak := range []string{"ABCD1234", "3331234789", "PIN: "} {
					if strings.Contains(logs.String(), leak) {
						t.Errorf("logs hold %q:\n%s", leak, logs.String())
					}
				}
				if !strings.Contains(logs.String(), `"to":"***789"`) {
					t.Errorf("logs lack the masked recipient:\n%s", logs.String())
				}
			})
		})
	}
}

func TestDispatcherUnopenableSecret(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		ob, box, clk := b.open(t), testBox(t), newClock()
		s := &recorder{}
		d := dispatcher(t, ob, Config{Box: box, Senders: map[string]Sender{"email": s}}, clk, nil)
		// Sealed under another key, and a body that needs a secret without one.
		wrongKey := enqueue(t, ob, testBox(t), clk.Now(), "email", "a@example.it", "PIN {{secret}}", "ABCD1234")
		noSecret := enqueue(t, ob, box, clk.Now(), "email", "b@example.it", "PIN {{secret}}", "")
		sent, failed, err := d.RunOnce(ctx)
		if err != nil || sent != 0 || failed != 2 {
			t.Fatalf("RunOnce = %d, %d, %v; want 0, 2, nil", sent, failed, err)
		}
		if len(s.sent()) != 0 {
			t.Fatalf("the sender was called: %+v", s.sent())
		}
		for _, id := range []string{wrongKey, noSecret} {
			if m := get(t, ob, id); m.NextAttemptAt.Before(clk.Now().AddDate(99, 0, 0)) || m.LastError == "" {
				t.Errorf("message not parked: next %v, reason %q", m.NextAttemptAt, m.LastError)
			}
		}
	})
}

// blocker blocks each Send until its context ends.
type blocker struct {
	calls     int
	deadlines []time.Time
}

func (b *blocker) Send(ctx context.Context, _ Outgoing) error {
	b.calls++
	dl, _ := ctx.Deadline()
	b.deadlines = append(b.deadlines, dl)
	<-ctx.Done()
	return ctx.Err()
}

func TestDispatcherStopsBeforeLeaseEnds(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		ob, box, clk := b.open(t), testBox(t), newClock()
		s := &blocker{}
		lease := 200 * time.Millisecond
		d := dispatcher(t, ob, Config{Box: box, Senders: map[string]Sender{"sms": s}, Lease: lease,
			Backoff: func(int) time.Duration { return time.Minute }}, clk, nil)
		var ids []string
		for i := range 3 {
			ids = append(ids, enqueue(t, ob, box, clk.Now().Add(time.Duration(i)*time.Millisecond), "sms", "+393331234789", "x", ""))
		}
		clk.Advance(time.Second)
		start := time.Now()
		sent, failed, err := d.RunOnce(ctx)
		if len(s.deadlines) != 1 || s.deadlines[0].IsZero() || !s.deadlines[0].Before(start.Add(lease)) {
			t.Errorf("send deadlines %v: want one before the lease ends at %v", s.deadlines, start.Add(lease))
		}
		if err != nil || sent != 0 || failed != 1 || s.calls != 1 {
			t.Fatalf("RunOnce = %d, %d, %v with %d sends; want 0, 1, nil with 1 send", sent, failed, err, s.calls)
		}
		// The two left over are still leased, then claimable again.
		if sent, failed, _ := d.RunOnce(ctx); sent+failed != 0 {
			t.Fatalf("leased messages claimed again before the lease ended")
		}
		clk.Advance(lease)
		if _, failed, _ := d.RunOnce(ctx); failed != 1 || s.calls != 2 {
			t.Fatalf("after the lease: failed %d, sends %d; want 1, 2", failed, s.calls)
		}
		attempts := 0
		for _, id := range ids {
			attempts += get(t, ob, id).Attempts
		}
		if attempts != 2 {
			t.Errorf("total attempts = %d, want 2", attempts)
		}
	})
}

func TestDispatcherRun(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ob, box := b.open(t), testBox(t)
		s := &recorder{}
		// Batch 2 and a long interval: Run must claim again at once after a full batch.
		d := dispatcher(t, ob, Config{Box: box, Senders: map[string]Sender{"post": s}, Batch: 2}, nil, nil)
		for range 5 {
			enqueue(t, ob, box, time.Now().Add(-time.Second), "post", "Via Roma 1", "lettera {{secret}}", "S")
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { d.Run(ctx, time.Hour); close(done) }()
		deadline := time.Now().Add(10 * time.Second)
		for len(s.sent()) < 5 && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
		}
		cancel()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatal("Run did not return after cancel")
		}
		if n := len(s.sent()); n != 5 {
			t.Fatalf("Run delivered %d messages, want 5", n)
		}
		for _, m := range s.sent() {
			if m.Body != "lettera S" {
				t.Errorf("body %q", m.Body)
			}
		}
	})
}

// TestDispatcherConcurrent runs two dispatchers, on separate connections to
// one outbox, until everything is sent: each message goes out exactly once.
func TestDispatcherConcurrent(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		const n = 60
		obs := b.shared(t, 2)
		box := testBox(t)
		var mu sync.Mutex
		count := map[string]int{}
		var want []string
		for i := range n {
			ch := []string{"email", "sms"}[i%2]
			want = append(want, enqueue(t, obs[0], box, time.Now().Add(-time.Minute), ch, "+393331234789", "{{secret}}", fmt.Sprint("secret-", i)))
		}
		ctx := context.Background()
		var wg sync.WaitGroup
		errs := make(chan error, 2)
		for w := range 2 {
			rec := &recorder{fail: func(m Outgoing) error {
				mu.Lock()
				defer mu.Unlock()
				count[m.ID]++
				return nil
			}}
			d := dispatcher(t, obs[w], Config{Box: box, Senders: map[string]Sender{"email": rec, "sms": rec}, Batch: 7}, nil, nil)
			wg.Go(func() {
				for range 100 {
					sent, _, err := d.RunOnce(ctx)
					if err != nil {
						errs <- err
						return
					}
					mu.Lock()
					total := len(count)
					mu.Unlock()
					if sent == 0 && total == n {
						return
					}
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		for _, id := range want {
			if count[id] != 1 {
				t.Errorf("message %s delivered %d times", id, count[id])
			}
			if m := get(t, obs[1], id); m.SentAt.IsZero() || len(m.Secret) != 0 {
				t.Errorf("message %s not marked sent", id)
			}
		}
	})
}
