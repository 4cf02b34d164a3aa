package spid

import (
	"encoding"
	"errors"
	"fmt"
	"net/mail"
	"net/netip"
	"net/url"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/ponte-id/ponte/internal/admission"
	"github.com/ponte-id/ponte/internal/config"
)

// Config is the "spid" section of Ponte's configuration: Ponte as a SPID
// Service Provider. Every field has its PONTE_SPID_* variable (settings).
type Config struct {
	// Enabled offers SPID on the chooser. In dev mode TestIDP alone enables it.
	Enabled bool `yaml:"enabled"`
	// EntityID is the SP's entityID, also the Issuer of its AuthnRequests
	// and the Audience it expects; empty means <issuer>/login/spid/metadata,
	// where the metadata is served.
	EntityID string `yaml:"entity_id"`
	// CertFile and KeyFile are the SP's signing certificate (with the
	// extensions of SPID notice 29 v3) and its RSA key, PEM. In dev mode,
	// when both are empty, a certificate is generated at start.
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
	// IDPMetadataFiles are files of SPID identity providers' metadata (an
	// EntityDescriptor or an EntitiesDescriptor each), separated by commas
	// in the variable.
	IDPMetadataFiles Paths `yaml:"idp_metadata_files"`
	// IDPMetadataURL is the SPID registry's metadata of every identity
	// provider (an EntitiesDescriptor), fetched at start and every Refresh.
	IDPMetadataURL string `yaml:"idp_metadata_url"`
	// IDPMetadataCertFile is the certificate that signs the registry's
	// metadata; required with IDPMetadataURL, and when set, files must be
	// signed by it too.
	IDPMetadataCertFile string `yaml:"idp_metadata_cert_file"`
	// Refresh is how often the identity providers' metadata is read again.
	Refresh time.Duration `yaml:"refresh"`
	// Comparison is the RequestedAuthnContext Comparison: minimum or exact
	// (both let an identity provider answer SpidL2 or higher).
	Comparison string `yaml:"comparison"`
	// Binding is how the AuthnRequest reaches the identity provider:
	// redirect (HTTP-Redirect, a 302) or post (an auto-submitted form).
	Binding string `yaml:"binding"`
	// RequestTTL is how long an AuthnRequest waits for its response.
	RequestTTL time.Duration `yaml:"request_ttl"`
	// ClockSkew is the tolerance on the identity providers' clocks.
	ClockSkew time.Duration `yaml:"clock_skew"`
	// MaxResponseBytes bounds a SAML message (base64 as posted, and the
	// inflated XML of the Redirect binding).
	MaxResponseBytes int `yaml:"max_response_bytes"`
	// ACSConcurrency bounds the SAML responses verified at once; ACSQueue
	// the ones waiting, at most ACSMaxWait. Beyond, the citizen gets a 503
	// page to post the same response again later (the login stays pending).
	// Zero picks 2 per core, 32 per core and 3s.
	ACSConcurrency int           `yaml:"acs_concurrency"`
	ACSQueue       int           `yaml:"acs_queue"`
	ACSMaxWait     time.Duration `yaml:"acs_max_wait"`
	// ServiceName names the AttributeConsumingService in the metadata.
	ServiceName string `yaml:"service_name"`
	// Organization and Contact fill the metadata's Organization and
	// ContactPerson (SPID: public-sector SP, with its IPA code).
	Organization Organization `yaml:"organization"`
	Contact      Contact      `yaml:"contact"`
	// TestIDP runs a local test identity provider (dev mode only) under
	// /login/spid/test-idp, trusted by the SP: `ponte demo` uses it.
	TestIDP bool `yaml:"test_idp"`
}

// Organization is the metadata's Organization, in Italian.
type Organization struct {
	Name        string `yaml:"name"`
	DisplayName string `yaml:"display_name"`
	URL         string `yaml:"url"`
}

