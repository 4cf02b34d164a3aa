package admin_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"testing"
	"time"

	"github.com/ponte-id/ponte/api"
	"github.com/ponte-id/ponte/idp/admin"
	"github.com/ponte-id/ponte/idp/staff"
	"github.com/ponte-id/ponte/internal/ratelimit"
	"github.com/ponte-id/ponte/storage"
	"github.com/ponte-id/ponte/storage/storagetest"
)

// BenchmarkAuthenticate: one API token checked (a read by ID and an HMAC),
// on SQLite and, when configured, PostgreSQL.
func BenchmarkAuthenticate(b *testing.B) {
	for _, be := range storagetest.Backends() {
		b.Run(be.Name, func(b *testing.B) {
			store := be.Open(b)
			_, st, _ := services(b, store, newBox(b), nil)
			_, token, err := st.CreateToken(b.Context(), staff.CLI, staff.TokenSpec{Name: "b", Roles: []string{"admin"}, TTL: time.Hour})
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := st.Authenticate(b.Context(), token); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkAuditExport: the whole trail (20,000 events) exported over HTTP
// on loopback, as CSV and as JSON; it reports events a second, and how far
// the live heap rose during one export (what streaming keeps flat: compare
// with the size of the export).
func BenchmarkAuditExport(b *testing.B) {
	const events = 20_000
	store := storagetest.SQLite(b)
	svc, st, _ := services(b, store, newBox(b), nil)
	_, token, err := st.CreateToken(b.Context(), staff.CLI, staff.TokenSpec{Name: "b", Roles: []string{"auditor"}, TTL: time.Hour})
	if err != nil {
		b.Fatal(err)
	}
	at := time.Now().Add(-time.Hour)
	for i := range events {
		e := storage.AuditEvent{At: at.Add(time.Duration(i) * time.Millisecond), FiscalNumber: "RSSMRA80A01H501U", Event: "issued",
			Channel: "sede", Operator: "op-7", Detail: fmt.Sprintf("event %d with some detail text", i)}
		if err := store.AppendAudit(b.Context(), e); err != nil {
			b.Fatal(err)
		}
	}
	srv := httptest.NewServer(admin.Handler(svc, api.OpenAPI, nil, ratelimit.Failures{}))
	b.Cleanup(srv.Close)
	export := func(b *testing.B, format string, sample func()) {
		req, _ := http.NewRequest("GET", srv.URL+admin.Prefix+"/audit/export?format="+format+"&action=issued", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		defer resp.Body.Close()
		buf := make([]byte, 32<<10)
		for n := 0; ; n++ {
			_, err := resp.Body.Read(buf)
			if sample != nil && n%16 == 0 {
				sample()
			}
			if err == io.EOF {
				return
			}
			if err != nil {
				b.Fatal(err)
			}
		}
	}
	for _, format := range []string{"csv", "json"} {
		b.Run(format, func(b *testing.B) {
			for b.Loop() {
				export(b, format, nil)
			}
			b.ReportMetric(float64(events)*float64(b.N)/b.Elapsed().Seconds(), "events/s")
			// One more export, untimed, collecting garbage as it reads: the
			// live heap's peak above what it was before.
			var ms runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&ms)
			base, peak := ms.HeapAlloc, ms.HeapAlloc
			export(b, format, func() {
				runtime.GC()
				runtime.ReadMemStats(&ms)
				peak = max(peak, ms.HeapAlloc)
			})
			b.ReportMetric(float64(peak-base)/1024, "live-heap-KiB")
		})
	}
}
