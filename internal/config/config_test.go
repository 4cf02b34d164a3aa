package config

import (
	"net/netip"
	"slices"
	"testing"
	"time"
)

// testKey is a valid base64 master key (32 zero bytes).
const testKey = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="

func devDefault() Config {
	c := Default()
	c.Dev = true
	return c
}

func TestDefaultValid(t *testing.T) {
	tests := []struct {
		name string
		cfg  func() Config
	}{
		{"dev mode", devDefault},
		{"master key", func() Config { c := Default(); c.MasterKey = testKey; return c }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.cfg().Validate(); err != nil {
				t.Fatalf("Validate: %v", err)
			}
		})
	}
}

func TestDBIsPostgres(t *testing.T) {
	tests := []struct {
		db   string
		want bool
	}{
		{"ponte.db", false},
		{"/var/lib/ponte/ponte.db", false},
		{"file:ponte.db?_pragma=busy_timeout(5000)", false},
		{"postgres://u:p@db:5432/ponte", true},
		{"postgresql://u:p@db/ponte?sslmode=require", true},
		{"POSTGRES://db/ponte", true},
		{"postgres.db", false},
	}
	for _, tt := range tests {
		c := Config{DB: tt.db}
		if got := c.DBIsPostgres(); got != tt.want {
			t.Errorf("DBIsPostgres(%q) = %v, want %v", tt.db, got, tt.want)
		}
	}
}

func TestCookieSecure(t *testing.T) {
	yes, no := true, false
	tests := []struct {
		name   string
		issuer string
		set    *bool
		want   bool
	}{
		{"https derived", "https://id.example.it", nil, true},
		{"http derived", "http://127.0.0.1:8080", nil, false},
		{"forced on", "http://localhost:8080", &yes, true},
		{"forced off", "https://id.example.it", &no, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Default()
			c.Issuer, c.Session.CookieSecure = tt.issuer, tt.set
			if got := c.CookieSecure(); got != tt.want {
				t.Errorf("CookieSecure() = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestTrustedProxyPrefixes(t *testing.T) {
	c := Config{TrustedProxies: []string{"10.0.0.1", "192.168.1.7/16", "::1", "fd00::/8"}}
	want := []netip.Prefix{
		netip.MustParsePrefix("10.0.0.1/32"),
		netip.MustParsePrefix("192.168.0.0/16"),
		netip.MustParsePrefix("::1/128"),
		netip.MustParsePrefix("fd00::/8"),
	}
	if got := c.TrustedProxyPrefixes(); !slices.Equal(got, want) {
		t.Fatalf("TrustedProxyPrefixes() = %v, want %v", got, want)
	}
}

func TestDurationText(t *testing.T) {
	tests := []struct {
		in      string
		want    time.Duration
		wantErr bool
	}{
		{"15m", 15 * time.Minute, false},
		{"1h30m", 90 * time.Minute, false},
		{"0", 0, false},
		{"-5s", -5 * time.Second, false},
		{"60", 0, true},
		{"15 minutes", 0, true},
		{"", 0, true},
	}
	for _, tt := range tests {
		var d Duration
		err := d.UnmarshalText([]byte(tt.in))
		if (err != nil) != tt.wantErr || d.D() != tt.want {
			t.Errorf("UnmarshalText(%q) = %v, %v; want %v, error %v", tt.in, d, err, tt.want, tt.wantErr)
		}
	}
	if got, _ := Duration(90 * time.Second).MarshalText(); string(got) != "1m30s" {
		t.Errorf("MarshalText = %q", got)
	}
}
