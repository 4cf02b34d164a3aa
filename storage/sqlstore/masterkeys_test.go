package sqlstore_test

import (
	"testing"

	"github.com/ponte-id/ponte/storage"
	"github.com/ponte-id/ponte/storage/storagetest"
)

func TestMasterKeysConformance(t *testing.T) {
	for _, b := range storagetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			storagetest.RunMasterKeyTests(t, func(t *testing.T) storage.MasterKeys { return b.Open(t) })
		})
	}
}
