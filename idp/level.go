package idp

import "strings"

// Level is an ordered level of assurance: a higher level satisfies every lower one.
type Level int

// The levels of assurance Ponte issues, lowest first.
const (
	// LevelNone is the zero value: not authenticated.
	LevelNone Level = iota
	// LevelConsultazione is reached by an ordinary INPS PIN.
	LevelConsultazione
	// LevelDispositivo is reached by a dispositivo PIN, SPID level 2 or higher, or CNS.
	LevelDispositivo
)

// The acr values (ID token claim and acr_values parameter) of each level.
const (
	ACRConsultazione = "urn:inps:loa:consultazione"
	ACRDispositivo   = "urn:inps:loa:dispositivo"
)

// ACR returns the acr value of l, or "" for LevelNone and unknown levels.
func (l Level) ACR() string {
	switch l {
	case LevelConsultazione:
		return ACRConsultazione
	case LevelDispositivo:
		return ACRDispositivo
	}
	return ""
}

// String returns a short name for logs.
func (l Level) String() string {
	switch l {
	case LevelConsultazione:
		return "consultazione"
	case LevelDispositivo:
		return "dispositivo"
	}
	return "none"
}

// ParseACR returns the level of an acr value; ok is false for values Ponte does not issue.
func ParseACR(acr string) (l Level, ok bool) {
	switch strings.TrimSpace(acr) {
	case ACRConsultazione:
		return LevelConsultazione, true
	case ACRDispositivo:
		return LevelDispositivo, true
	}
	return LevelNone, false
}

// Method names a login method; it is also the auth_method claim.
type Method string

// The login methods.
const (
	MethodPIN  Method = "pin"
	MethodSPID Method = "spid"
	MethodCNS  Method = "cns"
)
