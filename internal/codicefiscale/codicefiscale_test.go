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

// FuzzParse: Parse never panics, and what it accepts has a consistent check character.
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
	})
}
