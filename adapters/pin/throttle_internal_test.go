package pin

import (
	"testing"
	"time"

	"github.com/ponte-id/ponte/storage"
)

// TestDecideClockOrder: an attempt reserved just before ours but stamped
// later (parallel requests read the clock before they queue for the writer;
// another node's clock) delays nothing while the failures are free, and
// beyond them the delay runs from that attempt.
func TestDecideClockOrder(t *testing.T) {
	now := time.Date(2026, 4, 1, 9, 0, 0, 0, time.UTC)
	later := now.Add(3 * time.Millisecond)
	th := DefaultThrottle
	for _, tc := range []struct {
		name     string
		account  storage.Attempt
		ip       *storage.Attempt
		wantWait time.Duration
		wantLock bool
	}{
		{"account free, prior stamped later", storage.Attempt{Count: 2, Prev: later}, nil, 0, false},
		{"ip free, prior stamped later", storage.Attempt{Count: 1}, &storage.Attempt{Count: 8, Prev: later}, 0, false},
		{"account beyond free", storage.Attempt{Count: th.FreeAccountFailures + 1, Prev: later}, nil, time.Second + 3*time.Millisecond, false},
		{"ip beyond free", storage.Attempt{Count: 1}, &storage.Attempt{Count: th.FreeIPFailures + 2, Prev: now}, 2 * time.Second, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wait, locked := th.decide(reservation{account: tc.account, ip: tc.ip}, now)
			if wait != tc.wantWait || locked != tc.wantLock {
				t.Fatalf("wait %s locked %v, want %s %v", wait, locked, tc.wantWait, tc.wantLock)
			}
		})
	}
}
