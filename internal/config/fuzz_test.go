package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzLoad loads arbitrary YAML with arbitrary PONTE_* variables: Load never
// panics, what it accepts validates, and a refusal never echoes the master key.
func FuzzLoad(f *testing.F) {
	example, err := os.ReadFile("../../config.example.yaml")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(string(example), "PONTE_DEV=true")
	f.Add("dev: true\naddr: \"0.0.0.0:8080\"\n", "PONTE_ISSUER=https://login.example.it")
	f.Add("master_key: \"c2VjcmV0\"\nredis: {url: \"redis://:pw@h:1/x\"}\n", "PONTE_SHUTDOWN_TIMEOUT=15")
	f.Add("pin:\n  limits: {per_ip: -1}\nunknown: 1\n", "PONTE_REDIS_TIMEOUT=0s\nPONTE_DEV=maybe")
	f.Add("&a [*a, *a]\n", "")
	f.Fuzz(func(t *testing.T, yaml, env string) {
		path := filepath.Join(t.TempDir(), "ponte.yaml")
		if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
			t.Fatal(err)
		}
		var environ []string
		for _, kv := range strings.Split(env, "\n") {
			if strings.HasPrefix(kv, "PONTE_") {
				environ = append(environ, kv)
			}
		}
		c, err := Load(path, environ)
		if err != nil {
			if c.MasterKey != "" && len(c.MasterKey) > 8 && strings.Contains(err.Error(), c.MasterKey) {
				t.Fatalf("the error echoes the master key: %v", err)
			}
			return
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("Load accepted a configuration that does not validate: %v", err)
		}
	})
}
