package pin

import (
	"context"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"
)

// testParams keep the hash cheap in tests; the real ones are DefaultParams.
var testParams = Params{MemoryKiB: 8 * 1024, Time: 1, Threads: 1}

func TestHasher(t *testing.T) {
	ctx := context.Background()
	h := newHasher(testParams, 2, 8, time.Second)
	enc, err := h.Hash(ctx, "Abcd1234")
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name       string
		hasher     *hasher
		encoded    []byte
		pin        string
		ok, rehash bool
		err        bool
	}{
		{name: "right PIN", hasher: h, encoded: enc, pin: "Abcd1234", ok: true},
		{name: "wrong PIN", hasher: h, encoded: enc, pin: "Abcd1235"},
		{name: "case matters", hasher: h, encoded: enc, pin: "abcd1234"},
		{name: "no account verifies the fake hash and fails", hasher: h, encoded: nil, pin: "ponte-fake-pin"},
		{name: "stronger params ask to rehash", hasher: newHasher(Params{MemoryKiB: 16 * 1024, Time: 1, Threads: 1}, 1, 8, time.Second), encoded: enc, pin: "Abcd1234", ok: true, rehash: true},
		{name: "a hash altered in its last byte refuses the right PIN", hasher: h, encoded: alterKey(t, enc, -1), pin: "Abcd1234"},
		{name: "a hash altered in its first byte refuses the right PIN", hasher: h, encoded: alterKey(t, enc, 0), pin: "Abcd1234"},
		{name: "a shorter stored key refuses the right PIN", hasher: h, encoded: truncateKey(t, enc, 16), pin: "Abcd1234"},
		{name: "malformed", hasher: h, encoded: []byte("$argon2id$v=19$m=1,t=1,p=1$xx$yy"), pin: "x", err: true},
		{name: "not argon2id", hasher: h, encoded: []byte("$2a$10$abcdefghijklmnopqrstuv"), pin: "x", err: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ok, rehash, err := tc.hasher.Verify(ctx, tc.encoded, tc.pin)
			if (err != nil) != tc.err || ok != tc.ok || (err == nil && rehash != tc.rehash) {
				t.Fatalf("Verify = %v, %v, %v; want ok=%v rehash=%v err=%v", ok, rehash, err, tc.ok, tc.rehash, tc.err)
			}
		})
	}
}

// alterKey flips the bits of the stored key's byte at i (negative: from the end).
func alterKey(t *testing.T, enc []byte, i int) []byte {
	t.Helper()
	return editKey(t, enc, func(k []byte) []byte {
		if i < 0 {
			i += len(k)
		}
		k[i] ^= 0xff
		return k
	})
}

// truncateKey keeps the first n bytes of the stored key.
func truncateKey(t *testing.T, enc []byte, n int) []byte {
	t.Helper()
	return editKey(t, enc, func(k []byte) []byte { return k[:n] })
}

func editKey(t *testing.T, enc []byte, edit func([]byte) []byte) []byte {
	t.Helper()
	parts := strings.Split(string(enc), "$")
	key, err := base64.RawStdEncoding.DecodeString(parts[5])
	if err != nil {
		t.Fatal(err)
	}
	parts[5] = base64.RawStdEncoding.EncodeToString(edit(key))
	return []byte(strings.Join(parts, "$"))
}

// TestHasherQueue: with every slot taken, at most the queue's length wait;
// the next caller, and a waiter past the longest wait, get ErrBusy at once.
func TestHasherQueue(t *testing.T) {
	h := newHasher(testParams, 1, 1, 200*time.Millisecond)
	release, err := h.acquire(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	waited := make(chan error, 1)
	go func() {
		r, err := h.acquire(context.Background())
		if err == nil {
			r()
		}
		waited <- err
	}()
	for h.gate.Stats().Waiting != 1 {
		time.Sleep(time.Millisecond)
	}
	if _, err := h.Hash(context.Background(), "x"); !errors.Is(err, ErrBusy) {
		t.Fatalf("a caller beyond the queue: %v, want ErrBusy", err)
	}
	if err := <-waited; !errors.Is(err, ErrBusy) {
		t.Fatalf("a waiter past the longest wait: %v, want ErrBusy", err)
	}
	release()
	if _, err := h.Hash(context.Background(), "x"); err != nil {
		t.Fatalf("a free slot: %v", err)
	}
	if n := h.gate.Stats().Waiting; n != 0 {
		t.Fatalf("%d callers still counted as waiting", n)
	}
}

// TestHasherBound: with every slot taken, a hash waits and gives up when its context ends.
func TestHasherBound(t *testing.T) {
	h := newHasher(testParams, 1, 8, time.Second)
	release, err := h.acquire(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := h.Hash(ctx, "x"); err == nil {
		t.Fatal("a hash ran past the bound")
	}
}

func TestDelay(t *testing.T) {
	cases := []struct {
		n, free int
		want    time.Duration
	}{
		{0, 5, 0}, {4, 5, 0}, {5, 5, time.Second}, {6, 5, 2 * time.Second}, {10, 5, 32 * time.Second},
		{15, 5, 15 * time.Minute}, {99, 5, 15 * time.Minute},
	}
	for _, tc := range cases {
		if got := delay(tc.n, tc.free, 15*time.Minute); got != tc.want {
			t.Errorf("delay(%d, %d) = %v, want %v", tc.n, tc.free, got, tc.want)
		}
	}
}

// FuzzDecode: the stored-hash parser never panics on any input.
func FuzzDecode(f *testing.F) {
	f.Add([]byte("$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaA"))
	f.Add([]byte("$argon2id$v=19$m=4294967295,t=2,p=1$$"))
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _, _, _ = decode(b)
	})
}