// Contact is the metadata's ContactPerson contactType="other".
type Contact struct {
	// IPACode is the administration's code in the IndicePA (spid:IPACode).
	IPACode string `yaml:"ipa_code"`
	Email   string `yaml:"email"`
	Phone   string `yaml:"phone"`
}

// Paths is a list of file paths; its variable separates them with commas.
type Paths []string

// UnmarshalText splits a comma-separated list.
func (p *Paths) UnmarshalText(b []byte) error {
	*p = nil
	for s := range strings.SplitSeq(string(b), ",") {
		if s = strings.TrimSpace(s); s != "" {
			*p = append(*p, s)
		}
	}
	return nil
}

// DefaultConfig is SPID as INPS runs it, less what only INPS knows.
func DefaultConfig() Config {
	return Config{
		Refresh:          24 * time.Hour,
		Comparison:       "minimum",
		Binding:          "redirect",
		RequestTTL:       15 * time.Minute,
		ClockSkew:        2 * time.Minute,
		MaxResponseBytes: 256 << 10,
		ServiceName:      "Servizi online INPS",
		Organization: Organization{
			Name: "Istituto Nazionale della Previdenza Sociale", DisplayName: "INPS", URL: "https://www.inps.it",
		},
		Contact: Contact{IPACode: "inps", Email: "spid.tech@inps.it", Phone: "+390659051"},
	}
}

// section is the method's configuration key.
const section = "spid"

// settings binds every field of Config to its variable.
var settings = func() []config.Setting[Config] {
	type C = Config
	return []config.Setting[C]{
		config.TextSetting("enabled", "PONTE_SPID_ENABLED", func(c *C) encoding.TextUnmarshaler { return (*boolText)(&c.Enabled) }),
		config.StringSetting("entity_id", "PONTE_SPID_ENTITY_ID", func(c *C) *string { return &c.EntityID }),
		config.StringSetting("cert_file", "PONTE_SPID_CERT_FILE", func(c *C) *string { return &c.CertFile }),
		config.StringSetting("key_file", "PONTE_SPID_KEY_FILE", func(c *C) *string { return &c.KeyFile }),
		config.TextSetting("idp_metadata_files", "PONTE_SPID_IDP_METADATA_FILES", func(c *C) encoding.TextUnmarshaler { return &c.IDPMetadataFiles }),
		config.StringSetting("idp_metadata_url", "PONTE_SPID_IDP_METADATA_URL", func(c *C) *string { return &c.IDPMetadataURL }),
		config.StringSetting("idp_metadata_cert_file", "PONTE_SPID_IDP_METADATA_CERT_FILE", func(c *C) *string { return &c.IDPMetadataCertFile }),
		config.DurationSetting("refresh", "PONTE_SPID_REFRESH", func(c *C) *time.Duration { return &c.Refresh }),
		config.StringSetting("comparison", "PONTE_SPID_COMPARISON", func(c *C) *string { return &c.Comparison }),
		config.StringSetting("binding", "PONTE_SPID_BINDING", func(c *C) *string { return &c.Binding }),
		config.DurationSetting("request_ttl", "PONTE_SPID_REQUEST_TTL", func(c *C) *time.Duration { return &c.RequestTTL }),
		config.DurationSetting("clock_skew", "PONTE_SPID_CLOCK_SKEW", func(c *C) *time.Duration { return &c.ClockSkew }),
		config.IntSetting("max_response_bytes", "PONTE_SPID_MAX_RESPONSE_BYTES", func(c *C) *int { return &c.MaxResponseBytes }),
		config.IntSetting("acs_concurrency", "PONTE_SPID_ACS_CONCURRENCY", func(c *C) *int { return &c.ACSConcurrency }),
		config.IntSetting("acs_queue", "PONTE_SPID_ACS_QUEUE", func(c *C) *int { return &c.ACSQueue }),
		config.DurationSetting("acs_max_wait", "PONTE_SPID_ACS_MAX_WAIT", func(c *C) *time.Duration { return &c.ACSMaxWait }),
		config.StringSetting("service_name", "PONTE_SPID_SERVICE_NAME", func(c *C) *string { return &c.ServiceName }),
		config.StringSetting("organization.name", "PONTE_SPID_ORGANIZATION_NAME", func(c *C) *string { return &c.Organization.Name }),
		config.StringSetting("organization.display_name", "PONTE_SPID_ORGANIZATION_DISPLAY_NAME", func(c *C) *string { return &c.Organization.DisplayName }),
		config.StringSetting("organization.url", "PONTE_SPID_ORGANIZATION_URL", func(c *C) *string { return &c.Organization.URL }),
		config.StringSetting("contact.ipa_code", "PONTE_SPID_CONTACT_IPA_CODE", func(c *C) *string { return &c.Contact.IPACode }),
		config.StringSetting("contact.email", "PONTE_SPID_CONTACT_EMAIL", func(c *C) *string { return &c.Contact.Email }),
		config.StringSetting("contact.phone", "PONTE_SPID_CONTACT_PHONE", func(c *C) *string { return &c.Contact.Phone }),
		config.TextSetting("test_idp", "PONTE_SPID_TEST_IDP", func(c *C) encoding.TextUnmarshaler { return (*boolText)(&c.TestIDP) }),
	}
}()

