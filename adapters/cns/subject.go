package cns

import (
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"strings"

	"github.com/ponte-id/ponte/internal/codicefiscale"
)

// holder is who a CNS certificate names.
type holder struct {
	// FiscalNumber is the codice fiscale, as written in the certificate.
	FiscalNumber string
	// CardID is the card's identifier from the CN ("" when the codice
	// fiscale came from serialNumber).
	CardID     string
	GivenName  string
	FamilyName string
}

// Errors of the subject parser; each is a refusal reason of its own.
var (
	// errCNForm: the CN is not <codice fiscale>/<card id>.<hash> (and no
	// fallback applies).
	errCNForm = errors.New("the subject CN is not <codice fiscale>/<card id>.<hash>")
	// errFiscalNumber: a codice fiscale that fails its check (shape, date, check character).
	errFiscalNumber = errors.New("the codice fiscale in the subject is not valid")
	// errMismatch: the CN and serialNumber name different codici fiscali.
	errMismatch = errors.New("the subject's CN and serialNumber name different codici fiscali")
)

// Object identifiers of the subject attributes a CNS certificate carries
// besides those pkix.Name reads.
var (
	oidSurname   = asn1.ObjectIdentifier{2, 5, 4, 4}
	oidGivenName = asn1.ObjectIdentifier{2, 5, 4, 42}
)

// maxSubjectField bounds each value the parser looks at.
const maxSubjectField = 256

// parseSubject reads the holder of a CNS certificate from its subject. The
// codice fiscale comes from the CN, <codice fiscale>/<card id>.<hash>;
// serialNumber, when it carries one (TINIT-<cf>, ETSI EN 319 412-1, or the
// older IT:<cf>), must agree with it, and stands in for it only when the CN
// does not have the CNS form and fallback is on. Nothing is normalised
// (codicefiscale.Valid, never Normalize): a lower-case or omocodic code is
// taken as written, a lower-case one fails the check, and an omocodic one
// is a distinct identity, valid when its check character is.
func parseSubject(name pkix.Name, fallback bool) (holder, error) {
	var h holder
	cn := name.CommonName
	cnCF, cardID, cnErr := parseCN(cn)
	serialCF, hasSerial := parseSerialNumber(name.SerialNumber)
	switch {
	case cnErr == nil:
		h.FiscalNumber, h.CardID = cnCF, cardID
	case errors.Is(cnErr, errFiscalNumber):
		return holder{}, cnErr // a CNS-shaped CN with a bad code: never fall back
	case fallback && hasSerial:
		h.FiscalNumber = serialCF
	default:
		return holder{}, cnErr
	}
	if hasSerial && serialCF != h.FiscalNumber {
		return holder{}, errMismatch
	}
	if !codicefiscale.Valid(h.FiscalNumber) {
		return holder{}, errFiscalNumber
	}
	for _, atv := range name.Names {
		v, ok := atv.Value.(string)
		if !ok || len(v) > maxSubjectField {
			continue
		}
		switch {
		case atv.Type.Equal(oidSurname) && h.FamilyName == "":
			h.FamilyName = strings.TrimSpace(v)
		case atv.Type.Equal(oidGivenName) && h.GivenName == "":
			h.GivenName = strings.TrimSpace(v)
		}
	}
	return h, nil
}

// parseCN splits a CNS common name, <codice fiscale>/<card id>.<hash>: the
// card id is letters and digits, the hash base64 (standard alphabet, padding
// allowed). The codice fiscale must pass its check.
func parseCN(cn string) (fiscalNumber, cardID string, err error) {
	if len(cn) > maxSubjectField {
		return "", "", errCNForm
	}
	cf, rest, ok := strings.Cut(cn, "/")
	if !ok {
		return "", "", errCNForm
	}
	id, hash, ok := strings.Cut(rest, ".")
	if !ok || id == "" || hash == "" || !allOf(id, isAlnum) || !allOf(strings.TrimRight(hash, "="), isBase64) ||
		strings.TrimRight(hash, "=") == "" || len(hash)-len(strings.TrimRight(hash, "=")) > 2 {
		return "", "", errCNForm
	}
	if len(cf) != 16 || !allOf(cf, isAlnum) {
		return "", "", errCNForm
	}
	if !codicefiscale.Valid(cf) {
		return "", "", errFiscalNumber
	}
	return cf, id, nil
}

// parseSerialNumber reads the codice fiscale of a subject serialNumber,
// TINIT-<cf> or IT:<cf>; ok is false for any other value (a card serial, say).
// What follows the prefix is returned as written, checked by the caller: a
// value that claims to be a codice fiscale and is not one is refused, not
// ignored.
func parseSerialNumber(s string) (string, bool) {
	for _, prefix := range []string{"TINIT-", "IT:"} {
		if cf, ok := strings.CutPrefix(s, prefix); ok {
			return cf, true
		}
	}
	return "", false
}

func allOf(s string, f func(byte) bool) bool {
	for i := 0; i < len(s); i++ {
		if !f(s[i]) {
			return false
		}
	}
	return true
}

func isAlnum(c byte) bool {
	return '0' <= c && c <= '9' || 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z'
}

func isBase64(c byte) bool { return isAlnum(c) || c == '+' || c == '/' }
