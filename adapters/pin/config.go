package pin

import (
	"encoding"
	"errors"
	"fmt"
	"net"
	"net/mail"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/ponte-id/ponte/internal/config"
)

// Config is the PIN policy and its delivery: the "pin" section of Ponte's
// configuration, every field with its PONTE_* variable (settings). Every rule
// a policy might change is here.
type Config struct {
	// Params are the argon2id parameters for new hashes (stored with each
	// hash, so raising them rehashes each PIN at its next login).
	Params Params `yaml:"argon2"`
	// HashConcurrency bounds hashes in flight (the number of cores if 0).
	HashConcurrency int `yaml:"hash_concurrency"`
	// HashQueue bounds the checks waiting for a hashing slot (16 per slot if
	// 0), and HashMaxWait how long one waits (3s if 0); beyond either, a
	// check is refused with ErrBusy before its attempt counts.
	HashQueue   int           `yaml:"hash_queue"`
	HashMaxWait time.Duration `yaml:"hash_max_wait"`
	// Expiry forces a change this long after the last one (6 months by law of
	// its time; 0 switches it off, as NIST SP 800-63B recommends).
	Expiry time.Duration `yaml:"expiry"`
	// RequestCutoff: from this day online and phone requests are open only to
	// residents abroad without an Italian identity document (INPS, 1 October 2021).
	RequestCutoff Date `yaml:"request_cutoff"`
	// RecoveryTTL is the life of a recovery link; TicketTTL of a first-access change form.
	RecoveryTTL time.Duration `yaml:"recovery_ttl"`
	TicketTTL   time.Duration `yaml:"ticket_ttl"`
	// ReplacementTTL is how long the replacement an online revoca sends stays
	// usable; while it does, another revoca sends nothing.
	ReplacementTTL time.Duration `yaml:"replacement_ttl"`
	// MaxUpload is the size limit of each conversion document, in bytes.
	MaxUpload int64    `yaml:"max_upload"`
	Throttle  Throttle `yaml:",inline"`
	// Limits throttle the online request, recovery and revocation forms.
	Limits Limits `yaml:"limits"`
	// Delivery configures the senders of the PIN's messages.
	Delivery Delivery `yaml:"delivery"`
	// BaseURL is the provider's public URL (the issuer, never a setting of
	// its own); links in messages are built from it, never from a request's
	// Host header.
	BaseURL string `yaml:"-"`
}

// Delivery configures the outbox's senders. A channel without a sender keeps
// its messages queued; in dev mode unconfigured channels go to the
// development mailbox.
type Delivery struct {
	// Interval is how often the outbox is polled.
	Interval time.Duration `yaml:"interval"`
	Email    SMTP          `yaml:"email"`
	PEC      SMTP          `yaml:"pec"`
	// SMSURL is the SMS gateway's endpoint; SMSToken its bearer token.
	SMSURL   string `yaml:"sms_url"`
	SMSToken string `yaml:"sms_token"`
	// PostDir receives the daily print batch of letters.
	PostDir string `yaml:"post_dir"`
}

// SMTP is one outgoing mail server.
type SMTP struct {
	// Addr is host:port; empty means not configured.
	Addr     string `yaml:"addr"`
	From     string `yaml:"from"`
	Username string `yaml:"username"`
	Password string `yaml:"password"`
	// TLS is starttls, implicit, or none (loopback only).
	TLS string `yaml:"tls"`
}

// Date is a day (YYYY-MM-DD) that starts at midnight in Rome, the time zone
// of INPS's dated rules.
type Date struct{ time.Time }

// UnmarshalText parses YYYY-MM-DD.
func (d *Date) UnmarshalText(b []byte) error {
	t, err := time.ParseInLocation(time.DateOnly, string(b), rome)
	if err != nil {
		return fmt.Errorf("want a date YYYY-MM-DD, got %q", b)
	}
	d.Time = t
	return nil
}

// MarshalText formats the day.
func (d Date) MarshalText() ([]byte, error) { return []byte(d.Format(time.DateOnly)), nil }

// rome is the time zone of INPS's dated rules.
var rome = func() *time.Location {
	if l, err := time.LoadLocation("Europe/Rome"); err == nil {
		return l
	}
	return time.FixedZone("CET", 3600)
}()

// DefaultConfig is the policy of SPEC §3.
func DefaultConfig() Config {
	return Config{
		Params:         DefaultParams,
		Expiry:         6 * 30 * 24 * time.Hour,
		RequestCutoff:  Date{time.Date(2021, time.October, 1, 0, 0, 0, 0, rome)},
		RecoveryTTL:    15 * time.Minute,
		TicketTTL:      10 * time.Minute,
		ReplacementTTL: 30 * 24 * time.Hour,
		MaxUpload:      5 << 20,
		Throttle:       DefaultThrottle,
		Limits:         DefaultLimits,
		Delivery:       Delivery{Interval: 10 * time.Second, Email: SMTP{TLS: "starttls"}, PEC: SMTP{TLS: "starttls"}},
	}
}

