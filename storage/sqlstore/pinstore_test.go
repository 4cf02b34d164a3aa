package sqlstore_test

import (
	"context"
	"testing"

	"github.com/ponte-id/ponte/storage"
	"github.com/ponte-id/ponte/storage/storagetest"
)

func TestPINConformance(t *testing.T) {
	for _, b := range storagetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			storagetest.RunPINTests(t, func(t *testing.T) storage.PINStore { return b.Open(t) })
		})
	}
}

// TestAuditIsAppendOnly: the database itself refuses to change the trail.
func TestAuditIsAppendOnly(t *testing.T) {
	for _, b := range storagetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			s := b.Open(t)
			ctx := context.Background()
			if err := s.AppendAudit(ctx, storage.AuditEvent{FiscalNumber: "CF", Event: "issued"}); err != nil {
				t.Fatal(err)
			}
			if err := s.ExecRaw(ctx, "DELETE FROM sessions"); err != nil {
				t.Fatalf("a write elsewhere failed, so the refusals below would prove nothing: %v", err)
			}
			stmts := []string{"UPDATE audit_events SET event = 'forged'", "DELETE FROM audit_events"}
			if b.Name == "postgres" {
				stmts = append(stmts, "TRUNCATE audit_events")
			}
			for _, sql := range stmts {
				if err := s.ExecRaw(ctx, sql); err == nil {
					t.Errorf("%q succeeded on the audit trail", sql)
				}
			}
			if events, _ := s.ListAudit(ctx, "CF"); len(events) != 1 || events[0].Event != "issued" {
				t.Fatalf("audit changed: %+v", events)
			}
		})
	}
}
