package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/ponte-id/ponte/storage"
	"github.com/ponte-id/ponte/storage/sqlstore"
)

// TestBackchannelCommands: a client registered with a back-channel logout
// URI from the command line keeps it; the operator sees parked logouts and
// requeues one.
func TestBackchannelCommands(t *testing.T) {
	db := setup(t)
	out := mustPonte(t, "client", "create", "--id", "rp-bcl", "--redirect-uri", "https://app.inps.it/cb",
		"--backchannel-logout-uri", "https://app.inps.it/logout/backchannel", "--backchannel-logout-session-required")
	var created map[string]any
	if err := json.Unmarshal([]byte(out), &created); err != nil || created["backchannel_logout_uri"] != "https://app.inps.it/logout/backchannel" ||
		created["backchannel_logout_session_required"] != true {
		t.Fatalf("create: %q %v", out, err)
	}
	for _, bad := range [][]string{
		{"--backchannel-logout-uri", "http://app.inps.it/bcl"},
		{"--backchannel-logout-session-required"},
	} {
		if _, _, err := ponte(t, append([]string{"client", "create", "--redirect-uri", "https://app.inps.it/cb"}, bad...)...); err == nil {
			t.Errorf("create %v accepted", bad)
		}
	}

	ctx := context.Background()
	s, err := sqlstore.Open(ctx, db, sqlstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	c, err := s.GetClient(ctx, "rp-bcl")
	if err != nil || c.BackchannelLogoutURI != "https://app.inps.it/logout/backchannel" || !c.BackchannelLogoutSessionRequired {
		t.Fatalf("stored: %+v %v", c, err)
	}
	now := time.Now()
	for _, id := range []string{"jti-parked", "jti-pending"} {
		if err := s.EnqueueLogout(ctx, storage.LogoutMessage{ID: id, ClientID: "rp-bcl", SID: "sid", CreatedAt: now}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.FailLogout(ctx, "jti-parked", now, "HTTP 400: bad token", true); err != nil {
		t.Fatal(err)
	}
	s.Close()

	parked := mustPonte(t, "logouts", "parked")
	if !strings.Contains(parked, "jti-parked") || !strings.Contains(parked, "HTTP 400: bad token") || strings.Contains(parked, "jti-pending") {
		t.Fatalf("parked: %q", parked)
	}
	if pending := mustPonte(t, "logouts", "pending"); !strings.Contains(pending, "jti-pending") || strings.Contains(pending, "jti-parked") {
		t.Fatalf("pending: %q", pending)
	}
	mustPonte(t, "logouts", "requeue", "--id", "jti-parked")
	if parked := mustPonte(t, "logouts", "parked"); strings.Contains(parked, "jti-parked") {
		t.Fatalf("still parked after requeue: %q", parked)
	}
	if _, _, err := ponte(t, "logouts", "requeue", "--id", "nope"); err == nil {
		t.Error("requeue of an unknown ID succeeded")
	}
	if _, _, err := ponte(t, "logouts"); err == nil {
		t.Error("no subcommand accepted")
	}
}
