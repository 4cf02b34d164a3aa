package seal

import (
	"bytes"
	"testing"
)

// FuzzOpen checks that Open never panics and never returns plaintext for
// input it did not seal.
func FuzzOpen(f *testing.F) {
	box := newBox(f, 1)
	good, err := box.Seal([]byte("hello"), []byte("ad"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good, []byte("ad"))
	f.Add([]byte{}, []byte{})
	f.Add([]byte{1}, []byte(nil))
	f.Add(bytes.Repeat([]byte{1}, overhead), []byte("ad"))
	f.Add(append([]byte{2}, good[1:]...), []byte("ad"))
	f.Fuzz(func(t *testing.T, sealed, ad []byte) {
		plaintext, err := box.Open(sealed, ad)
		if err != nil {
			if plaintext != nil {
				t.Fatal("plaintext returned with an error")
			}
			return
		}
		// Only a genuine value opens. Fuzz workers rebuild the seed with a
		// fresh nonce, so compare what was sealed rather than the bytes.
		if !bytes.Equal(ad, []byte("ad")) || !bytes.Equal(plaintext, []byte("hello")) {
			t.Fatalf("forged value opened: %x -> %q", sealed, plaintext)
		}
	})
}
