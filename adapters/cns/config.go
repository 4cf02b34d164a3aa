package cns

import (
	"crypto/x509"
	"encoding"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ponte-id/ponte/internal/config"
)

// PolicyCNS is the certificate policy of CNS authentication certificates
// (AgID, Linee guida per l'emissione e l'utilizzo della CNS): the leaf must
// carry it.
const PolicyCNS = "1.3.76.16.2.1"

// Config is the "cns" section of Ponte's configuration, every field with its
// PONTE_CNS_* variable (settings).
type Config struct {
	// Enabled switches the method on. Off, it is hidden from the chooser and
	// its pages answer 404; nothing else is checked.
	Enabled Bool `yaml:"enabled"`
	// CardURL is the public https base URL (scheme, host, port) of the card
	// listener, or of the TLS-terminating proxy in front of it that asks for
	// the certificate: the browser is sent there to present its card.
	CardURL string `yaml:"card_url"`
	// CAFile is a PEM bundle of the CNS certificate authorities. Every
	// certificate in it is a trust anchor: a root, or an issuing CA trusted
	// on its own. Reloaded without a restart when it changes.
	CAFile string `yaml:"ca_file"`
	// PolicyOID is the certificate policy the leaf must carry (PolicyCNS).
	PolicyOID string `yaml:"policy_oid"`
	// SerialNumberFallback reads the codice fiscale from the subject's
	// serialNumber (TINIT-<cf> or IT:<cf>) when the CN does not have the CNS
	// form. When both carry one, they must agree whatever this says.
	SerialNumberFallback Bool `yaml:"serial_number_fallback"`
	// ReloadInterval is how often CAFile and CRLDir are checked for changes
	// and the CRLs of distribution points are refreshed.
	ReloadInterval time.Duration `yaml:"reload_interval"`
	// Revocation configures CRL and OCSP.
	Revocation Revocation `yaml:"revocation"`
	// Issuer is the provider's public URL (never a setting of its own): the
	// card listener sends the browser back there.
	Issuer string `yaml:"-"`
}

// Revocation configures the revocation checks. OCSP is asked first when the
// certificate names a responder (or OCSPURL is set); CRLs answer when OCSP is
// off or cannot. A certificate whose status no source can give is refused
// unless FailOpen.
type Revocation struct {
	// OCSP switches OCSP on.
	OCSP Bool `yaml:"ocsp"`
	// OCSPURL replaces the responder the certificates name (AIA).
	OCSPURL string `yaml:"ocsp_url"`
	// OCSPNonce sends a nonce (RFC 8954); a response that carries another
	// one is refused. Responders that pre-produce their answers send none,
	// which is accepted when the answer is fresh.
	OCSPNonce Bool `yaml:"ocsp_nonce"`
	// CRL switches CRLs on: the files of CRLDir and the certificates' http
	// distribution points.
	CRL Bool `yaml:"crl"`
	// CRLDir holds CRL files (DER or PEM) loaded at start and reloaded when
	// they change; empty means none.
	CRLDir string `yaml:"crl_dir"`
	// CRLFetch downloads CRLs from the certificates' http distribution points.
	CRLFetch Bool `yaml:"crl_fetch"`
	// CRLRefresh is how often a downloaded CRL is fetched again, even before
	// its nextUpdate.
	CRLRefresh time.Duration `yaml:"crl_refresh"`
	// CRLMaxBytes bounds a downloaded CRL.
	CRLMaxBytes int64 `yaml:"crl_max_bytes"`
	// MaxAge bounds how long an OCSP answer is believed and cached, and how
	// old a CRL or OCSP answer without nextUpdate may be.
	MaxAge time.Duration `yaml:"max_age"`
	// ClockSkew is the tolerance on thisUpdate and nextUpdate.
	ClockSkew time.Duration `yaml:"clock_skew"`
	// Timeout bounds each OCSP request and CRL download.
	Timeout time.Duration `yaml:"timeout"`
	// RetryAfter is how long a responder or distribution point that failed
	// is left alone before it is asked again (logins meanwhile fall to the
	// other source, or are refused).
	RetryAfter time.Duration `yaml:"retry_after"`
	// CacheSize bounds the OCSP answers kept.
	CacheSize int `yaml:"cache_size"`
	// FailOpen accepts a card whose status no source can give (a responder
	// down, a stale CRL), with a warning in the log. Never a revoked card.
	FailOpen Bool `yaml:"fail_open"`
}

