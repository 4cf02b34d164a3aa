package spid

import (
	"context"
	"crypto/x509"
	"encoding/base64"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/beevik/etree"
	"github.com/crewjam/saml"
	dsig "github.com/russellhaering/goxmldsig"
)

// maxMetadataBytes bounds a metadata file or the registry's answer.
const maxMetadataBytes = 8 << 20

// identityProvider is one SPID identity provider as its metadata describes it.
type identityProvider struct {
	EntityID string
	// Name is its display name on the chooser.
	Name string
	// SSO and SLO are its endpoints by binding.
	SSO, SLO map[string]string
	// Certs sign its responses.
	Certs []*x509.Certificate
	// Metadata is its EntityDescriptor as crewjam reads it.
	Metadata *saml.EntityDescriptor
}

// registry holds the identity providers, replaced whole on refresh.
type registry struct {
	idps atomic.Pointer[map[string]*identityProvider]
}

func (r *registry) get(entityID string) (*identityProvider, bool) {
	m := r.idps.Load()
	if m == nil {
		return nil, false
	}
	p, ok := (*m)[entityID]
	return p, ok
}

// list returns the identity providers sorted by entityID.
func (r *registry) list() []*identityProvider {
	m := r.idps.Load()
	if m == nil {
		return nil
	}
	out := make([]*identityProvider, 0, len(*m))
	for _, p := range *m {
		out = append(out, p)
	}
	slices.SortFunc(out, func(a, b *identityProvider) int { return strings.Compare(a.EntityID, b.EntityID) })
	return out
}

func (r *registry) set(idps []*identityProvider) {
	m := make(map[string]*identityProvider, len(idps))
	for _, p := range idps {
		m[p.EntityID] = p
	}
	r.idps.Store(&m)
}

// metadataSource reads the identity providers' metadata: files, the
// registry's URL, and identity providers given in code (the test IdP).
type metadataSource struct {
	files  []string
	url    string
	signer *x509.Certificate // nil: files are trusted as the operator placed them
	extra  [][]byte
	client *http.Client
	clock  *dsig.Clock
}

// load reads every source; any failure fails the whole load (the caller
// keeps what it had). It returns the identity providers and the shortest
// cacheDuration the documents give (0 if none).
func (s metadataSource) load(ctx context.Context) ([]*identityProvider, time.Duration, error) {
	var docs [][]byte
	for _, f := range s.files {
		b, err := readLimited(f)
		if err != nil {
			return nil, 0, err
		}
		docs = append(docs, b)
	}
	if s.url != "" {
		b, err := s.fetch(ctx)
		if err != nil {
			return nil, 0, err
		}
		docs = append(docs, b)
	}
	var out []*identityProvider
	var cache time.Duration
	seen := map[string]bool{}
	for i, b := range docs {
		idps, v, err := parseIDPMetadata(b, s.signer, s.clock)
		if err != nil {
			return nil, 0, fmt.Errorf("spid: identity providers' metadata %d: %w", i+1, err)
		}
		out = append(out, idps...)
		if v.CacheDuration > 0 && (cache == 0 || v.CacheDuration < cache) {
			cache = v.CacheDuration
		}
	}
	for _, b := range s.extra {
		idps, _, err := parseIDPMetadata(b, nil, s.clock)
		if err != nil {
			return nil, 0, fmt.Errorf("spid: test identity provider's metadata: %w", err)
		}
		out = append(out, idps...)
	}
	for _, p := range out {
		if seen[p.EntityID] {
			return nil, 0, fmt.Errorf("spid: identity provider %s described twice", p.EntityID)
		}
		seen[p.EntityID] = true
	}
	if len(out) == 0 {
		return nil, 0, errors.New("spid: no identity provider in the metadata")
	}
	return out, cache, nil
}

func readLimited(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxMetadataBytes+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxMetadataBytes {
		return nil, fmt.Errorf("spid: %s is larger than %d bytes", path, maxMetadataBytes)
	}
	return b, nil
}

// registryClient fetches the registry's metadata over tr (nil: the default
// transport): 30 seconds at most, and no redirect away from https (but to
// loopback, for tests).
func registryClient(tr http.RoundTripper) *http.Client {
	return &http.Client{Timeout: 30 * time.Second, Transport: tr,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) >= 10 {
				return errors.New("spid: the registry redirects more than 10 times")
			}
			if !secureURL(req.URL) {
				return fmt.Errorf("spid: the registry redirects to %s: https only", req.URL.Redacted())
			}
			return nil
		}}
}

func (s metadataSource) fetch(ctx context.Context) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("spid: fetching the registry's metadata: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("spid: the registry's metadata: HTTP %d", resp.StatusCode)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxMetadataBytes+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxMetadataBytes {
		return nil, fmt.Errorf("spid: the registry's metadata is larger than %d bytes", maxMetadataBytes)
	}
	return b, nil
}

