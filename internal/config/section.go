package config

import (
	"encoding"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// A Section is the configuration of one login method: the YAML under its
// top-level key and the PONTE_* variables of its settings. The method owns
// its Config type, defaults and validation; Decode fills it.
type Section struct {
	// Key is the top-level YAML key, e.g. "pin".
	Key     string
	node    *yaml.Node
	environ map[string]string
}

// Section returns the section under key (empty if the file has none).
func (c Config) Section(key string) Section {
	s := Section{Key: key, environ: c.environ}
	if n, ok := c.Sections[key]; ok {
		s.node = &n
	}
	return s
}

// CheckSections reports every top-level key of the file that is neither
// Ponte's own nor one of keys (the sections of the login methods opened),
// with the line of its value: a typo in a section name is an error, not a silence.
func (c Config) CheckSections(keys ...string) error {
	var errs []error
	for k, n := range c.Sections {
		if !slices.Contains(keys, k) {
			errs = append(errs, fmt.Errorf("config: unknown field %q (its value is on line %d)", k, n.Line))
		}
	}
	slices.SortFunc(errs, func(a, b error) int { return strings.Compare(a.Error(), b.Error()) })
	return errors.Join(errs...)
}

// Setting ties one field of a method's Config (T) to its path inside the
// section and to its environment variable.
type Setting[T any] struct {
	// Path is the YAML path inside the section, e.g. "limits.per_ip".
	Path string
	// Env is the environment variable, e.g. "PONTE_PIN_LIMIT_PER_IP".
	Env string
	set func(*T, string) error
}

// StringSetting binds a string field.
func StringSetting[T any](path, env string, field func(*T) *string) Setting[T] {
	return Setting[T]{path, env, func(c *T, v string) error { *field(c) = v; return nil }}
}

// Integer is the kinds of whole numbers a setting may hold.
type Integer interface {
	~int | ~int64 | ~uint32 | ~uint8
}

// IntSetting binds a whole-number field; a value out of the field's range is refused.
func IntSetting[T any, N Integer](path, env string, field func(*T) *N) Setting[T] {
	return Setting[T]{path, env, func(c *T, v string) error {
		n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		if err != nil || int64(N(n)) != n {
			return fmt.Errorf("not a whole number in range: %q", v)
		}
		*field(c) = N(n)
		return nil
	}}
}

// DurationSetting binds a time.Duration field, written in Go syntax ("15m").
func DurationSetting[T any](path, env string, field func(*T) *time.Duration) Setting[T] {
	return Setting[T]{path, env, func(c *T, v string) error {
		var d Duration
		if err := d.UnmarshalText([]byte(v)); err != nil {
			return err
		}
		*field(c) = d.D()
		return nil
	}}
}

// TextSetting binds a field that parses itself (encoding.TextUnmarshaler).
func TextSetting[T any](path, env string, field func(*T) encoding.TextUnmarshaler) Setting[T] {
	return Setting[T]{path, env, func(c *T, v string) error { return field(c).UnmarshalText([]byte(v)) }}
}

// Decode overlays the section onto cfg, which holds the method's defaults:
// first the YAML (an unknown field is an error naming it and its line), then
// the variables of settings. It reports every problem at once; validating
// the result is the method's own business.
func Decode[T any](s Section, cfg *T, settings []Setting[T]) error {
	var errs []error
	if s.node != nil {
		errs = append(errs, unknownFields(s.node, reflect.TypeFor[T](), s.Key)...)
		if len(errs) == 0 {
			if err := s.node.Decode(cfg); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", s.Key, friendlier(err)))
			}
		}
	}
	for _, st := range settings {
		v := s.environ[st.Env]
		if v == "" {
			continue
		}
		if err := st.set(cfg, v); err != nil {
			errs = append(errs, fmt.Errorf("environment variable %s (%s.%s): %w", st.Env, s.Key, st.Path, err))
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("config: %w", errors.Join(errs...))
	}
	return nil
}

// Invalid is a method's validation error for the setting at path inside its
// section, named with its variable from settings.
func Invalid[T any](key string, settings []Setting[T], path string, err error) error {
	env := ""
	for _, st := range settings {
		if st.Path == path {
			env = st.Env
		}
	}
	return &FieldError{Field: key + "." + path, Env: env, Err: err}
}

// unknownFields walks a YAML mapping against the struct type t (by yaml tags,
// inline structs included) and reports every key t does not have.
func unknownFields(n *yaml.Node, t reflect.Type, path string) []error {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if n.Kind != yaml.MappingNode || t.Kind() != reflect.Struct {
		return nil
	}
	if _, ok := reflect.New(t).Interface().(yaml.Unmarshaler); ok {
		return nil
	}
	fields := yamlFields(t)
	var errs []error
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		ft, ok := fields[k.Value]
		if !ok {
			errs = append(errs, fmt.Errorf("line %d: unknown field %q in %s", k.Line, k.Value, path))
			continue
		}
		errs = append(errs, unknownFields(v, ft, path+"."+k.Value)...)
	}
	return errs
}

// yamlFields maps the YAML keys of struct type t to their field types.
func yamlFields(t reflect.Type) map[string]reflect.Type {
	out := map[string]reflect.Type{}
	for i := range t.NumField() {
		f := t.Field(i)
		tag := f.Tag.Get("yaml")
		name, opts, _ := strings.Cut(tag, ",")
		switch {
		case name == "-" || !f.IsExported():
		case opts == "inline" && f.Type.Kind() != reflect.Struct:
			// an inline map catches the keys no field has (Config.Sections)
		case opts == "inline":
			for k, v := range yamlFields(f.Type) {
				out[k] = v
			}
		case name == "":
			out[strings.ToLower(f.Name)] = f.Type
		default:
			out[name] = f.Type
		}
	}
	return out
}