// section is the method's configuration key.
const section = "pin"

// settings binds every field of Config to its variable.
var settings = func() []config.Setting[Config] {
	type C = Config
	smtp := func(path, env string, f func(*C) *SMTP) []config.Setting[C] {
		return []config.Setting[C]{
			config.StringSetting(path+".addr", env+"_ADDR", func(c *C) *string { return &f(c).Addr }),
			config.StringSetting(path+".from", env+"_FROM", func(c *C) *string { return &f(c).From }),
			config.StringSetting(path+".username", env+"_USERNAME", func(c *C) *string { return &f(c).Username }),
			config.StringSetting(path+".password", env+"_PASSWORD", func(c *C) *string { return &f(c).Password }),
			config.StringSetting(path+".tls", env+"_TLS", func(c *C) *string { return &f(c).TLS }),
		}
	}
	s := []config.Setting[C]{
		config.IntSetting("argon2.memory_kib", "PONTE_PIN_ARGON2_MEMORY_KIB", func(c *C) *uint32 { return &c.Params.MemoryKiB }),
		config.IntSetting("argon2.time", "PONTE_PIN_ARGON2_TIME", func(c *C) *uint32 { return &c.Params.Time }),
		config.IntSetting("argon2.threads", "PONTE_PIN_ARGON2_THREADS", func(c *C) *uint8 { return &c.Params.Threads }),
		config.IntSetting("hash_concurrency", "PONTE_PIN_HASH_CONCURRENCY", func(c *C) *int { return &c.HashConcurrency }),
		config.IntSetting("hash_queue", "PONTE_PIN_HASH_QUEUE", func(c *C) *int { return &c.HashQueue }),
		config.DurationSetting("hash_max_wait", "PONTE_PIN_HASH_MAX_WAIT", func(c *C) *time.Duration { return &c.HashMaxWait }),
		config.DurationSetting("expiry", "PONTE_PIN_EXPIRY", func(c *C) *time.Duration { return &c.Expiry }),
		config.TextSetting("request_cutoff", "PONTE_PIN_REQUEST_CUTOFF", func(c *C) encoding.TextUnmarshaler { return &c.RequestCutoff }),
		config.DurationSetting("recovery_ttl", "PONTE_PIN_RECOVERY_TTL", func(c *C) *time.Duration { return &c.RecoveryTTL }),
		config.DurationSetting("ticket_ttl", "PONTE_PIN_TICKET_TTL", func(c *C) *time.Duration { return &c.TicketTTL }),
		config.DurationSetting("replacement_ttl", "PONTE_PIN_REPLACEMENT_TTL", func(c *C) *time.Duration { return &c.ReplacementTTL }),
		config.IntSetting("max_upload", "PONTE_PIN_MAX_UPLOAD", func(c *C) *int64 { return &c.MaxUpload }),
		config.IntSetting("free_account_failures", "PONTE_PIN_FREE_ACCOUNT_FAILURES", func(c *C) *int { return &c.Throttle.FreeAccountFailures }),
		config.IntSetting("free_ip_failures", "PONTE_PIN_FREE_IP_FAILURES", func(c *C) *int { return &c.Throttle.FreeIPFailures }),
		config.DurationSetting("max_delay", "PONTE_PIN_MAX_DELAY", func(c *C) *time.Duration { return &c.Throttle.MaxDelay }),
		config.IntSetting("max_failures", "PONTE_PIN_MAX_FAILURES", func(c *C) *int { return &c.Throttle.MaxAccountFailures }),
		config.DurationSetting("lockout", "PONTE_PIN_LOCKOUT", func(c *C) *time.Duration { return &c.Throttle.Lockout }),
		config.DurationSetting("forget_ip", "PONTE_PIN_FORGET_IP", func(c *C) *time.Duration { return &c.Throttle.ForgetIP }),
		config.IntSetting("limits.per_citizen", "PONTE_PIN_LIMIT_PER_CITIZEN", func(c *C) *int { return &c.Limits.PerCitizen }),
		config.DurationSetting("limits.citizen_window", "PONTE_PIN_LIMIT_CITIZEN_WINDOW", func(c *C) *time.Duration { return &c.Limits.CitizenWindow }),
		config.IntSetting("limits.per_ip", "PONTE_PIN_LIMIT_PER_IP", func(c *C) *int { return &c.Limits.PerIP }),
		config.DurationSetting("limits.ip_window", "PONTE_PIN_LIMIT_IP_WINDOW", func(c *C) *time.Duration { return &c.Limits.IPWindow }),
		config.DurationSetting("delivery.interval", "PONTE_DELIVERY_INTERVAL", func(c *C) *time.Duration { return &c.Delivery.Interval }),
		config.StringSetting("delivery.sms_url", "PONTE_SMS_URL", func(c *C) *string { return &c.Delivery.SMSURL }),
		config.StringSetting("delivery.sms_token", "PONTE_SMS_TOKEN", func(c *C) *string { return &c.Delivery.SMSToken }),
		config.StringSetting("delivery.post_dir", "PONTE_POST_DIR", func(c *C) *string { return &c.Delivery.PostDir }),
	}
	s = append(s, smtp("delivery.email", "PONTE_SMTP", func(c *C) *SMTP { return &c.Delivery.Email })...)
	return append(s, smtp("delivery.pec", "PONTE_PEC", func(c *C) *SMTP { return &c.Delivery.PEC })...)
}()

