package pin_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/ponte-id/ponte/adapters/pin"
	"github.com/ponte-id/ponte/adapters/pin/delivery"
	"github.com/ponte-id/ponte/idp"
	"github.com/ponte-id/ponte/idp/operators"
	"github.com/ponte-id/ponte/internal/ratelimit"
	"github.com/ponte-id/ponte/storage"
	"github.com/ponte-id/ponte/storage/storagetest"
)

// colleague is another operator, who may run every procedure on cf's PIN.
const colleague = "BNCLGU70B02F205F"

// selfCases are the procedures of the operator API that act on a citizen's
// PIN; setup prepares what the procedure acts on (a PIN, a waiting request,
// a pending conversion, a parked message) and returns its path and body.
var selfCases = []struct {
	name  string
	at    time.Time
	setup func(t *testing.T, f *fixture) (path string, body any)
}{
	{"request contact_center", before2021, func(*testing.T, *fixture) (string, any) {
		return "/requests", map[string]any{"channel": "contact_center", "request": mario()}
	}},
	{"request sede (MV35)", after2021, func(*testing.T, *fixture) (string, any) {
		return "/requests", map[string]any{"channel": "sede", "document": "CI AB1234567", "request": mario()}
	}},
	{"revoke sede", after2021, func(t *testing.T, f *fixture) (string, any) {
		seedMario(t, f)
		return "/revocations", map[string]any{"fiscal_number": cf, "channel": "sede"}
	}},
	{"revoke contact_center", after2021, func(t *testing.T, f *fixture) (string, any) {
		seedMario(t, f)
		return "/revocations", map[string]any{"fiscal_number": strings.ToLower(cf), "channel": "contact_center"}
	}},
	{"unlock sede", after2021, func(t *testing.T, f *fixture) (string, any) {
		seedMario(t, f)
		return "/unlocks", map[string]any{"fiscal_number": cf, "channel": "sede"}
	}},
	{"unlock contact_center", after2021, func(t *testing.T, f *fixture) (string, any) {
		seedMario(t, f)
		return "/unlocks", map[string]any{"fiscal_number": cf, "channel": "contact_center"}
	}},
	{"callback confirmed", before2021, func(t *testing.T, f *fixture) (string, any) {
		return "/callbacks", map[string]any{"request_id": waitingRequest(t, f), "confirmed": true}
	}},
	{"callback refused", before2021, func(t *testing.T, f *fixture) (string, any) {
		return "/callbacks", map[string]any{"request_id": waitingRequest(t, f), "confirmed": false}
	}},
	{"conversion approved", after2021, func(t *testing.T, f *fixture) (string, any) {
		return "/conversions/" + pendingConversion(t, f) + "/review", map[string]any{"approve": true}
	}},
	{"conversion rejected", after2021, func(t *testing.T, f *fixture) (string, any) {
		return "/conversions/" + pendingConversion(t, f) + "/review", map[string]any{"approve": false, "reason": "documento illeggibile"}
	}},
	{"requeue", before2021, func(t *testing.T, f *fixture) (string, any) {
		return "/outbox/" + parkedMessage(t, f) + "/requeue", nil
	}},
}

// TestOperatorSelf: an operator who is also a citizen with a PIN runs each
// procedure of the operator API on their own PIN: it is refused with 403 and
// a JSON error, the refusal is audited under them, and nothing is done, so
// that a colleague's same call then succeeds. Before the fix the JSON API
// ran every one of them (only the console's screens refused some).
func TestOperatorSelf(t *testing.T) {
	tokens := map[string]string{"self": cf, "colleague": colleague}
	check := func(_ context.Context, token string) (string, []string, bool, error) {
		id, ok := tokens[token]
		return id, []string{idp.RoleOperatorSede, idp.RoleOperatorContactCenter}, ok, nil
	}
	for _, be := range storagetest.Backends() {
		for _, tc := range selfCases {
			t.Run(be.Name+"/"+tc.name, func(t *testing.T) {
				f := newFixture(t, be.Open(t), tc.at)
				srv := httptest.NewServer(operators.Require(nil, check, nil, ratelimit.Failures{})(f.svc.OperatorHandler()))
				t.Cleanup(srv.Close)
				path, body := tc.setup(t, f)

				code, out := call(t, "POST", srv.URL+path, "self", body)
				if code != http.StatusForbidden || !strings.Contains(string(out), `"error":"you cannot run a procedure on your own PIN`) {
					t.Fatalf("on their own PIN: %d %s, want 403 and the JSON error", code, out)
				}
				events, err := f.store.ListAudit(t.Context(), cf)
				if err != nil || len(events) == 0 {
					t.Fatalf("audit: %v %v", events, err)
				}
				if last := events[len(events)-1]; last.Event != "operator_self_refused" || last.Operator != cf {
					t.Fatalf("the refusal is not audited under the operator: %+v", last)
				}
				if code, out := call(t, "POST", srv.URL+path, "colleague", body); code/100 != 2 {
					t.Fatalf("a colleague's same call after the refusal: %d %s", code, out)
				}
			})
		}
	}
}

// seedMario gives mario an active ordinary PIN.
func seedMario(t *testing.T, f *fixture) {
	t.Helper()
	if err := f.svc.Seed(t.Context(), marioAccount(), "Abcd1234"); err != nil {
		t.Fatal(err)
	}
}

// waitingRequest makes an online request for mario that differs from his
// record, and returns its ID: it waits for a callback.
func waitingRequest(t *testing.T, f *fixture) string {
	t.Helper()
	ctx := t.Context()
	old := marioAccount()
	old.Residence = storage.Address{Street: "Via Vecchia", Number: "9", PostalCode: "00100", City: "Roma", Province: "RM"}
	old.Status = storage.PINRevoked
	if err := f.store.CreatePINAccount(ctx, old); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.RequestPIN(ctx, mario(), pin.ChannelOnline, "", ""); err != nil {
		t.Fatal(err)
	}
	waiting, err := f.svc.WaitingRequests(ctx, 0)
	if err != nil || len(waiting) != 1 {
		t.Fatalf("waiting requests: %+v %v", waiting, err)
	}
	return waiting[0].ID
}

// pendingConversion submits mario's conversion to dispositivo and returns its ID.
func pendingConversion(t *testing.T, f *fixture) string {
	t.Helper()
	seedMario(t, f)
	c, err := f.svc.SubmitConversion(t.Context(), cf, pdf, png)
	if err != nil {
		t.Fatal(err)
	}
	return c.ID
}

// parkedMessage makes mario's online request, has every channel refuse its
// messages for good, and returns the ID of one parked message.
func parkedMessage(t *testing.T, f *fixture) string {
	t.Helper()
	ctx := t.Context()
	if _, err := f.svc.RequestPIN(ctx, mario(), pin.ChannelOnline, "", ""); err != nil {
		t.Fatal(err)
	}
	refuse := senderFunc(func(context.Context, delivery.Outgoing) error {
		return fmt.Errorf("%w: no such recipient", delivery.ErrPermanent)
	})
	d, err := delivery.New(delivery.Config{Outbox: f.store, Box: f.box, Now: f.clock.Now,
		Senders: map[string]delivery.Sender{"post": refuse, "sms": refuse, "email": refuse}, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := d.RunOnce(ctx); err != nil {
		t.Fatal(err)
	}
	parked, err := f.svc.ParkedMessages(ctx)
	if err != nil || len(parked) == 0 || parked[0].FiscalNumber != cf {
		t.Fatalf("parked: %+v %v", parked, err)
	}
	return parked[0].ID
}
