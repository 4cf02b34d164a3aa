package sqlstore_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/ponte-id/ponte/storage"
	"github.com/ponte-id/ponte/storage/storagetest"
)

// TestDeleteExpiredCodes: the codes ConsumeCode would refuse for their age go,
// the live ones stay.
func TestDeleteExpiredCodes(t *testing.T) {
	now := time.Date(2031, 5, 17, 10, 0, 0, 0, time.UTC)
	for _, b := range storagetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			s := b.Open(t)
			ctx := context.Background()
			for hash, exp := range map[string]time.Time{
				"old": now.Add(-time.Minute), "edge": now, "live": now.Add(time.Minute), "zero": {},
			} {
				if err := s.CreateCode(ctx, storage.OneTimeCode{Hash: hash, Purpose: "recovery", ExpiresAt: exp}); err != nil {
					t.Fatal(err)
				}
			}
			n, err := s.DeleteExpiredCodes(ctx, now)
			if err != nil || n != 2 {
				t.Fatalf("DeleteExpiredCodes = %d, %v; want 2 (old, zero)", n, err)
			}
			// Consuming at an earlier instant shows whether the row is still
			// there (a zero-expiry code is never consumable: n shows it went).
			for hash, gone := range map[string]bool{"old": true, "edge": false, "live": false} {
				_, err := s.ConsumeCode(ctx, hash, "recovery", now.Add(-time.Hour))
				if gotGone := errors.Is(err, storage.ErrNotFound); gotGone != gone {
					t.Errorf("code %s: consume error %v, want gone=%v", hash, err, gone)
				}
			}
		})
	}
}
