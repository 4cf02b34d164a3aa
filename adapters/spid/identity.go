package spid

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/ponte-id/ponte/idp"
	"github.com/ponte-id/ponte/internal/codicefiscale"
)

// sessionData is what Ponte keeps of a SPID login for single logout
// (Identity.SessionData): the identity provider's session, never the citizen.
type sessionData struct {
	IDP           string `json:"idp"`
	NameID        string `json:"nid"`
	NameQualifier string `json:"nq"`
	SessionIndex  string `json:"si,omitempty"`
}

// identityOf maps a valid assertion to the citizen: fiscalNumber
// "TINIT-<codice fiscale>" links them (SPID attribute rules); the transient
// NameID is never an identity. The codice fiscale gets the full check
// (codicefiscale.Valid, as written: day, omocodia, check character), not the
// shape alone: an assertion that names a citizen by a malformed code is
// refused. Every code the test identity provider, the demo, the load test
// and spid-sp-test's responses send passes it. Names, birth date, gender,
// email and mobile fill the claims. SPID level 2 and above reach dispositivo.
func identityOf(as *assertion, p *identityProvider) (idp.Identity, error) {
	fn, ok := as.Attributes["fiscalNumber"]
	if !ok {
		return idp.Identity{}, refuse("fiscalNumber", "the identity provider did not send the codice fiscale")
	}
	cf, ok := strings.CutPrefix(fn, "TINIT-")
	if !ok || !codicefiscale.Valid(cf) {
		return idp.Identity{}, refuse("fiscalNumber", "%q is not TINIT-<codice fiscale>", maskCF(fn))
	}
	id := idp.Identity{
		FiscalNumber: cf, GivenName: as.Attributes["name"], FamilyName: as.Attributes["familyName"],
		Email: as.Attributes["email"], PhoneNumber: as.Attributes["mobilePhone"],
		Level: idp.LevelDispositivo, Method: idp.MethodSPID, AMR: []string{"pwd", "mfa"},
	}
	if d := as.Attributes["dateOfBirth"]; d != "" {
		if _, err := time.Parse(time.DateOnly, d); err == nil {
			id.Birthdate = d
		}
	}
	if g := as.Attributes["gender"]; g == "M" || g == "F" {
		id.Gender = g
	}
	data, err := json.Marshal(sessionData{IDP: p.EntityID, NameID: as.NameID, NameQualifier: as.NameQualifier, SessionIndex: as.SessionIndex})
	if err != nil {
		return idp.Identity{}, err
	}
	if len(data) > idp.MaxSessionData {
		return idp.Identity{}, errors.New("spid: the identity provider's session identifiers are too long")
	}
	id.SessionData = data
	id.SessionKey = sessionKey(p.EntityID, as.NameQualifier, as.NameID)
	if err := id.Validate(); err != nil {
		return idp.Identity{}, fmt.Errorf("spid: %w", err)
	}
	return id, nil
}

// sessionKey names a SPID session for the core (Host.EndSessions): the
// identity provider, and the NameID it gave, with its qualifier. A
// LogoutRequest from that identity provider names the same.
func sessionKey(idp, nameQualifier, nameID string) string {
	return idp + "\x00" + nameQualifier + "\x00" + nameID
}

// maskCF keeps a codice fiscale out of a log line.
func maskCF(s string) string {
	if len(s) <= 4 {
		return "****"
	}
	return s[:4] + strings.Repeat("*", len(s)-4)
}
