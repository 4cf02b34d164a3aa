package spid

import (
	"github.com/ponte-id/ponte/idp"
	"github.com/ponte-id/ponte/internal/admission"
)

// ACSGate is the assertion consumer service's admission gate of a method
// opened by Open, for the tests that fill it.
func ACSGate(a idp.Authenticator) *admission.Gate { return a.(*authenticator).acs }
