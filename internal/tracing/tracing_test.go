package tracing

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

// TestExport: spans reach an OTLP/HTTP collector (a real listener on
// 127.0.0.1) when the provider is shut down, and a ratio of 0 records none.
func TestExport(t *testing.T) {
	for _, tc := range []struct {
		name  string
		ratio float64
		want  bool
	}{{"every trace", 1, true}, {"none", 0, false}} {
		t.Run(tc.name, func(t *testing.T) {
			var (
				mu    sync.Mutex
				posts []string
			)
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				body, _ := io.ReadAll(r.Body)
				mu.Lock()
				posts = append(posts, r.Method+" "+r.URL.Path+" "+r.Header.Get("Content-Type")+" "+string(body))
				mu.Unlock()
			}))
			defer srv.Close()
			tp, err := New(context.Background(), Options{Endpoint: srv.URL + "/v1/traces", SampleRatio: tc.ratio})
			if err != nil {
				t.Fatal(err)
			}
			_, span := tp.Tracer("test").Start(context.Background(), "GET /authorize")
			span.End()
			if err := tp.Shutdown(context.Background()); err != nil {
				t.Fatal(err)
			}
			mu.Lock()
			defer mu.Unlock()
			got := len(posts) == 1
			if got != tc.want {
				t.Fatalf("posts %q, want one: %v", posts, tc.want)
			}
			if got {
				p := posts[0]
				for _, want := range []string{"POST /v1/traces application/x-protobuf", "GET /authorize", "ponte"} {
					if !strings.Contains(p, want) {
						t.Errorf("the export lacks %q: %q", want, p)
					}
				}
			}
		})
	}
}
