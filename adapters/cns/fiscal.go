package cns

import "strings"

// The codice fiscale check of a card's subject (DM 23 dicembre 1976). It
// repeats the check of adapters/pin/codicefiscale on purpose: adapters do not
// import each other (STYLE.md rule 1), and moving that package to a shared
// place would touch the PIN adapter. Unlike the PIN form, a certificate is
// never normalised: the code must already be upper case, and an omocodic code
// (letters in place of digits) is a distinct identity, kept as written.

// cfMonths are the month letters, January first.
const cfMonths = "ABCDEHLMPRST"

// cfOmocodia are the letters that replace the digits 0-9 in an omocodic code.
const cfOmocodia = "LMNPQRSTUV"

// cfOdd is the check value of a character in an odd (1-based) position,
// indexed by digit value or letter ordinal.
var cfOdd = [26]int{1, 0, 5, 7, 9, 13, 15, 17, 19, 21, 2, 4, 18, 20, 11, 3, 6, 8, 12, 14, 16, 10, 22, 25, 24, 23}

// validFiscalNumber reports whether s is a codice fiscale of a natural
// person as written: 16 upper-case characters of the right shape, a month
// letter, a day of that month (plus 40 for women), the omocodia letters only
// where digits go, and the right check character.
func validFiscalNumber(s string) bool {
	if len(s) != 16 {
		return false
	}
	var digit [16]int
	for i := range 16 {
		c := s[i]
		switch i {
		case 6, 7, 9, 10, 12, 13, 14:
			switch {
			case '0' <= c && c <= '9':
				digit[i] = int(c - '0')
			case strings.IndexByte(cfOmocodia, c) >= 0:
				digit[i] = strings.IndexByte(cfOmocodia, c)
			default:
				return false
			}
		default:
			if c < 'A' || c > 'Z' {
				return false
			}
		}
	}
	month := strings.IndexByte(cfMonths, s[8]) + 1
	if month == 0 {
		return false
	}
	day := digit[9]*10 + digit[10]
	if day > 40 {
		day -= 40
	}
	if day < 1 || day > cfDaysIn[month-1] {
		return false
	}
	return s[15] == cfCheck(s[:15])
}

// cfDaysIn is the longest month of each month (29 for February: the code
// does not say the century, so a leap year is possible).
var cfDaysIn = [12]int{31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31}

// cfCheck is the check character of the first 15 characters (upper-case
// letters and digits).
func cfCheck(first15 string) byte {
	sum := 0
	for i := range 15 {
		c := first15[i]
		v := int(c - 'A')
		if c <= '9' {
			v = int(c - '0')
		}
		if i%2 == 0 {
			sum += cfOdd[v]
		} else {
			sum += v
		}
	}
	return byte('A' + sum%26)
}