// Validate checks the policy and reports every bad setting, each naming its
// YAML path and its variable (a *config.FieldError).
func (c Config) Validate() error {
	var errs []error
	bad := func(path, format string, a ...any) {
		errs = append(errs, config.Invalid(section, settings, path, fmt.Errorf(format, a...)))
	}
	if c.Params.MemoryKiB < 8*1024 {
		bad("argon2.memory_kib", "argon2id needs at least 8192 KiB (OWASP's minimum is 19456)")
	}
	if c.Params.Time < 1 || c.Params.Time > 100 {
		bad("argon2.time", "must be between 1 and 100 passes")
	}
	if c.Params.Threads < 1 {
		bad("argon2.threads", "must be at least 1")
	}
	if c.HashConcurrency < 0 || c.HashConcurrency > 256 {
		bad("hash_concurrency", "must be between 0 (one per core) and 256")
	}
	if c.HashQueue < 0 {
		bad("hash_queue", "must not be negative (0 is 16 per hashing slot)")
	}
	if c.HashMaxWait < 0 {
		bad("hash_max_wait", "must not be negative (0 is 3s)")
	}
	if c.Expiry < 0 {
		bad("expiry", "must not be negative (0 switches expiry off)")
	}
	if c.RequestCutoff.IsZero() {
		bad("request_cutoff", "is required, a date YYYY-MM-DD")
	}
	if c.RecoveryTTL <= 0 || c.RecoveryTTL > time.Hour {
		bad("recovery_ttl", "must be positive and at most 1h, got %v", c.RecoveryTTL)
	}
	if c.TicketTTL <= 0 {
		bad("ticket_ttl", "must be positive, got %v", c.TicketTTL)
	}
	if c.ReplacementTTL <= 0 {
		bad("replacement_ttl", "must be positive, got %v", c.ReplacementTTL)
	}
	if c.MaxUpload <= 0 || c.MaxUpload > 50<<20 {
		bad("max_upload", "must be between 1 byte and 50 MiB, got %d", c.MaxUpload)
	}
	t := c.Throttle
	if t.MaxAccountFailures < 1 || t.MaxAccountFailures > 100 {
		bad("max_failures", "must be between 1 and 100 (NIST SP 800-63B)")
	}
	for path, d := range map[string]time.Duration{"lockout": t.Lockout, "max_delay": t.MaxDelay, "forget_ip": t.ForgetIP,
		"limits.citizen_window": c.Limits.CitizenWindow, "limits.ip_window": c.Limits.IPWindow, "delivery.interval": c.Delivery.Interval} {
		if d <= 0 {
			bad(path, "must be a positive duration such as 15m, got %v", d)
		}
	}
	for path, n := range map[string]int{"free_account_failures": t.FreeAccountFailures, "free_ip_failures": t.FreeIPFailures} {
		if n < 0 {
			bad(path, "must not be negative")
		}
	}
	for path, n := range map[string]int{"limits.per_citizen": c.Limits.PerCitizen, "limits.per_ip": c.Limits.PerIP} {
		if n < 1 {
			bad(path, "must be at least 1")
		}
	}
	for path, m := range map[string]SMTP{"delivery.email": c.Delivery.Email, "delivery.pec": c.Delivery.PEC} {
		if m.Addr == "" {
			continue
		}
		if _, _, err := net.SplitHostPort(m.Addr); err != nil {
			bad(path+".addr", "must be host:port")
		}
		if _, err := mail.ParseAddress(m.From); err != nil {
			bad(path+".from", "must be an email address")
		}
		if !slices.Contains([]string{"starttls", "implicit", "none"}, m.TLS) {
			bad(path+".tls", "must be one of starttls, implicit, none, got %q", m.TLS)
		}
	}
	if u := c.Delivery.SMSURL; u != "" {
		if p, err := url.Parse(u); err != nil || (p.Scheme != "https" && p.Scheme != "http") || p.Host == "" {
			bad("delivery.sms_url", "must be an http(s) URL")
		}
	}
	slices.SortFunc(errs, func(a, b error) int { return strings.Compare(a.Error(), b.Error()) })
	return errors.Join(errs...)
}
