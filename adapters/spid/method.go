package spid

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"sync/atomic"
	"time"

	"github.com/beevik/etree"
	"github.com/crewjam/saml"
	dsig "github.com/russellhaering/goxmldsig"

	"github.com/ponte-id/ponte/adapters/spid/testidp"
	"github.com/ponte-id/ponte/idp"
	"github.com/ponte-id/ponte/internal/admission"
	"github.com/ponte-id/ponte/internal/config"
	"github.com/ponte-id/ponte/internal/method"
)

// Plug is SPID as cmd/ponte lists it: its configuration section and Open.
var Plug = method.Plug{Section: section, Open: Open}

// defaultMount is where the core mounts the SPID pages.
const defaultMount = "/login/" + string(idp.MethodSPID)

// testIDPPath is where the test identity provider lives, below the mount.
const testIDPPath = "/test-idp"

// Open decodes the "spid" section (defaults, YAML, PONTE_SPID_* variables),
// validates it, loads the SP's key and certificate (generated in dev mode
// when none is configured), builds and signs the SP's metadata, reads the
// identity providers' metadata files, and returns the SPID login method; a
// metadata that cannot be built or signed fails Open, never a page. The registry's URL is read by the method's
// runner, not here: Open does no network I/O. A section that does not
// enable SPID gives a method that reaches no level: the chooser never lists it.
func Open(sec config.Section, d method.Deps) (idp.Authenticator, error) {
	cfg := DefaultConfig()
	if err := config.Decode(sec, &cfg, settings); err != nil {
		return nil, err
	}
	if err := cfg.Validate(d.Dev); err != nil {
		return nil, err
	}
	log := d.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	now := d.Now
	if now == nil {
		now = time.Now
	}
	a := &authenticator{cfg: cfg, log: log, now: now, clock: clockOf(now), minRefresh: time.Minute}
	var err error
	if a.acs, err = cfg.acsGate(); err != nil {
		return nil, config.Invalid(section, settings, "acs_concurrency", err)
	}
	if !cfg.on(d.Dev) {
		return a, nil
	}
	a.enabled = true
	a.issuer = d.Issuer
	// The core mounts a method's pages at /login/<method> (idp.Authenticator);
	// the metadata names the ACS and SLO there. Handler checks the host agrees.
	a.base = d.Issuer + defaultMount
	a.entityID = cfg.EntityID
	if a.entityID == "" {
		a.entityID = d.Issuer + defaultMount + "/metadata"
	}
	if cfg.CertFile != "" {
		if a.kp, err = LoadKeypair(cfg.CertFile, cfg.KeyFile); err != nil {
			return nil, config.Invalid(section, settings, "cert_file", err)
		}
	} else {
		log.Warn("SPID: no SP certificate configured; dev mode generates one (production loads INPS's: spid.cert_file, spid.key_file)")
		if a.kp, err = NewSPKeypair(SPCertificate{EntityID: a.entityID, IPACode: cfg.Contact.IPACode, Organization: cfg.Organization.Name}, now()); err != nil {
			return nil, err
		}
	}
	a.source = metadataSource{files: cfg.IDPMetadataFiles, url: cfg.IDPMetadataURL, clock: a.clock,
		client: registryClient(nil)}
	if cfg.IDPMetadataCertFile != "" {
		if a.source.signer, err = loadCert(cfg.IDPMetadataCertFile); err != nil {
			return nil, config.Invalid(section, settings, "idp_metadata_cert_file", err)
		}
	}
	if cfg.TestIDP {
		base := d.Issuer + defaultMount + testIDPPath
		if a.testIDP, err = testidp.New(testidp.Config{EntityID: base, BaseURL: base, Now: now}); err != nil {
			return nil, err
		}
		a.source.extra = [][]byte{a.testIDP.Metadata()}
	}
	if a.metadata, err = a.buildMetadata(); err != nil {
		return nil, err
	}
	if a.testIDP != nil {
		if err := a.testIDP.TrustSP(a.metadata); err != nil {
			return nil, fmt.Errorf("spid: the test identity provider cannot read the SP metadata: %w", err)
		}
	}
	if cfg.IDPMetadataURL == "" {
		if err := a.reload(context.Background()); err != nil {
			return nil, config.Invalid(section, settings, "idp_metadata_files", err)
		}
	}
	return a, nil
}

