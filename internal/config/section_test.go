package config

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// methodConfig stands for a login method's own Config.
type methodConfig struct {
	Expiry time.Duration `yaml:"expiry"`
	Limits struct {
		PerIP int `yaml:"per_ip"`
	} `yaml:"limits"`
	Name   string `yaml:"name"`
	Hidden string `yaml:"-"`
}

var methodSettings = []Setting[methodConfig]{
	DurationSetting("expiry", "PONTE_M_EXPIRY", func(c *methodConfig) *time.Duration { return &c.Expiry }),
	IntSetting("limits.per_ip", "PONTE_M_PER_IP", func(c *methodConfig) *int { return &c.Limits.PerIP }),
	StringSetting("name", "PONTE_M_NAME", func(c *methodConfig) *string { return &c.Name }),
}

// TestSections: a method's section overlays its defaults from the file, then
// from its variables; unknown fields and bad values are named with their line
// or variable; a top-level key that no method claims is refused.
func TestSections(t *testing.T) {
	tests := []struct {
		name    string
		file    string
		environ []string
		want    methodConfig
		errs    []string
	}{
		{name: "defaults without a section", file: "dev: true\n", want: methodConfig{Expiry: time.Hour, Name: "d"}},
		{name: "file overlays defaults", file: "dev: true\nm:\n  expiry: 2h\n  limits:\n    per_ip: 7\n",
			want: methodConfig{Expiry: 2 * time.Hour, Name: "d", Limits: struct {
				PerIP int `yaml:"per_ip"`
			}{7}}},
		{name: "variables override the file", file: "dev: true\nm:\n  expiry: 2h\n", environ: []string{"PONTE_M_EXPIRY=3h", "PONTE_M_NAME=x"},
			want: methodConfig{Expiry: 3 * time.Hour, Name: "x"}},
		{name: "unknown field with its line", file: "dev: true\nm:\n  expiry: 2h\n  limits:\n    per_ipp: 1\n",
			errs: []string{"line 5", `unknown field "per_ipp" in m.limits`}},
		{name: "a field the method keeps out of the file", file: "dev: true\nm:\n  hidden: x\n", errs: []string{`unknown field "hidden"`}},
		{name: "bad value in the file", file: "dev: true\nm:\n  expiry: soon\n", errs: []string{"m:", "line 3"}},
		{name: "bad variables, all reported", file: "dev: true\n", environ: []string{"PONTE_M_EXPIRY=soon", "PONTE_M_PER_IP=many"},
			errs: []string{"PONTE_M_EXPIRY (m.expiry)", "PONTE_M_PER_IP (m.limits.per_ip)"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Load(writeFile(t, tt.file), tt.environ)
			if err != nil {
				t.Fatal(err)
			}
			got := methodConfig{Expiry: time.Hour, Name: "d"}
			err = Decode(c.Section("m"), &got, methodSettings)
			if len(tt.errs) > 0 {
				for _, want := range tt.errs {
					if err == nil || !strings.Contains(err.Error(), want) {
						t.Fatalf("Decode error %v, want it to contain %q", err, want)
					}
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("Decode = %+v, %v; want %+v", got, err, tt.want)
			}
		})
	}
}

func TestCheckSections(t *testing.T) {
	c, err := Load(writeFile(t, "dev: true\nm:\n  expiry: 1h\nmm:\n  x: 1\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.CheckSections("m", "mm"); err != nil {
		t.Fatalf("claimed sections refused: %v", err)
	}
	err = c.CheckSections("m")
	if err == nil || !strings.Contains(err.Error(), `unknown field "mm" (its value is on line 5)`) {
		t.Fatalf("an unclaimed section: %v", err)
	}
}

func TestInvalidNamesTheVariable(t *testing.T) {
	err := Invalid("m", methodSettings, "limits.per_ip", errors.New("must be at least 1"))
	var fe *FieldError
	if !errors.As(err, &fe) || err.Error() != "m.limits.per_ip (PONTE_M_PER_IP): must be at least 1" {
		t.Fatalf("Invalid = %v", err)
	}
}