// Settings are the variables of the "spid" section, for documentation and tests.
func Settings() []config.Setting[Config] { return settings }

// boolText parses true/false for a variable.
type boolText bool

func (b *boolText) UnmarshalText(t []byte) error {
	switch strings.ToLower(strings.TrimSpace(string(t))) {
	case "true", "1", "yes":
		*b = true
	case "false", "0", "no":
		*b = false
	default:
		return fmt.Errorf("want true or false, got %q", t)
	}
	return nil
}

// ipaCode is the shape of an IndicePA code.
var ipaCode = regexp.MustCompile(`^[A-Za-z0-9_]{1,16}$`)

// phone is the shape SPID wants of a contact's TelephoneNumber: no spaces, +39 first.
var phone = regexp.MustCompile(`^\+39[0-9]{6,12}$`)

// Validate checks the section and reports every bad setting, each naming
// its YAML path and its variable. dev is Ponte's development mode.
func (c Config) Validate(dev bool) error {
	var errs []error
	bad := func(path, format string, a ...any) {
		errs = append(errs, config.Invalid(section, settings, path, fmt.Errorf(format, a...)))
	}
	if c.TestIDP && !dev {
		bad("test_idp", "the test identity provider runs only in dev mode (PONTE_DEV=true)")
	}
	if !c.on(dev) {
		return errors.Join(errs...)
	}
	if c.EntityID != "" {
		if u, err := url.Parse(c.EntityID); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			bad("entity_id", "must be an http(s) URL")
		}
	}
	if (c.CertFile == "") != (c.KeyFile == "") {
		bad("cert_file", "cert_file and key_file go together")
	}
	if c.CertFile == "" && !dev {
		bad("cert_file", "is required (the SP certificate of SPID notice 29 v3); only dev mode generates one")
	}
	if len(c.IDPMetadataFiles) == 0 && c.IDPMetadataURL == "" && !c.TestIDP {
		bad("idp_metadata_files", "name the identity providers: idp_metadata_files or idp_metadata_url")
	}
	if u := c.IDPMetadataURL; u != "" {
		if p, err := url.Parse(u); err != nil || p.Host == "" || !secureURL(p) {
			bad("idp_metadata_url", "must be an https URL (http only on loopback, for tests)")
		}
		if c.IDPMetadataCertFile == "" {
			bad("idp_metadata_cert_file", "is required with idp_metadata_url: the registry's metadata is checked against it")
		}
	}
	if c.Refresh < time.Minute {
		bad("refresh", "must be at least 1m, got %v", c.Refresh)
	}
	if !slices.Contains([]string{"minimum", "exact"}, c.Comparison) {
		bad("comparison", "must be minimum or exact (SpidL2 or higher reaches dispositivo), got %q", c.Comparison)
	}
	if !slices.Contains([]string{"redirect", "post"}, c.Binding) {
		bad("binding", "must be redirect or post, got %q", c.Binding)
	}
	if c.RequestTTL < time.Minute || c.RequestTTL > time.Hour {
		bad("request_ttl", "must be between 1m and 1h, got %v", c.RequestTTL)
	}
	if c.ClockSkew < 0 || c.ClockSkew > 10*time.Minute {
		bad("clock_skew", "must be between 0 and 10m, got %v", c.ClockSkew)
	}
	if c.MaxResponseBytes < 16<<10 || c.MaxResponseBytes > 4<<20 {
		bad("max_response_bytes", "must be between 16 KiB and 4 MiB, got %d", c.MaxResponseBytes)
	}
	if c.ACSConcurrency < 0 || c.ACSConcurrency > 1024 {
		bad("acs_concurrency", "must be between 0 (2 per core) and 1024, got %d", c.ACSConcurrency)
	}
	if c.ACSQueue < 0 {
		bad("acs_queue", "must not be negative (0 is 32 per core), got %d", c.ACSQueue)
	}
	if c.ACSMaxWait < 0 || c.ACSMaxWait > time.Minute {
		bad("acs_max_wait", "must be between 0 (3s) and 1m, got %v", c.ACSMaxWait)
	}
	if strings.TrimSpace(c.ServiceName) == "" {
		bad("service_name", "is required")
	}
	if strings.TrimSpace(c.Organization.Name) == "" {
		bad("organization.name", "is required")
	}
	if strings.TrimSpace(c.Organization.DisplayName) == "" {
		bad("organization.display_name", "is required")
	}
	if u, err := url.Parse(c.Organization.URL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		bad("organization.url", "must be an http(s) URL")
	}
	if !ipaCode.MatchString(c.Contact.IPACode) {
		bad("contact.ipa_code", "must be an IndicePA code (letters, digits, _), got %q", c.Contact.IPACode)
	}
	if _, err := mail.ParseAddress(c.Contact.Email); err != nil || strings.Contains(c.Contact.Email, "<") {
		bad("contact.email", "must be an email address")
	}
	if c.Contact.Phone != "" && !phone.MatchString(c.Contact.Phone) {
		bad("contact.phone", "must be +39 and digits, no spaces, got %q", c.Contact.Phone)
	}
	slices.SortFunc(errs, func(a, b error) int { return strings.Compare(a.Error(), b.Error()) })
	return errors.Join(errs...)
}

// secureURL reports whether u may carry the registry's metadata: https, or
// http to a loopback address (a test's server). Its signature is checked
// either way; https keeps it from being read or held back on the way.
func secureURL(u *url.URL) bool {
	switch u.Scheme {
	case "https":
		return true
	case "http":
		host := u.Hostname()
		if host == "localhost" {
			return true
		}
		addr, err := netip.ParseAddr(host)
		return err == nil && addr.IsLoopback()
	}
	return false
}

// on reports whether the method is offered.
func (c Config) on(dev bool) bool { return c.Enabled || (dev && c.TestIDP) }

// acsGate is the admission gate of the assertion consumer service, with the
// defaults for zero settings.
func (c Config) acsGate() (*admission.Gate, error) {
	cores := runtime.GOMAXPROCS(0)
	o := admission.Options{Concurrency: c.ACSConcurrency, Queue: c.ACSQueue, MaxWait: c.ACSMaxWait}
	if o.Concurrency == 0 {
		o.Concurrency = 2 * cores
	}
	if o.Queue == 0 {
		o.Queue = 32 * cores
	}
	if o.MaxWait == 0 {
		o.MaxWait = 3 * time.Second
	}
	return admission.New(o)
}
