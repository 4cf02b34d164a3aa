package backchannel_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/ponte-id/ponte/idp/backchannel"
	"github.com/ponte-id/ponte/idp/clients"
	"github.com/ponte-id/ponte/internal/oidctest"
	"github.com/ponte-id/ponte/storage"
	"github.com/ponte-id/ponte/storage/storagetest"
)

// BenchmarkDeliver measures the sender's cost per logout: claim from the
// outbox, sign the logout token (ES256), post it to a relying party on
// loopback, delete it — in batches of 50, 8 posts at a time, on each backend.
func BenchmarkDeliver(b *testing.B) {
	for _, be := range storagetest.Backends() {
		b.Run(be.Name, func(b *testing.B) {
			store := be.Open(b)
			env := oidctest.Start(b, store, oidctest.Options{})
			rp := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				_ = r.ParseForm()
				w.WriteHeader(http.StatusOK)
			}))
			b.Cleanup(rp.Close)
			if _, _, err := env.Registry.Create(context.Background(), clients.Spec{ID: "rp", RedirectURIs: []string{oidctest.RedirectURI},
				BackchannelLogoutURI: rp.URL + "/bcl"}); err != nil {
				b.Fatal(err)
			}
			s, err := backchannel.New(backchannel.Options{Issuer: env.Issuer, Store: store, Keys: env.Keys})
			if err != nil {
				b.Fatal(err)
			}
			ctx := context.Background()
			b.ResetTimer()
			n := 0
			for b.Loop() {
				b.StopTimer()
				now := time.Now().Add(-time.Second)
				for i := range 50 {
					if err := store.EnqueueLogout(ctx, storage.LogoutMessage{ID: fmt.Sprintf("m%d-%d", n, i), ClientID: "rp", SID: "sid", Subject: "sub",
						NextAttemptAt: now, CreatedAt: now}); err != nil {
						b.Fatal(err)
					}
				}
				n++
				b.StartTimer()
				if got, err := s.DeliverDue(ctx); err != nil || got != 50 {
					b.Fatalf("delivered %d: %v", got, err)
				}
			}
			b.ReportMetric(float64(50*b.N)/b.Elapsed().Seconds(), "logouts/s")
		})
	}
}
