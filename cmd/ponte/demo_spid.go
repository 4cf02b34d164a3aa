package main

import (
	"fmt"
	"io"
	"os"

	"github.com/ponte-id/ponte/adapters/spid"
	"github.com/ponte-id/ponte/adapters/spid/testidp"
	"github.com/ponte-id/ponte/idp"
)

// spidDemoEnv turns on SPID's test identity provider for `ponte demo`
// (dev mode only), unless the environment says otherwise.
func spidDemoEnv() {
	if os.Getenv("PONTE_SPID_TEST_IDP") == "" {
		os.Setenv("PONTE_SPID_TEST_IDP", "true")
	}
}

// showSPID gives the test identity provider the demo citizens, so that a
// SPID login reaches the same subject as their PIN, and says where it is.
func showSPID(stdout io.Writer, methods []idp.Authenticator, issuer string) {
	for _, m := range methods {
		t := spid.TestIDP(m)
		if t == nil {
			continue
		}
		users := make([]testidp.User, 0, len(demoCitizens))
		for _, c := range demoCitizens {
			users = append(users, testidp.User{FiscalNumber: c.FiscalNumber, GivenName: c.GivenName, FamilyName: c.FamilyName,
				Birthdate: c.Birthdate, Gender: c.Gender, Email: c.Email, Mobile: c.Mobile})
		}
		t.SetUsers(users)
		fmt.Fprintf(stdout, "\n  SPID: choose \"SPID\" and the \"Gestore SPID di prova\" (a local test identity provider, SpidL2):\n"+
			"        any citizen above logs in at the dispositivo level, with the same sub as with the PIN.\n"+
			"        SP metadata: %s/login/spid/metadata\n", issuer)
	}
}