// Bool is a setting that is true or false, in YAML and in its variable
// (strconv.ParseBool: true, false, 1, 0).
type Bool bool

// UnmarshalText parses a boolean.
func (b *Bool) UnmarshalText(text []byte) error {
	v, err := strconv.ParseBool(strings.TrimSpace(string(text)))
	if err != nil {
		return fmt.Errorf("want true or false, got %q", text)
	}
	*b = Bool(v)
	return nil
}

// DefaultConfig is the method switched off, with the checks of SPEC §5 ready.
func DefaultConfig() Config {
	return Config{
		PolicyOID:      PolicyCNS,
		ReloadInterval: time.Minute,
		Revocation: Revocation{
			OCSP: true, OCSPNonce: true, CRL: true, CRLFetch: true,
			CRLRefresh: time.Hour, CRLMaxBytes: 64 << 20,
			MaxAge: 24 * time.Hour, ClockSkew: 5 * time.Minute, Timeout: 5 * time.Second,
			RetryAfter: 30 * time.Second, CacheSize: 10000,
		},
	}
}

// section is the method's configuration key.
const section = "cns"

// settings binds every field of Config to its variable.
var settings = func() []config.Setting[Config] {
	type C = Config
	b := func(path, env string, f func(*C) *Bool) config.Setting[C] {
		return config.TextSetting(path, env, func(c *C) encoding.TextUnmarshaler { return f(c) })
	}
	return []config.Setting[C]{
		b("enabled", "PONTE_CNS_ENABLED", func(c *C) *Bool { return &c.Enabled }),
		config.StringSetting("card_url", "PONTE_CNS_CARD_URL", func(c *C) *string { return &c.CardURL }),
		config.StringSetting("ca_file", "PONTE_CNS_CA_FILE", func(c *C) *string { return &c.CAFile }),
		config.StringSetting("policy_oid", "PONTE_CNS_POLICY_OID", func(c *C) *string { return &c.PolicyOID }),
		b("serial_number_fallback", "PONTE_CNS_SERIAL_NUMBER_FALLBACK", func(c *C) *Bool { return &c.SerialNumberFallback }),
		config.DurationSetting("reload_interval", "PONTE_CNS_RELOAD_INTERVAL", func(c *C) *time.Duration { return &c.ReloadInterval }),
		b("revocation.ocsp", "PONTE_CNS_OCSP", func(c *C) *Bool { return &c.Revocation.OCSP }),
		config.StringSetting("revocation.ocsp_url", "PONTE_CNS_OCSP_URL", func(c *C) *string { return &c.Revocation.OCSPURL }),
		b("revocation.ocsp_nonce", "PONTE_CNS_OCSP_NONCE", func(c *C) *Bool { return &c.Revocation.OCSPNonce }),
		b("revocation.crl", "PONTE_CNS_CRL", func(c *C) *Bool { return &c.Revocation.CRL }),
		config.StringSetting("revocation.crl_dir", "PONTE_CNS_CRL_DIR", func(c *C) *string { return &c.Revocation.CRLDir }),
		b("revocation.crl_fetch", "PONTE_CNS_CRL_FETCH", func(c *C) *Bool { return &c.Revocation.CRLFetch }),
		config.DurationSetting("revocation.crl_refresh", "PONTE_CNS_CRL_REFRESH", func(c *C) *time.Duration { return &c.Revocation.CRLRefresh }),
		config.IntSetting("revocation.crl_max_bytes", "PONTE_CNS_CRL_MAX_BYTES", func(c *C) *int64 { return &c.Revocation.CRLMaxBytes }),
		config.DurationSetting("revocation.max_age", "PONTE_CNS_REVOCATION_MAX_AGE", func(c *C) *time.Duration { return &c.Revocation.MaxAge }),
		config.DurationSetting("revocation.clock_skew", "PONTE_CNS_CLOCK_SKEW", func(c *C) *time.Duration { return &c.Revocation.ClockSkew }),
		config.DurationSetting("revocation.timeout", "PONTE_CNS_REVOCATION_TIMEOUT", func(c *C) *time.Duration { return &c.Revocation.Timeout }),
		config.DurationSetting("revocation.retry_after", "PONTE_CNS_REVOCATION_RETRY_AFTER", func(c *C) *time.Duration { return &c.Revocation.RetryAfter }),
		config.IntSetting("revocation.cache_size", "PONTE_CNS_CACHE_SIZE", func(c *C) *int { return &c.Revocation.CacheSize }),
		b("revocation.fail_open", "PONTE_CNS_FAIL_OPEN", func(c *C) *Bool { return &c.Revocation.FailOpen }),
	}
}()

