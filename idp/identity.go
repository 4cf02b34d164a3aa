package idp

import (
	"errors"
	"fmt"
	"regexp"
	"time"
)

// Identity is what a completed login proves about a citizen. Every method links
// to the same subject through FiscalNumber (codice fiscale).
type Identity struct {
	// FiscalNumber is the 16-character codice fiscale, upper case.
	FiscalNumber string
	GivenName    string
	FamilyName   string
	// Birthdate is YYYY-MM-DD, or empty.
	Birthdate string
	// Gender is "M", "F" or empty.
	Gender      string
	Email       string
	PhoneNumber string
	// Level is the level of assurance the login reached.
	Level Level
	// Method is the login method that proved it.
	Method Method
	// AMR lists RFC 8176 authentication method references (pwd, pin, sc, hwk, mfa ...).
	AMR []string
	// SessionData is the method's own data about this login (a SAML NameID
	// and SessionIndex, say), kept with the SSO session and handed back to
	// the method at logout (LogoutParticipant). At most MaxSessionData bytes.
	SessionData []byte
	// SessionKey, when set, is the method's own name for this login (a SAML
	// identity provider and NameID): Host.EndSessions ends the sessions it
	// names (identity-provider-initiated logout).
	SessionKey string
}

// MaxSessionData bounds Identity.SessionData.
const MaxSessionData = 4 << 10

// fiscalNumberShape is the shape of a codice fiscale, omocodia letters included:
// the same as internal/codicefiscale.HasShape, repeated because the seam
// imports the standard library only (STYLE.md rule 2). The full check (check
// character) belongs to the method that reads it.
var fiscalNumberShape = regexp.MustCompile(`^[A-Z]{6}[0-9LMNPQRSTUV]{2}[A-EHLMPRST][0-9LMNPQRSTUV]{2}[A-Z][0-9LMNPQRSTUV]{3}[A-Z]$`)

// Validate reports whether id is complete enough to log a citizen in.
func (id Identity) Validate() error {
	var errs []error
	if !fiscalNumberShape.MatchString(id.FiscalNumber) {
		errs = append(errs, errors.New("identity: fiscal number is not a codice fiscale"))
	}
	if id.Level != LevelConsultazione && id.Level != LevelDispositivo {
		errs = append(errs, fmt.Errorf("identity: level %d is not a level Ponte issues", id.Level))
	}
	if id.Method == "" {
		errs = append(errs, errors.New("identity: method is empty"))
	}
	if len(id.SessionKey) > MaxSessionData {
		errs = append(errs, fmt.Errorf("identity: session key is larger than %d bytes", MaxSessionData))
	}
	if len(id.SessionData) > MaxSessionData {
		errs = append(errs, fmt.Errorf("identity: session data is larger than %d bytes", MaxSessionData))
	}
	if id.Birthdate != "" {
		if _, err := time.Parse(time.DateOnly, id.Birthdate); err != nil {
			errs = append(errs, errors.New("identity: birthdate is not YYYY-MM-DD"))
		}
	}
	return errors.Join(errs...)
}

// ClaimsRank orders how far the claims of a login (names, birth date, gender,
// contacts) are trusted, for the rule that keeps a lower login from
// overwriting what a higher one recorded (storage.Subjects.LinkSubject). The
// level of assurance comes first; within a level, claims attested by a third
// party (a SPID identity provider's assertion, the certificate of a CNS) rank
// above the data of a PIN account, which the citizen or an operator typed.
// So an ordinary PIN changes nothing recorded by a dispositivo PIN, SPID or
// CNS, a dispositivo PIN nothing recorded by SPID or CNS, and SPID and CNS
// update each other (the latest login's claims are the current ones).
func (id Identity) ClaimsRank() int {
	rank := 2 * int(id.Level)
	if id.Method == MethodSPID || id.Method == MethodCNS {
		rank++
	}
	return rank
}
