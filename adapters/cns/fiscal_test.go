package cns

import "testing"

func TestValidFiscalNumber(t *testing.T) {
	// omocodic turns the last digit of RSSMRA80A01H501 into its letter and
	// recomputes the check character: a different, valid code.
	omocodic := "RSSMRA80A01H50M"
	omocodic += string(cfCheck(omocodic))
	for _, tc := range []struct {
		cf   string
		want bool
	}{
		{"RSSMRA80A01H501U", true},
		{"BNCLRA90D55F205C", true},
		{"VRDGPP75C15F205S", true},
		{omocodic, true},
		{"RSSMRA80A01H501A", false},      // check character
		{"rssmra80a01h501u", false},      // never normalised
		{"RSSMRA80A01H501", false},       // length
		{"RSSMRA80A01H501UX", false},     // length
		{"RSSMRA80Z01H501U", false},      // month letter
		{"RSSMRA80A32H501" + "X", false}, // day 32
		{"RSSMRA80A00H501" + "X", false}, // day 0
		{"RSSMRA8WA01H501U", false},      // W is no omocodia letter
		{"R5SMRA80A01H501U", false},      // digit where a letter goes
		{"RSSMRA80A01H501U ", false},
	} {
		if got := validFiscalNumber(tc.cf); got != tc.want {
			t.Errorf("validFiscalNumber(%q) = %v, want %v", tc.cf, got, tc.want)
		}
	}
	// A woman's day (41-71) and 29 February (any year may be a leap year).
	for _, first15 := range []string{"BNCLRA90D55F205", "BNCLRA90B69F205", "RSSMRA80B29H501"} {
		if cf := first15 + string(cfCheck(first15)); !validFiscalNumber(cf) {
			t.Errorf("%s refused", cf)
		}
	}
	for _, first15 := range []string{"RSSMRA80B30H501", "RSSMRA80D31H501", "BNCLRA90D72F205"} {
		if cf := first15 + string(cfCheck(first15)); validFiscalNumber(cf) {
			t.Errorf("%s accepted: no such day", cf)
		}
	}
}