// Settings are the variables of the "cns" section, for documentation and tests.
func Settings() []config.Setting[Config] { return settings }

// Validate checks the configuration and reports every bad setting, each
// naming its YAML path and its variable (a *config.FieldError). A method
// that is not enabled is not checked further.
func (c Config) Validate() error {
	if !c.Enabled {
		return nil
	}
	var errs []error
	bad := func(path, format string, a ...any) {
		errs = append(errs, config.Invalid(section, settings, path, fmt.Errorf(format, a...)))
	}
	if err := checkCardURL(c.CardURL); err != nil {
		bad("card_url", "%v", err)
	}
	if c.CAFile == "" {
		bad("ca_file", "is required: the PEM bundle of the CNS certificate authorities")
	}
	if _, err := x509.ParseOID(c.PolicyOID); err != nil {
		bad("policy_oid", "%q is not a dotted object identifier such as %s", c.PolicyOID, PolicyCNS)
	}
	r := c.Revocation
	if u := r.OCSPURL; u != "" {
		if p, err := url.Parse(u); err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" {
			bad("revocation.ocsp_url", "must be an http(s) URL")
		}
	}
	if r.CRLDir != "" && !r.CRL {
		bad("revocation.crl_dir", "is set but revocation.crl is false")
	}
	for path, d := range map[string]time.Duration{
		"reload_interval": c.ReloadInterval, "revocation.crl_refresh": r.CRLRefresh, "revocation.max_age": r.MaxAge,
		"revocation.timeout": r.Timeout, "revocation.retry_after": r.RetryAfter,
	} {
		if d <= 0 {
			bad(path, "must be a positive duration such as 1m, got %v", d)
		}
	}
	if r.ClockSkew < 0 || r.ClockSkew > time.Hour {
		bad("revocation.clock_skew", "must be between 0 and 1h, got %v", r.ClockSkew)
	}
	if r.CRLMaxBytes < 1<<10 || r.CRLMaxBytes > 1<<30 {
		bad("revocation.crl_max_bytes", "must be between 1 KiB and 1 GiB, got %d", r.CRLMaxBytes)
	}
	if r.CacheSize < 1 || r.CacheSize > 10_000_000 {
		bad("revocation.cache_size", "must be between 1 and 10000000, got %d", r.CacheSize)
	}
	if !r.OCSP && !r.CRL && !r.FailOpen {
		bad("revocation.ocsp", "OCSP and CRL are both off: every card would be refused (set revocation.fail_open to accept cards unchecked)")
	}
	slices.SortFunc(errs, func(a, b error) int { return strings.Compare(a.Error(), b.Error()) })
	return errors.Join(errs...)
}

// checkCardURL accepts an https URL of scheme, host and optional port only.
func checkCardURL(s string) error {
	if s == "" {
		return errors.New("is required: the public https URL of the card listener, e.g. https://carta.login.inps.it")
	}
	u, err := url.Parse(s)
	switch {
	case err != nil || u.Host == "" || u.Opaque != "":
		return errors.New("must be an absolute https URL")
	case u.Scheme != "https":
		return errors.New("must be https: the card listener is TLS")
	case u.User != nil || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "":
		return errors.New("must be scheme://host[:port] only: the card listener serves Ponte's own paths")
	}
	return nil
}
