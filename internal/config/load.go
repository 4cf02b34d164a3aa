package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"strings"

	"gopkg.in/yaml.v3"
)

// Load builds the configuration: Default, then the YAML file at path (none if
// path is ""), then the PONTE_* variables in environ (os.Environ() style
// "KEY=value" entries; empty values are ignored), then Validate.
//
// The file may set any subset of the settings; an unknown key is an error
// naming it and its line. On error Load returns the zero Config.
func Load(path string, environ []string) (Config, error) {
	c := Default()
	if path != "" {
		if err := decodeFile(path, &c); err != nil {
			return Config{}, err
		}
	}
	envErr := applyEnv(&c, environ)
	if len(c.TrustedProxies) == 0 {
		c.TrustedProxies = nil
	}
	c.deriveIssuer()
	// Every bad value at once: the variables that did not parse, and the
	// settings that parsed but are wrong.
	if err := errors.Join(envErr, c.Validate()); err != nil {
		return Config{}, fmt.Errorf("config: %w", err)
	}
	return c, nil
}

// deriveIssuer follows addr when only addr was set: a node told to listen on
// 127.0.0.1:9000 is reached there, not on the default issuer's port. On every
// interface (0.0.0.0, ::) there is no address to derive, and Validate asks
// for the issuer by name.
func (c *Config) deriveIssuer() {
	def := Default()
	if c.Issuer != def.Issuer || c.Addr == def.Addr {
		return
	}
	host, port, err := net.SplitHostPort(c.Addr)
	if err != nil {
		return // Validate names the bad addr
	}
	ip, _ := netip.ParseAddr(host)
	if host == "" || ip.IsUnspecified() {
		c.Issuer = ""
		return
	}
	c.Issuer = "http://" + net.JoinHostPort(host, port)
}

// decodeFile overlays the YAML document in the file at path onto c.
func decodeFile(path string, c *Config) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	switch err := dec.Decode(c); {
	case errors.Is(err, io.EOF):
		return nil // empty file: defaults
	case err != nil:
		return fmt.Errorf("config file %s: %w", path, friendlier(err))
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return fmt.Errorf("config file %s: want a single YAML document", path)
	}
	return nil
}

// friendlier rewrites yaml.v3's "field x not found in type config.Config"
// as "unknown field "x"", keeping the line number, one error per problem.
func friendlier(err error) error {
	var te *yaml.TypeError
	if !errors.As(err, &te) {
		return err
	}
	errs := make([]error, 0, len(te.Errors))
	for _, msg := range te.Errors {
		if before, _, ok := strings.Cut(msg, " not found in type "); ok {
			if line, field, ok := strings.Cut(before, ": field "); ok {
				msg = fmt.Sprintf("%s: unknown field %q", line, field)
			}
		}
		errs = append(errs, errors.New(msg))
	}
	return errors.Join(errs...)
}
