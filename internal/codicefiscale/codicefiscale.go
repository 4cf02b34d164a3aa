// Package codicefiscale validates the Italian tax code (codice fiscale) of a
// natural person: its shape, the month and day fields, the substitutions of
// omocodia, and the check character (DM 23 dicembre 1976, as amended).
//
// It is the one check of the codice fiscale in Ponte, shared by every login
// method (adapters/pin, adapters/cns, adapters/spid) and the operators'
// tools; the seam (idp) keeps its own copy of the shape, held to HasShape by
// its tests, as it imports the standard library only. It uses the standard library only. Normalising
// is the caller's choice: Parse and Valid take the code as written.
package codicefiscale

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"
)

// Errors returned by Parse; test with errors.Is.
var (
	ErrLength    = errors.New("codice fiscale: must be 16 characters")
	ErrFormat    = errors.New("codice fiscale: malformed")
	ErrCheckChar = errors.New("codice fiscale: wrong check character")
)

// Code is a parsed codice fiscale.
type Code struct {
	// Value is the normalized 16-character code.
	Value string
	// Female is read from the day field (days above 40).
	Female bool
	// YY, Month and Day are the encoded birth date (two-digit year).
	YY, Month, Day int
	// Place is the cadastral code of the birthplace (Z... for a foreign country).
	Place string
}

// monthLetters maps the month letter to its month.
const monthLetters = "ABCDEHLMPRST"

// omocodia replaces digits in positions 7-8, 10-11 and 13-15 (1-based) when two
// people would otherwise share a code: 0..9 become L M N P Q R S T U V.
const omocodia = "LMNPQRSTUV"

// numericPositions are the 0-based positions that hold digits or their omocodia letters.
var numericPositions = [...]int{6, 7, 9, 10, 12, 13, 14}

// oddValues is the check-character value of the characters in odd (1-based) positions,
// indexed by digit or letter ordinal.
var oddValues = [26]int{1, 0, 5, 7, 9, 13, 15, 17, 19, 21, 2, 4, 18, 20, 11, 3, 6, 8, 12, 14, 16, 10, 22, 25, 24, 23}

// shape is the shape of a codice fiscale as written, omocodia letters
// included: six letters, the year, a month letter, the day, a letter and
// three digits of the birthplace, the check letter.
var shape = regexp.MustCompile(`^[A-Z]{6}[0-9LMNPQRSTUV]{2}[A-EHLMPRST][0-9LMNPQRSTUV]{2}[A-Z][0-9LMNPQRSTUV]{3}[A-Z]$`)

// HasShape reports whether s (as written, not normalized) has the shape of a
// codice fiscale, omocodia letters included. It does not check the day or the
// check character: Valid does. Every code Valid accepts has the shape.
func HasShape(s string) bool {
	return shape.MatchString(s)
}

// Normalize upper-cases s and removes spaces, as people type it.
func Normalize(s string) string {
	return strings.ToUpper(strings.Join(strings.Fields(s), ""))
}

// Valid reports whether s, as written, is a valid codice fiscale (lower case
// and spaces are refused: Normalize first to accept what people type).
func Valid(s string) bool {
	_, err := Parse(s)
	return err == nil
}

// Parse validates a codice fiscale as written (see Valid) and decodes it.
func Parse(s string) (Code, error) {
	if len(s) != 16 {
		return Code{}, ErrLength
	}
	for i := 0; i < 16; i++ {
		if c := s[i]; !(c >= 'A' && c <= 'Z') && !(c >= '0' && c <= '9') {
			return Code{}, fmt.Errorf("%w: character %d is not a letter or digit", ErrFormat, i+1)
		}
	}
	for _, i := range [...]int{0, 1, 2, 3, 4, 5, 8, 11, 15} {
		if !isLetter(s[i]) {
			return Code{}, fmt.Errorf("%w: character %d must be a letter", ErrFormat, i+1)
		}
	}
	digits := []byte(s)
	for _, i := range numericPositions {
		c := s[i]
		switch {
		case c >= '0' && c <= '9':
		case strings.IndexByte(omocodia, c) >= 0:
			digits[i] = byte('0' + strings.IndexByte(omocodia, c))
		default:
			return Code{}, fmt.Errorf("%w: character %d must be a digit", ErrFormat, i+1)
		}
	}
	month := strings.IndexByte(monthLetters, s[8]) + 1
	if month == 0 {
		return Code{}, fmt.Errorf("%w: %q is not a month letter", ErrFormat, s[8])
	}
	yy := int(digits[6]-'0')*10 + int(digits[7]-'0')
	day := int(digits[9]-'0')*10 + int(digits[10]-'0')
	female := day > 40
	if female {
		day -= 40
	}
	// Any year: 29 February is checked against a leap year (2000).
	if day < 1 || day > daysIn(month) {
		return Code{}, fmt.Errorf("%w: day %d is not in month %d", ErrFormat, day, month)
	}
	if want := checkChar(s[:15]); s[15] != want {
		return Code{}, ErrCheckChar
	}
	return Code{Value: s, Female: female, YY: yy, Month: month, Day: day, Place: string(digits[11:15])}, nil
}

// CheckChar computes the check character of the first 15 characters of a code.
func CheckChar(first15 string) (byte, error) {
	if len(first15) != 15 {
		return 0, ErrLength
	}
	for i := 0; i < 15; i++ {
		if c := first15[i]; !isLetter(c) && !(c >= '0' && c <= '9') {
			return 0, ErrFormat
		}
	}
	return checkChar(first15), nil
}

func checkChar(first15 string) byte {
	sum := 0
	for i := 0; i < 15; i++ {
		v := ordinal(first15[i])
		if i%2 == 0 { // odd position, 1-based
			sum += oddValues[v]
		} else {
			sum += v
		}
	}
	return byte('A' + sum%26)
}

// ordinal is 0-9 for digits and 0-25 for letters, as the check tables index them.
func ordinal(c byte) int {
	if c >= '0' && c <= '9' {
		return int(c - '0')
	}
	return int(c - 'A')
}

func isLetter(c byte) bool { return c >= 'A' && c <= 'Z' }

func daysIn(month int) int {
	return time.Date(2000, time.Month(month)+1, 0, 0, 0, 0, 0, time.UTC).Day()
}

// Birthdate returns the birth date, choosing the century so that the date is
// not after now (a code does not say the century).
func (c Code) Birthdate(now time.Time) time.Time {
	year := 2000 + c.YY
	if year > now.Year() {
		year -= 100
	}
	return time.Date(year, time.Month(c.Month), c.Day, 0, 0, 0, 0, time.UTC)
}
