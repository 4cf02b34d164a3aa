//go:build !unix

package pin_test

import (
	"testing"
	"time"
)

// processCPU is not read on this system: BenchmarkPINLogin reports no
// cores or CPU per login (zero).
func processCPU(*testing.B) time.Duration { return 0 }
