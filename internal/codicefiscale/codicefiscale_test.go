package codicefiscale

import (
	"errors"
	"testing"
	"time"
)

func TestParse(t *testing.T) {
	cases := []struct {
		in      string
		wantErr error
		female  bool
		month   int
		day     int
	}{
		{in: "RSSMRA80A01H501U", month: 1, day: 1},
		{in: "RSSMRA80A41H501Y", female: true, month: 1, day: 1},
		{in: "RSSMRA80A01H50MM", month: 1, day: 1},      // omocodia in the last digit
		{in: "RSSMRAUNALMHRNMH", month: 1, day: 1},      // every numeric position substituted
		{in: "RSSMRA80A01H501A", wantErr: ErrCheckChar}, // check character off by one
		{in: "RSSMRA80A01H501", wantErr: ErrLength},
		{in: "RSSMRA80Z01H501U", wantErr: ErrFormat}, // Z is not a month
		{in: "RSSMRA80A32H501U", wantErr: ErrFormat}, // 32 January
		{in: "RSSMRA80B30H501U", wantErr: ErrFormat}, // 30 February
		{in: "RSSMRA80A0WH501U", wantErr: ErrFormat}, // W is not an omocodia letter
		{in: "1SSMRA80A01H501U", wantErr: ErrFormat},
		{in: "rssmra80a01h501u", wantErr: ErrFormat},      // not normalized
		{in: "RSSMRA80A01H501\u00dc", wantErr: ErrLength}, // multibyte
	}
	for _, tc := range cases {
		t.Run(tc.in, func(t *testing.T) {
			c, err := Parse(tc.in)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("Parse(%q) = %v, want %v", tc.in, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Parse(%q): %v", tc.in, err)
			}
			if c.Female != tc.female || c.Month != tc.month || c.Day != tc.day {
				t.Errorf("Parse(%q) = %+v", tc.in, c)
			}
		})
	}
}

// TestValidAsWritten: Valid takes the code as written, as the CNS method
// relies on (a certificate's code is never normalised, and an omocodic code
// is a distinct identity). These cases came with the check from adapters/cns.
func TestValidAsWritten(t *testing.T) {
	withCheck := func(first15 string) string {
		c, err := CheckChar(first15)
		if err != nil {
			t.Fatal(err)
		}
		return first15 + string(c)
	}
	for _, tc := range []struct {
		cf   string
		want bool
	}{
		{"RSSMRA80A01H501U", true},
		{"BNCLRA90D55F205C", true},
		{"VRDGPP75C15F205S", true},
		{withCheck("RSSMRA80A01H50M"), true},  // omocodic: the last digit as its letter
		{withCheck("BNCLRA90D55F205"), true},  // a woman's day (41-71)
		{withCheck("BNCLRA90B69F205"), true},  // a woman born on 29 February
		{withCheck("RSSMRA80B29H501"), true},  // 29 February: any year may be a leap year
		{"RSSMRA80A01H501A", false},           // check character
		{"rssmra80a01h501u", false},           // never normalised
		{"RSSMRA80A01H501", false},            // length
		{"RSSMRA80A01H501UX", false},          // length
		{"RSSMRA80A01H501U ", false},          // length (no trimming)
		{"RSSMRA80Z01H501U", false},           // month letter
		{withCheck("RSSMRA80A32H501"), false}, // 32 January
		{withCheck("RSSMRA80A00H501"), false}, // day 0
		{withCheck("RSSMRA80B30H501"), false}, // 30 February
		{withCheck("RSSMRA80D31H501"), false}, // 31 April
		{withCheck("BNCLRA90D72F205"), false}, // a woman's 32 April
		{withCheck("RSSMRA80A40H501"), false}, // days 32-40 are no one's
		{"RSSMRA8WA01H501U", false},           // W is no omocodia letter
		{"R5SMRA80A01H501U", false},           // digit where a letter goes
	} {
		if got := Valid(tc.cf); got != tc.want {
			t.Errorf("Valid(%q) = %v, want %v", tc.cf, got, tc.want)
		}
	}
}

func TestBirthdateCentury(t *testing.T) {
	now := time.Date(2026, 11, 22, 0, 0, 0, 0, time.UTC)
	for in, want := range map[string]int{"RSSMRA80A01H501U": 1980} {
		c, err := Parse(in)
		if err != nil {
			t.Fatal(err)
		}
		if got := c.Birthdate(now).Year(); got != want {
			t.Errorf("%s: year %d, want %d", in, got, want)
		}
	}
}

func TestNormalize(t *testing.T) {
	if got := Normalize(" rssmra 80a01 h501u "); got != "RSSMRA80A01H501U" {
		t.Fatalf("Normalize = %q", got)
	}
}

func TestHasShape(t *testing.T) {
	for in, want := range map[string]bool{
		"RSSMRA80A01H501U":   true,
		"RSSMRAUNALMHRNMH":   true, // omocodia everywhere
		"RSSMRA80A01H501A":   true, // wrong check character: shape only
		"RSSMRA80A32H501U":   true, // 32 January: shape only
		"RSSMRA80Z01H501U":   false,
		"RSSMRA80A0WH501U":   false,
		"rssmra80a01h501u":   false, // as written
		"RSSMRA80A01H501":    false,
		"RSSMRA80A01H501U\n": false,
		"":                   false,
	} {
		if got := HasShape(in); got != want {
			t.Errorf("HasShape(%q) = %v, want %v", in, got, want)
		}
	}
}

// FuzzParse: Parse never panics, and what it accepts has a consistent check
// character and the shape HasShape checks.
func FuzzParse(f *testing.F) {
	for _, s := range []string{"RSSMRA80A01H501U", "RSSMRAUNALMHRNMH", "", "AAAAAAAAAAAAAAAA", "RSSMRA80A01H501\xff"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := Parse(s)
		if err != nil {
			return
		}
		if ch, err := CheckChar(s[:15]); err != nil || ch != s[15] || c.Value != s {
			t.Fatalf("accepted %q with inconsistent check character", s)
		}
		if !HasShape(s) {
			t.Fatalf("accepted %q without the shape", s)
		}
	})
}
