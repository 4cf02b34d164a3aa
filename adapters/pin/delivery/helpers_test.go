package delivery

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/ponte-id/ponte/internal/seal"
	"github.com/ponte-id/ponte/storage"
	"github.com/ponte-id/ponte/storage/storagetest"
)

// backend is an outbox the dispatcher tests run against.
type backend struct {
	name string
	// open returns a fresh outbox.
	open func(t *testing.T) storage.Outbox
	// shared returns n outboxes over one database (separate stores with their
	// own connection pools, as on separate nodes), for the concurrency test.
	shared func(t *testing.T, n int) []storage.Outbox
}

// backends lists the real stores: SQLite always, PostgreSQL when
// PONTE_TEST_POSTGRES_DSN is set (skipped otherwise).
var backends = []backend{
	{
		name: "sqlite",
		open: func(t *testing.T) storage.Outbox { return storagetest.SQLite(t) },
		shared: func(t *testing.T, n int) []storage.Outbox {
			path := filepath.Join(t.TempDir(), "ponte.db")
			out := make([]storage.Outbox, n)
			for i := range out {
				out[i] = storagetest.OpenMigrated(t, path)
			}
			return out
		},
	},
	{
		name: "postgres",
		open: func(t *testing.T) storage.Outbox { return storagetest.Postgres(t) },
		shared: func(t *testing.T, n int) []storage.Outbox {
			dsn := storagetest.PostgresDSN(t)
			out := make([]storage.Outbox, n)
			for i := range out {
				out[i] = storagetest.OpenMigrated(t, dsn)
			}
			return out
		},
	},
}

// forEachBackend runs f as a subtest per backend.
func forEachBackend(t *testing.T, f func(t *testing.T, b backend)) {
	t.Helper()
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) { f(t, b) })
	}
}

// clock is a settable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock {
	return &clock{t: time.Date(2026, 3, 2, 9, 30, 0, 0, time.UTC)}
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// testBox returns a Box under a fresh random key.
func testBox(t testing.TB) *seal.Box {
	t.Helper()
	key := make([]byte, seal.KeySize)
	if _, err := rand.Read(key); err != nil {
		t.Fatal(err)
	}
	b, err := seal.New(key)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// enqueue queues a message the way the PIN adapter does, the secret sealed
// with "outbox:"+ID, due at now, and returns its ID.
func enqueue(t testing.TB, ob storage.Outbox, box *seal.Box, now time.Time, channel, to, body, secret string) string {
	t.Helper()
	var r [12]byte
	if _, err := rand.Read(r[:]); err != nil {
		t.Fatal(err)
	}
	id := hex.EncodeToString(r[:])
	m := storage.Message{
		ID: id, Channel: channel, To: to, Subject: "PIN INPS: prima parte", Body: body,
		FiscalNumber: "RSSMRA80A01H501U", CreatedAt: now, NextAttemptAt: now,
	}
	if secret != "" {
		sealed, err := box.Seal([]byte(secret), []byte("outbox:"+id))
		if err != nil {
			t.Fatal(err)
		}
		m.Secret = sealed
	}
	if err := ob.Enqueue(context.Background(), m); err != nil {
		t.Fatalf("enqueue: %v", err)
	}
	return id
}

// get reads a message back from the outbox.
func get(t testing.TB, ob storage.Outbox, id string) storage.Message {
	t.Helper()
	all, err := ob.ListMessages(context.Background(), 10000)
	if err != nil {
		t.Fatalf("list: %v", err)
	}
	for _, m := range all {
		if m.ID == id {
			return m
		}
	}
	t.Fatalf("message %s not in the outbox", id)
	return storage.Message{}
}

// recorder is a Sender that records what it gets and answers with fail.
type recorder struct {
	mu   sync.Mutex
	got  []Outgoing
	fail func(Outgoing) error
}

func (r *recorder) Send(ctx context.Context, m Outgoing) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.got = append(r.got, m)
	if r.fail != nil {
		return r.fail(m)
	}
	return nil
}

func (r *recorder) sent() []Outgoing {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.got)
}

// near reports whether a and b are within a second (stores may round times).
func near(a, b time.Time) bool {
	d := a.Sub(b)
	return d > -time.Second && d < time.Second
}

var errTransient = errors.New("connection reset by peer")