func loadCert(path string) (*x509.Certificate, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != "CERTIFICATE" {
		return nil, errors.New("no PEM certificate")
	}
	return x509.ParseCertificate(blk.Bytes)
}

// authenticator is SPID as a login method: the SP's pages (chooser, login
// URL, assertion consumer, single logout, metadata), the identity providers'
// registry refreshed in the background, and single logout at Ponte's logout.
type authenticator struct {
	cfg     Config
	enabled bool
	log     *slog.Logger
	now     func() time.Time
	clock   *dsig.Clock

	issuer string
	// base is the public URL of the method's pages (issuer + mount).
	base     string
	entityID string
	kp       Keypair
	// metadata is the SP's signed metadata, built by Open.
	metadata []byte
	source   metadataSource
	registry registry
	// cacheDuration is the cacheDuration of the metadata last loaded (a
	// time.Duration; 0 when none was given): it bounds the refresh interval,
	// though never below minRefresh.
	cacheDuration atomic.Int64
	minRefresh    time.Duration
	testIDP       *testidp.IdP

	// web is the handler's state, once the host has said where it is mounted.
	web *web

	// acs bounds the SAML responses verified at once; refusals counts the
	// responses refused, by reason (CollectMetrics).
	acs      *admission.Gate
	refusals refusalCounts
}

var (
	_ idp.Authenticator     = (*authenticator)(nil)
	_ idp.CrossSiteReturns  = (*authenticator)(nil)
	_ idp.BodyLimit         = (*authenticator)(nil)
	_ idp.Runner            = (*authenticator)(nil)
	_ idp.LogoutParticipant = (*authenticator)(nil)
)

func (*authenticator) Method() idp.Method { return idp.MethodSPID }

func (*authenticator) Label(string) string { return "SPID" }

// MaxLevel is dispositivo: SPID level 2 and above. A method that is not
// enabled reaches no level, so the chooser never lists it.
func (a *authenticator) MaxLevel() idp.Level {
	if !a.enabled {
		return idp.LevelNone
	}
	return idp.LevelDispositivo
}

// CrossSitePaths are the assertion consumer service and the single logout
// endpoint: identity providers post to them from their own sites.
func (*authenticator) CrossSitePaths() []string { return []string{"/acs", "/slo"} }

// MaxBodyBytes lets a SAML message through the edge (its form encoding
// included); the pages enforce MaxResponseBytes on the message itself.
func (a *authenticator) MaxBodyBytes() int64 { return int64(a.cfg.MaxResponseBytes)*2 + 4096 }

// Run refreshes the identity providers' metadata every cfg.Refresh (and
// reads the registry's URL at once) until ctx ends.
func (a *authenticator) Run(ctx context.Context) error {
	if !a.enabled {
		<-ctx.Done()
		return nil
	}
	if a.cfg.IDPMetadataURL != "" {
		for ctx.Err() == nil {
			if err := a.reload(ctx); err == nil {
				break
			} else {
				a.log.ErrorContext(ctx, "SPID identity providers' metadata not loaded; retrying in a minute", "err", err)
			}
			select {
			case <-ctx.Done():
			case <-time.After(time.Minute):
			}
		}
	}
	a.refresh(ctx, a.cfg.Refresh)
	return nil
}

// buildMetadata builds and signs the SP's metadata for the pages at a.base.
func (a *authenticator) buildMetadata() ([]byte, error) {
	md, err := spMetadata{EntityID: a.entityID, ACS: a.base + "/acs", SLO: a.base + "/slo", Keypair: a.kp,
		ServiceName: a.cfg.ServiceName, Org: a.cfg.Organization, Contact: a.cfg.Contact}.build()
	if err != nil {
		return nil, fmt.Errorf("spid: building and signing the SP metadata with the SP's key (spid.cert_file, spid.key_file): %w", err)
	}
	return md, nil
}