// parseIDPMetadata reads an EntitiesDescriptor or EntityDescriptor; with
// signer, its root must be signed by it, and only the signed element is read.
// A document past its validUntil (at clock's now) is refused; its validity
// gives the shortest cacheDuration.
func parseIDPMetadata(b []byte, signer *x509.Certificate, clock *dsig.Clock) ([]*identityProvider, metadataValidity, error) {
	if err := checkXMLLimits(b, 64, 200000); err != nil {
		return nil, metadataValidity{}, err
	}
	doc := etree.NewDocument()
	if err := doc.ReadFromBytes(b); err != nil {
		return nil, metadataValidity{}, err
	}
	root := doc.Root()
	if root == nil {
		return nil, metadataValidity{}, errors.New("no root element")
	}
	if signer != nil {
		signed, err := verifySigned(root, []*x509.Certificate{signer}, clock)
		if err != nil {
			return nil, metadataValidity{}, fmt.Errorf("the metadata's signature: %w", err)
		}
		root = signed
	}
	validity, err := checkValidity(root, clock.Now())
	if err != nil {
		return nil, metadataValidity{}, err
	}
	var eds []*etree.Element
	switch {
	case is(root, nsMetadata, "EntityDescriptor"):
		eds = []*etree.Element{root}
	case is(root, nsMetadata, "EntitiesDescriptor"):
		eds = root.FindElements(".//EntityDescriptor")
	default:
		return nil, metadataValidity{}, fmt.Errorf("the root is %s, not EntityDescriptor or EntitiesDescriptor", root.Tag)
	}
	var out []*identityProvider
	for _, el := range eds {
		p, ok, err := parseEntity(el)
		if err != nil {
			return nil, metadataValidity{}, err
		}
		if ok {
			out = append(out, p)
		}
	}
	return out, validity, nil
}

// parseEntity reads one EntityDescriptor; ok is false when it is not an
// identity provider.
func parseEntity(el *etree.Element) (*identityProvider, bool, error) {
	d := etree.NewDocument()
	d.SetRoot(el.Copy())
	// Keep the namespace declarations of the ancestors.
	for p := el.Parent(); p != nil; p = p.Parent() {
		for _, a := range p.Attr {
			if (a.Space == "xmlns" || (a.Space == "" && a.Key == "xmlns")) && d.Root().SelectAttr(a.FullKey()) == nil {
				d.Root().CreateAttr(a.FullKey(), a.Value)
			}
		}
	}
	raw, err := d.WriteToBytes()
	if err != nil {
		return nil, false, err
	}
	var ed saml.EntityDescriptor
	if err := xml.Unmarshal(raw, &ed); err != nil {
		return nil, false, fmt.Errorf("entity %q: %w", el.SelectAttrValue("entityID", ""), err)
	}
	if len(ed.IDPSSODescriptors) == 0 {
		return nil, false, nil
	}
	if ed.EntityID == "" {
		return nil, false, errors.New("an identity provider without entityID")
	}
	p := &identityProvider{EntityID: ed.EntityID, Name: ed.EntityID, SSO: map[string]string{}, SLO: map[string]string{}, Metadata: &ed}
	if ed.Organization != nil && len(ed.Organization.OrganizationDisplayNames) > 0 {
		p.Name = ed.Organization.OrganizationDisplayNames[0].Value
	}
	for _, d := range ed.IDPSSODescriptors {
		for _, s := range d.SingleSignOnServices {
			if _, ok := p.SSO[s.Binding]; !ok {
				p.SSO[s.Binding] = s.Location
			}
		}
		for _, s := range d.SingleLogoutServices {
			if _, ok := p.SLO[s.Binding]; !ok {
				p.SLO[s.Binding] = s.Location
			}
		}
		for _, k := range d.KeyDescriptors {
			if k.Use != "" && k.Use != "signing" {
				continue
			}
			for _, c := range k.KeyInfo.X509Data.X509Certificates {
				der, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(c.Data), ""))
				if err != nil {
					return nil, false, fmt.Errorf("entity %s: a certificate: %w", ed.EntityID, err)
				}
				cert, err := x509.ParseCertificate(der)
				if err != nil {
					return nil, false, fmt.Errorf("entity %s: a certificate: %w", ed.EntityID, err)
				}
				p.Certs = append(p.Certs, cert)
			}
		}
	}
	if len(p.Certs) == 0 {
		return nil, false, fmt.Errorf("entity %s: no signing certificate", ed.EntityID)
	}
	if p.SSO[bindingRedirect] == "" && p.SSO[bindingPOST] == "" {
		return nil, false, fmt.Errorf("entity %s: no SingleSignOnService for HTTP-Redirect or HTTP-POST", ed.EntityID)
	}
	return p, true, nil
}

// refresh reloads the registry until ctx ends: every interval, or sooner
// when the metadata last loaded says it may be cached for less
// (cacheDuration), though never more often than every minRefresh. A failed
// load keeps the identity providers the registry had, and the bound.
func (a *authenticator) refresh(ctx context.Context, interval time.Duration) {
	for {
		t := time.NewTimer(a.nextRefresh(interval))
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
			if err := a.reload(ctx); err != nil {
				a.log.WarnContext(ctx, "SPID identity providers' metadata not refreshed; the previous one stays", "err", err)
			}
		}
	}
}

// nextRefresh is how long until the next reload: interval, bounded by the
// cacheDuration of the metadata last loaded, and at least minRefresh.
func (a *authenticator) nextRefresh(interval time.Duration) time.Duration {
	if c := time.Duration(a.cacheDuration.Load()); c > 0 && c < interval {
		interval = max(c, a.minRefresh)
	}
	return interval
}

// reload reads the metadata once and swaps it in.
func (a *authenticator) reload(ctx context.Context) error {
	idps, cache, err := a.source.load(ctx)
	if err != nil {
		return err
	}
	a.registry.set(idps)
	a.cacheDuration.Store(int64(cache))
	a.log.InfoContext(ctx, "SPID identity providers loaded", "count", len(idps), "cache_duration", cache)
	return nil
}
