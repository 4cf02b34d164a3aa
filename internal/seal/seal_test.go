package seal

import (
	"bytes"
	"errors"
	"testing"
)

func testKey(b byte) []byte { return bytes.Repeat([]byte{b}, KeySize) }

func newBox(t testing.TB, b byte) *Box {
	t.Helper()
	box, err := New(testKey(b))
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return box
}

func TestNewKeyLength(t *testing.T) {
	for _, n := range []int{0, 1, 16, 31, 33, 64} {
		if _, err := New(make([]byte, n)); err == nil {
			t.Errorf("New(%d-byte key): want error", n)
		}
	}
	if _, err := New(make([]byte, KeySize)); err != nil {
		t.Errorf("New(%d-byte key): %v", KeySize, err)
	}
}

func TestNewCopiesKey(t *testing.T) {
	key := testKey(7)
	box, err := New(key)
	if err != nil {
		t.Fatal(err)
	}
	before := box.Derive("x", 32)
	key[0] ^= 0xff
	if !bytes.Equal(before, box.Derive("x", 32)) {
		t.Fatal("mutating the caller's key changed the Box")
	}
}

func TestRoundTrip(t *testing.T) {
	box := newBox(t, 1)
	tests := []struct {
		name      string
		plaintext []byte
		ad        []byte
	}{
		{"empty", nil, nil},
		{"short", []byte("x"), nil},
		{"with ad", []byte("signing key DER"), []byte("signing-key:kid1")},
		{"empty ad vs nil", []byte("secret"), []byte{}},
		{"large", bytes.Repeat([]byte("abc"), 10000), []byte("ad")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sealed, err := box.Seal(tt.plaintext, tt.ad)
			if err != nil {
				t.Fatalf("Seal: %v", err)
			}
			if got, want := len(sealed), len(tt.plaintext)+overhead; got != want {
				t.Errorf("len(sealed) = %d, want %d", got, want)
			}
			if sealed[0] != 1 {
				t.Errorf("version byte = %d, want 1", sealed[0])
			}
			got, err := box.Open(sealed, tt.ad)
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			if !bytes.Equal(got, tt.plaintext) {
				t.Errorf("Open = %q, want %q", got, tt.plaintext)
			}
		})
	}
}

func TestSealUsesFreshNonces(t *testing.T) {
	box := newBox(t, 1)
	a, _ := box.Seal([]byte("same"), nil)
	b, _ := box.Seal([]byte("same"), nil)
	if bytes.Equal(a[1:1+nonceSize], b[1:1+nonceSize]) {
		t.Fatal("two seals reused a nonce")
	}
	if bytes.Equal(a, b) {
		t.Fatal("two seals of the same plaintext are identical")
	}
}

func TestOpenTamper(t *testing.T) {
	box := newBox(t, 1)
	plaintext, ad := []byte("the quick brown fox"), []byte("ad")
	sealed, err := box.Seal(plaintext, ad)
	if err != nil {
		t.Fatal(err)
	}
	ctStart, tagStart := 1+nonceSize, len(sealed)-tagSize
	tests := []struct {
		name    string
		from    int
		to      int
		wantErr error
	}{
		{"version", 0, 1, ErrUnknownVersion},
		{"nonce", 1, ctStart, ErrAuth},
		{"ciphertext", ctStart, tagStart, ErrAuth},
		{"tag", tagStart, len(sealed), ErrAuth},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for i := tt.from; i < tt.to; i++ {
				for _, mask := range []byte{0x01, 0x80, 0xff} {
					c := bytes.Clone(sealed)
					c[i] ^= mask
					got, err := box.Open(c, ad)
					if !errors.Is(err, tt.wantErr) {
						t.Fatalf("byte %d ^ %#x: err = %v, want %v", i, mask, err, tt.wantErr)
					}
					if got != nil {
						t.Fatalf("byte %d ^ %#x: returned plaintext on failure", i, mask)
					}
				}
			}
		})
	}
}

func TestOpenTruncatedOrExtended(t *testing.T) {
	box := newBox(t, 1)
	sealed, _ := box.Seal([]byte("payload"), nil)
	tests := []struct {
		name    string
		input   []byte
		wantErr error
	}{
		{"nil", nil, ErrTooShort},
		{"version only", sealed[:1], ErrTooShort},
		{"no tag", sealed[:1+nonceSize], ErrTooShort},
		{"one short of overhead", sealed[:overhead-1], ErrTooShort},
		{"dropped last byte", sealed[:len(sealed)-1], ErrAuth},
		{"extra byte", append(bytes.Clone(sealed), 0), ErrAuth},
		{"version 0", append([]byte{0}, sealed[1:]...), ErrUnknownVersion},
		{"version 2", append([]byte{2}, sealed[1:]...), ErrUnknownVersion},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := box.Open(tt.input, nil); !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
		})
	}
}

func TestOpenWrongContext(t *testing.T) {
	box := newBox(t, 1)
	sealed, _ := box.Seal([]byte("secret"), []byte("signing-key:a"))
	tests := []struct {
		name string
		box  *Box
		ad   []byte
	}{
		{"wrong ad", box, []byte("signing-key:b")},
		{"missing ad", box, nil},
		{"wrong key", newBox(t, 2), []byte("signing-key:a")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := tt.box.Open(sealed, tt.ad); !errors.Is(err, ErrAuth) {
				t.Fatalf("err = %v, want ErrAuth", err)
			}
		})
	}
}

func TestDerive(t *testing.T) {
	box := newBox(t, 1)
	labels := []string{"fosite-hmac", "client-secret", "pairwise-salt", "cookie", ""}
	seen := map[string]string{}
	for _, label := range labels {
		k := box.Derive(label, 32)
		if len(k) != 32 {
			t.Fatalf("Derive(%q) length %d", label, len(k))
		}
		if !bytes.Equal(k, box.Derive(label, 32)) {
			t.Errorf("Derive(%q) not deterministic", label)
		}
		if !bytes.Equal(k, newBox(t, 1).Derive(label, 32)) {
			t.Errorf("Derive(%q) differs between Boxes with the same key", label)
		}
		if bytes.Equal(k, newBox(t, 2).Derive(label, 32)) {
			t.Errorf("Derive(%q) same under another master key", label)
		}
		if bytes.Equal(k, testKey(1)) {
			t.Errorf("Derive(%q) returned the master key", label)
		}
		if other, dup := seen[string(k)]; dup {
			t.Errorf("labels %q and %q derive the same key", label, other)
		}
		seen[string(k)] = label
	}
	for _, n := range []int{1, 16, 64, maxDerive} {
		if got := len(box.Derive("len", n)); got != n {
			t.Errorf("Derive(_, %d) length %d", n, got)
		}
	}
}

func TestDeriveBadLengthPanics(t *testing.T) {
	box := newBox(t, 1)
	for _, n := range []int{-1, 0, maxDerive + 1} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("Derive(_, %d) did not panic", n)
				}
			}()
			box.Derive("x", n)
		}()
	}
}

func TestDeriveIndependentOfSealing(t *testing.T) {
	// A value sealed by one Box must not open under a Box whose master key is
	// a derived key, and derived keys must not equal the sealing key.
	box := newBox(t, 1)
	sealed, _ := box.Seal([]byte("x"), nil)
	for _, label := range []string{sealInfo, "fosite-hmac"} {
		other, err := New(box.Derive(label, KeySize))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := other.Open(sealed, nil); !errors.Is(err, ErrAuth) {
			t.Errorf("sealed value opened under Derive(%q): %v", label, err)
		}
	}
}