// Handler serves the SPID pages below the path the core mounts them on,
// which must be where the metadata Open built says they are.
func (a *authenticator) Handler(host idp.Host) http.Handler {
	if !a.enabled {
		return http.NotFoundHandler()
	}
	if base := a.issuer + host.MethodURL(""); base != a.base {
		// Identity providers would post where the metadata says, not here.
		a.log.Error("SPID: the pages are mounted elsewhere than the SP metadata says; SPID serves nothing", "mounted", base, "metadata", a.base)
		return http.NotFoundHandler()
	}
	w := &web{a: a, host: host, base: a.base,
		check: validator{EntityID: a.entityID, ACS: a.base + "/acs", Skew: a.cfg.ClockSkew, Clock: a.clock}}
	a.web = w
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", w.chooser)
	mux.HandleFunc("GET /start", w.start)
	mux.HandleFunc("POST /acs", w.acs)
	mux.HandleFunc("GET /slo", w.slo)
	mux.HandleFunc("POST /slo", w.slo)
	mux.HandleFunc("GET /logged-out", w.loggedOut)
	mux.HandleFunc("GET /metadata", w.serveMetadata)
	if a.testIDP != nil {
		mux.Handle(testIDPPath+"/", http.StripPrefix(testIDPPath, a.testIDP.Handler()))
	}
	return mux
}

// crewjamCheck is the second layer: crewjam's own validation of the
// response (signatures, Destination, InResponseTo, audience, times), with
// this SP's clock and no package-level state.
func (a *authenticator) crewjamCheck(raw []byte, st requestState, p *identityProvider, acs string) error {
	acsURL, err := url.Parse(acs)
	if err != nil {
		return err
	}
	sp := saml.ServiceProvider{
		EntityID: a.entityID, Key: a.kp.Key, Certificate: a.kp.Cert, AcsURL: *acsURL,
		IDPMetadata: p.Metadata, Clock: a.clock, RejectSHA1Signatures: true,
		SignatureVerifier: keyInfoTolerantVerifier{},
	}
	_, err = sp.ParseXMLResponse(raw, []string{st.ID}, *acsURL)
	var ire *saml.InvalidResponseError
	if errors.As(err, &ire) {
		return fmt.Errorf("%w", ire.PrivateErr)
	}
	return err
}

// keyInfoTolerantVerifier is crewjam's signature check with one
// difference: a KeyInfo that holds no certificate is dropped
// (dropEmptyKeyInfo) and each trusted certificate tried, as crewjam does for
// a KeyInfo without X509Certificate. el is crewjam's detached copy of the
// signed element.
type keyInfoTolerantVerifier struct{}

var _ saml.SignedElementVerifier = keyInfoTolerantVerifier{}

func (keyInfoTolerantVerifier) VerifySignature(vc *dsig.ValidationContext, el *etree.Element) error {
	_, err := keyInfoTolerantVerifier{}.VerifySignedElement(vc, el)
	return err
}

func (keyInfoTolerantVerifier) VerifySignedElement(vc *dsig.ValidationContext, el *etree.Element) (*etree.Element, error) {
	certs, err := vc.CertificateStore.Certificates()
	if err != nil {
		return nil, err
	}
	dropEmptyKeyInfo(el)
	var last error = errors.New("no trusted certificate")
	for _, cert := range certs {
		c := dsig.NewDefaultValidationContext(&dsig.MemoryX509CertificateStore{Roots: []*x509.Certificate{cert}})
		c.IdAttribute, c.Clock = vc.IdAttribute, vc.Clock
		signed, err := c.Validate(el)
		if err == nil {
			return signed, nil
		}
		last = err
	}
	return nil, last
}

// TestIDP returns the test identity provider of a method opened with
// spid.test_idp (dev mode), or nil: `ponte demo` gives it the demo citizens.
func TestIDP(m idp.Authenticator) *testidp.IdP {
	if a, ok := m.(*authenticator); ok {
		return a.testIDP
	}
	return nil
}

// ConfigOf returns the configuration a method opened by Open decoded (for
// tests and documentation).
func ConfigOf(m idp.Authenticator) (Config, bool) {
	if a, ok := m.(*authenticator); ok {
		return a.cfg, true
	}
	return Config{}, false
}
