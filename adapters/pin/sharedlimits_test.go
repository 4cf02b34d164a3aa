package pin_test

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ponte-id/ponte/adapters/pin"
	"github.com/ponte-id/ponte/idp/provider"
	"github.com/ponte-id/ponte/internal/ratelimit"
	"github.com/ponte-id/ponte/internal/ratelimit/redistest"
	"github.com/ponte-id/ponte/internal/seal"
	"github.com/ponte-id/ponte/storage/storagetest"
)

// TestFormsLimitedAcrossNodes: two nodes on one database and one Redis share
// the per-address count of a form, also for parallel posts; with Redis killed
// each node still refuses beyond the limit with its own count; no post gets
// an error other than the limit's.
func TestFormsLimitedAcrossNodes(t *testing.T) {
	srv := redistest.Start(t)
	store := storagetest.SQLite(t)
	const perIP = 6
	var nodes [2]*pin.Service
	for i := range nodes {
		key := make([]byte, 32)
		_, _ = rand.Read(key)
		box, _ := seal.New(key)
		// A generous timeout: on a loaded machine Redis may answer later
		// than the default 100 ms, and the node would rightly count alone.
		lim, err := ratelimit.NewRedis(ratelimit.RedisOptions{URL: srv.URL(), Timeout: 5 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { lim.Close() })
		cfg := pin.DefaultConfig()
		cfg.Params, cfg.BaseURL = testParams, "https://login.example.it"
		cfg.Limits.PerIP, cfg.Limits.PerCitizen = perIP, 1000
		c := &clock{t: before2021}
		if nodes[i], err = pin.NewService(cfg, pin.Deps{Store: store, Box: box, Revoker: provider.Revoker{Store: store},
			Citizens: provider.Revoker{Store: store}, Limiter: lim, Now: c.Now}); err != nil {
			t.Fatal(err)
		}
	}
	ctx := context.Background()
	// recover posts a recovery form through node n from ip: nil, or the limit.
	recover := func(n int, ip string) error {
		err := nodes[n].StartRecovery(ctx, cf, pin.Contacts{Email: "mario.rossi@example.it"}, ip)
		var rl *pin.RateLimitedError
		if err != nil && !errors.As(err, &rl) {
			t.Fatalf("node %d: %v", n, err)
		}
		return err
	}
	for i := range perIP {
		if err := recover(i%2, "192.0.2.1"); err != nil {
			t.Fatalf("post %d of %d through alternate nodes refused: %v", i+1, perIP, err)
		}
	}
	if recover(0, "192.0.2.1") == nil || recover(1, "192.0.2.1") == nil {
		t.Fatal("beyond the limit counted on both nodes, a node let a post through")
	}
	// In parallel, from another address, through both nodes.
	var allowed atomic.Int64
	var wg sync.WaitGroup
	for i := range 40 {
		wg.Go(func() {
			if recover(i%2, "192.0.2.2") == nil {
				allowed.Add(1)
			}
		})
	}
	wg.Wait()
	if allowed.Load() != perIP {
		t.Fatalf("%d of 40 parallel posts through two nodes let through, limit %d", allowed.Load(), perIP)
	}

	srv.Stop()
	// Each node counts alone now, from what it counted all along: node 0
	// and node 1 each saw 4 posts from the first address (3 let through,
	// 1 refused), so each lets 2 more through, then refuses.
	for n := range nodes {
		var got []bool
		for range 4 {
			got = append(got, recover(n, "192.0.2.1") == nil)
		}
		if fmt.Sprint(got) != "[true true false false]" {
			t.Fatalf("node %d with Redis down, an address it counted 4 times: %v", n, got)
		}
	}
	// A fresh address gets the limit on each node, no more.
	for n := range nodes {
		got := 0
		for range 3 * perIP {
			if recover(n, "192.0.2.3") == nil {
				got++
			}
		}
		if got != perIP {
			t.Fatalf("node %d with Redis down let %d of %d posts through, limit %d", n, got, 3*perIP, perIP)
		}
	}
}
