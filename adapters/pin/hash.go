package pin

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"runtime/debug"
	"strings"
	"time"

	"golang.org/x/crypto/argon2"

	"github.com/ponte-id/ponte/internal/admission"
)

// Params are argon2id parameters; they are stored with every hash (PHC string
// format), so that raising them later rehashes each PIN at its next login.
type Params struct {
	MemoryKiB uint32 `yaml:"memory_kib"`
	Time      uint32 `yaml:"time"`
	Threads   uint8  `yaml:"threads"`
}

// DefaultParams are OWASP's argon2id minimum: 19 MiB, 2 passes, 1 lane.
var DefaultParams = Params{MemoryKiB: 19 * 1024, Time: 2, Threads: 1}

// GCPercent is the garbage collector setting (GOGC) for a process that checks
// PINs. Each check allocates Params.MemoryKiB that is garbage about 25 ms
// later; at Go's default of 100 the collector runs about once per check, and
// BenchmarkPINLogin made about a fifth fewer logins per second. The hash slots
// bound the live heap, so the heap this setting allows (five times the live
// one) is bounded too.
const GCPercent = 400

// TuneGC applies GCPercent unless the GOGC environment variable is set; the
// returned function restores the previous setting. The server calls it at start.
func TuneGC() (restore func()) {
	if _, set := os.LookupEnv("GOGC"); set {
		return func() {}
	}
	old := debug.SetGCPercent(GCPercent)
	return func() { debug.SetGCPercent(old) }
}

const (
	saltLen = 16
	keyLen  = 32
)

var errMalformedHash = errors.New("pin: malformed hash")

// ErrBusy: every hashing slot is taken and the waiting line is full (or the
// wait would be too long). Nothing was checked; the caller answers 503 with
// Retry-After.
var ErrBusy = errors.New("pin: too many PIN checks in progress, retry shortly")

// hasher computes argon2id hashes behind an admission gate: at most
// Concurrency in flight, so a login surge waits in a bounded line instead of
// allocating 19 MiB per request, and beyond the line it is refused at once
// with ErrBusy.
type hasher struct {
	params Params
	gate   *admission.Gate
	// fake is verified against for unknown accounts, so timing does not tell
	// whether a codice fiscale has a PIN.
	fake []byte
}

// newHasher returns a hasher; concurrency must be at least 1, queue at least
// 0 and maxWait positive (Service fills the defaults in).
func newHasher(p Params, concurrency, queue int, maxWait time.Duration) *hasher {
	gate, err := admission.New(admission.Options{Concurrency: concurrency, Queue: queue, MaxWait: maxWait})
	if err != nil {
		panic(err) // the configuration was validated and defaulted before
	}
	h := &hasher{params: p, gate: gate}
	h.fake = h.encode([]byte("ponte-fake-pin"), randomBytes(saltLen), p)
	return h
}

// acquire takes a hashing slot: at once if one is free, otherwise after
// waiting in line (ErrBusy when the line is full or the wait exceeds maxWait),
// or until ctx ends.
func (h *hasher) acquire(ctx context.Context) (func(), error) {
	release, err := h.gate.Acquire(ctx)
	if errors.Is(err, admission.ErrBusy) {
		return nil, ErrBusy
	}
	return release, err
}

// Hash returns the PHC string of pin under the current parameters.
func (h *hasher) Hash(ctx context.Context, pin string) ([]byte, error) {
	release, err := h.acquire(ctx)
	if err != nil {
		return nil, err
	}
	defer release()
	return h.encode([]byte(pin), randomBytes(saltLen), h.params), nil
}

// Verify checks pin against a PHC string in constant time. A nil encoded
// hash verifies against the fake hash and always fails. rehash reports that the
// hash uses weaker parameters than the current ones.
func (h *hasher) Verify(ctx context.Context, encoded []byte, pin string) (ok, rehash bool, err error) {
	fake := encoded == nil
	if fake {
		encoded = h.fake
	}
	p, salt, want, err := decode(encoded)
	if err != nil {
		return false, false, err
	}
	release, err := h.acquire(ctx)
	if err != nil {
		return false, false, err
	}
	got := argon2.IDKey([]byte(pin), salt, p.Time, p.MemoryKiB, p.Threads, uint32(len(want)))
	release()
	ok = subtle.ConstantTimeCompare(got, want) == 1 && !fake
	rehash = p.MemoryKiB < h.params.MemoryKiB || p.Time < h.params.Time || p.Threads < h.params.Threads
	return ok, rehash, nil
}

func (h *hasher) encode(pin, salt []byte, p Params) []byte {
	key := argon2.IDKey(pin, salt, p.Time, p.MemoryKiB, p.Threads, keyLen)
	b64 := base64.RawStdEncoding
	return fmt.Appendf(nil, "$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s",
		argon2.Version, p.MemoryKiB, p.Time, p.Threads, b64.EncodeToString(salt), b64.EncodeToString(key))
}

// decode parses "$argon2id$v=19$m=...,t=...,p=...$salt$hash".
func decode(encoded []byte) (Params, []byte, []byte, error) {
	parts := strings.Split(string(encoded), "$")
	if len(parts) != 6 || parts[1] != "argon2id" {
		return Params{}, nil, nil, errMalformedHash
	}
	var version int
	if _, err := fmt.Sscanf(parts[2], "v=%d", &version); err != nil || version != argon2.Version {
		return Params{}, nil, nil, errMalformedHash
	}
	var p Params
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &p.MemoryKiB, &p.Time, &p.Threads); err != nil {
		return Params{}, nil, nil, errMalformedHash
	}
	if p.MemoryKiB < 8 || p.MemoryKiB > 4<<20 || p.Time < 1 || p.Time > 100 || p.Threads < 1 {
		return Params{}, nil, nil, errMalformedHash
	}
	salt, err1 := base64.RawStdEncoding.DecodeString(parts[4])
	key, err2 := base64.RawStdEncoding.DecodeString(parts[5])
	if err1 != nil || err2 != nil || len(salt) < 8 || len(key) < 16 || len(key) > 64 {
		return Params{}, nil, nil, errMalformedHash
	}
	return p, salt, key, nil
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b) // never fails (Go 1.24+)
	return b
}
