package sqlstore_test

import (
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ponte-id/ponte/storage"
	"github.com/ponte-id/ponte/storage/storagetest"
)

func benchToken(sig string) storage.Token {
	now := time.Now()
	return storage.Token{
		Kind:        storage.KindAccessToken,
		Signature:   sig,
		RequestID:   "req-" + sig,
		ClientID:    "rp1",
		Subject:     "sub-1",
		Active:      true,
		RequestedAt: now,
		ExpiresAt:   now.Add(time.Hour),
		Data:        make([]byte, 512),
	}
}

// BenchmarkTokenCreateGet measures one CreateToken plus one GetToken.
func BenchmarkTokenCreateGet(b *testing.B) {
	for _, be := range storagetest.Backends() {
		b.Run(be.Name, func(b *testing.B) {
			s := be.Open(b)
			ctx := b.Context()
			i := 0
			for b.Loop() {
				sig := fmt.Sprint("sig-", i)
				i++
				if err := s.CreateToken(ctx, benchToken(sig)); err != nil {
					b.Fatal(err)
				}
				if _, err := s.GetToken(ctx, storage.KindAccessToken, sig); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkTokenCreateGetParallel is BenchmarkTokenCreateGet from
// GOMAXPROCS goroutines at once.
func BenchmarkTokenCreateGetParallel(b *testing.B) {
	for _, be := range storagetest.Backends() {
		b.Run(be.Name, func(b *testing.B) {
			s := be.Open(b)
			ctx := b.Context()
			var n atomic.Int64
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					sig := fmt.Sprint("sig-", n.Add(1))
					if err := s.CreateToken(ctx, benchToken(sig)); err != nil {
						b.Error(err)
						return
					}
					if _, err := s.GetToken(ctx, storage.KindAccessToken, sig); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}

// BenchmarkRefreshRotation measures a refresh grant's storage work: in one
// transaction, read the old token, deactivate it and create the next.
func BenchmarkRefreshRotation(b *testing.B) {
	for _, be := range storagetest.Backends() {
		b.Run(be.Name, func(b *testing.B) {
			s := be.Open(b)
			ctx := b.Context()
			prev := "rt-0"
			if err := s.CreateToken(ctx, benchToken(prev)); err != nil {
				b.Fatal(err)
			}
			i := 0
			for b.Loop() {
				i++
				next := fmt.Sprint("rt-", i)
				tx, err := s.BeginTx(ctx)
				if err != nil {
					b.Fatal(err)
				}
				tok, err := s.GetToken(tx, storage.KindAccessToken, prev)
				if err != nil {
					b.Fatal(err)
				}
				if err := s.DeactivateToken(tx, storage.KindAccessToken, prev); err != nil {
					b.Fatal(err)
				}
				tok.Signature = next
				if err := s.CreateToken(tx, tok); err != nil {
					b.Fatal(err)
				}
				if err := s.Commit(tx); err != nil {
					b.Fatal(err)
				}
				prev = next
			}
		})
	}
}
