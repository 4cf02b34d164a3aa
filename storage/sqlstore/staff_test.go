package sqlstore_test

import (
	"testing"

	"github.com/ponte-id/ponte/storage/storagetest"
)

func TestStaffConformance(t *testing.T) {
	for _, b := range storagetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			storagetest.RunStaffTests(t, func(t *testing.T) storagetest.StaffStore { return b.Open(t) })
		})
	}
}
