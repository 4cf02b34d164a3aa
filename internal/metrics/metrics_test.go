package metrics_test

import (
	"context"
	"database/sql"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	_ "github.com/glebarez/go-sqlite" // a real pool for DBStats

	"github.com/ponte-id/ponte/idp"
	"github.com/ponte-id/ponte/internal/admission"
	"github.com/ponte-id/ponte/internal/metrics"
)

// method is a login method that reports fixed samples.
type method struct {
	name    idp.Method
	samples []idp.Sample
}

func (m method) Method() idp.Method          { return m.name }
func (method) Label(string) string           { return "test" }
func (method) MaxLevel() idp.Level           { return idp.LevelConsultazione }
func (method) Handler(idp.Host) http.Handler { return http.NotFoundHandler() }
func (m method) CollectMetrics(_ context.Context, emit func(idp.Sample)) {
	for _, s := range m.samples {
		emit(s)
	}
}

// plain reports nothing of its own.
type plain struct{ method }

func (p plain) CollectMetrics() {}

func scrape(t *testing.T, r *metrics.Registry) (int, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	r.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	return rec.Code, rec.Body.String()
}

// TestMethods: a method's samples come out with its method label, beside
// the core's count of its successful logins in the same family; a sample
// that is not a ponte_ metric is refused without hiding the others.
func TestMethods(t *testing.T) {
	r := metrics.New()
	pin := method{name: idp.MethodPIN, samples: []idp.Sample{
		{Name: idp.MetricLogins, Kind: idp.Counter, Labels: []idp.Label{{Name: "result", Value: "bad_credentials"}}, Value: 3},
		{Name: "ponte_pin_outbox_backlog", Help: "Backlog.", Kind: idp.Gauge, Value: 7},
		{Name: "ponte_test_wait_seconds", Help: "Wait.", Kind: idp.Histogram, Buckets: []idp.Bucket{{UpperBound: 0.1, Count: 1}, {UpperBound: 1, Count: 2}}, Count: 3, Sum: 4.5},
		{Name: "go_rogue", Help: "Not ours.", Kind: idp.Gauge, Value: 1},
	}}
	r.AddMethods([]idp.Authenticator{pin, plain{method{name: idp.MethodSPID}}})
	r.LoginCompleted(idp.MethodPIN)
	r.LoginCompleted(idp.MethodPIN)
	r.LoginCompleted("unknown") // not a method: not counted
	r.TokensIssued("authorization_code")
	r.TokensIssued("urn:ietf:params:oauth:grant-type:jwt-bearer")
	code, out := scrape(t, r)
	if code != http.StatusOK {
		t.Fatalf("scrape: %d\n%s", code, out)
	}
	for _, want := range []string{
		`ponte_logins_total{method="pin",result="success"} 2`,
		`ponte_logins_total{method="pin",result="bad_credentials"} 3`,
		`ponte_logins_total{method="spid",result="success"} 0`,
		`ponte_pin_outbox_backlog{method="pin"} 7`,
		`ponte_test_wait_seconds_bucket{method="pin",le="0.1"} 1`,
		`ponte_test_wait_seconds_bucket{method="pin",le="+Inf"} 3`,
		`ponte_test_wait_seconds_sum{method="pin"} 4.5`,
		`ponte_tokens_issued_total{grant_type="authorization_code"} 1`,
		`ponte_tokens_issued_total{grant_type="other"} 1`,
		`ponte_tokens_issued_total{grant_type="refresh_token"} 0`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	if strings.Contains(out, "go_rogue") || strings.Contains(out, "unknown") || strings.Contains(out, "jwt-bearer") {
		t.Errorf("an unbounded or foreign name reached the metrics:\n%s", out)
	}
}

// TestDBAndGates: a pool's DBStats and a core gate are exposed.
func TestDBAndGates(t *testing.T) {
	r := metrics.New()
	db, err := sql.Open("sqlite", ":memory:")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Ping(); err != nil {
		t.Fatal(err)
	}
	if err := r.AddDB("main", db); err != nil {
		t.Fatal(err)
	}
	g, err := admission.New(admission.Options{Concurrency: 2, Queue: 4, MaxWait: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.AddGate("token", g); err != nil {
		t.Fatal(err)
	}
	release, _ := g.Acquire(context.Background())
	defer release()
	_, out := scrape(t, r)
	for _, want := range []string{
		`go_sql_open_connections{db_name="main"} 1`,
		`go_sql_max_open_connections{db_name="main"}`,
		`ponte_admission_in_flight{gate="token"} 1`,
		`ponte_admission_capacity{gate="token"} 2`,
		`ponte_admission_queue_capacity{gate="token"} 4`,
		`ponte_admission_wait_seconds_count{gate="token"} 1`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}
