package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
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
	if err := applyEnv(&c, environ); err != nil {
		return Config{}, fmt.Errorf("config: %w", err)
	}
	if len(c.TrustedProxies) == 0 {
		c.TrustedProxies = nil
	}
	if err := c.Validate(); err != nil {
		return Config{}, fmt.Errorf("config: %w", err)
	}
	return c, nil
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
