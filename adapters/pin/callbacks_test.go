package pin_test

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"

	"github.com/ponte-id/ponte/adapters/pin"
	"github.com/ponte-id/ponte/storage/storagetest"
)

// TestCallbackQueueNamesTheNumberToCall: a request that differs from the
// record is listed with a phone on record to call (the request's number is
// only the applicant's word), and with the request beside the record.
func TestCallbackQueueNamesTheNumberToCall(t *testing.T) {
	f := newFixture(t, storagetest.SQLite(t), before2021)
	srv := operatorAPI(t, f)
	ctx := context.Background()
	old := marioAccount()
	old.PreferredPhone = "+390612345678"
	if err := f.store.CreatePINAccount(ctx, old); err != nil {
		t.Fatal(err)
	}
	req := mario()
	req.PreferredPhone, req.Email = "+5491199999999", "someone@example.it"
	if _, err := f.svc.RequestPIN(ctx, req, pin.ChannelOnline, "", ""); err != nil {
		t.Fatal(err)
	}
	code, body := call(t, "GET", srv.URL+"/callbacks", "token-7", nil)
	var items []struct {
		Call      string `json:"call"`
		Requested struct {
			PreferredPhone string `json:"preferred_phone"`
		} `json:"requested"`
		OnRecord *struct {
			Email string `json:"email"`
		} `json:"on_record"`
		Differs []string `json:"differs"`
	}
	if err := json.Unmarshal(body, &items); err != nil || code != http.StatusOK || len(items) != 1 {
		t.Fatalf("callbacks: %d %s", code, body)
	}
	it := items[0]
	if it.Call != "+390612345678" || it.Requested.PreferredPhone != "+5491199999999" || it.OnRecord == nil ||
		it.OnRecord.Email != old.Email || len(it.Differs) != 1 || it.Differs[0] != "contacts" {
		t.Fatalf("the queue entry: %s", body)
	}
}
