package cns

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/ocsp"
)

// maxFetchedCRLs bounds the distribution points whose CRLs are kept.
const maxFetchedCRLs = 256

// revocationChecker says whether a certificate is revoked: OCSP first, when
// the certificate names a responder (or one is configured), then CRLs (files
// and distribution points). Its methods are safe for concurrent use.
type revocationChecker struct {
	cfg       Revocation
	trust     *trustStore
	client    *http.Client
	now       func() time.Time
	log       *slog.Logger
	ocspCache *lru[ocspKey, ocspAnswer]
	fetched   *lru[string, *fetchedCRL]
	fetchMu   sync.Mutex // creates fetchedCRL entries
	health    *healthBook
	metrics   *metrics
}

// fetchedCRL is the CRL of one distribution point, fetched and refreshed.
type fetchedCRL struct {
	mu        sync.Mutex // one download at a time
	list      *crlList
	fetchedAt time.Time
	err       error
	failedAt  time.Time
}

// check judges the revocation of cert, issued by issuer. It returns a
// refusal when cert is revoked, or when its status cannot be had and
// FailOpen is off; forgiven is that failure when FailOpen let it through.
// A CA certificate (leaf false) that names no source is not checked.
func (c *revocationChecker) check(ctx context.Context, cert, issuer *x509.Certificate, leaf bool) (forgiven, r *refusal) {
	var failures []*refusal
	// The name in the log: a card's CN carries its holder's codice fiscale.
	name := cert.Subject.CommonName
	if leaf {
		name = maskCN(name)
	}
	sourced := false
	if c.cfg.OCSP {
		if url := c.ocspURL(cert, leaf); url != "" {
			sourced = true
			a, r := c.ocspStatus(ctx, cert, issuer, url)
			if r == nil {
				switch a.status {
				case ocsp.Good:
					return nil, nil
				case ocsp.Revoked:
					return nil, refuse(ReasonRevoked, "OCSP %s: %q revoked at %s", url, name, a.revokedAt.UTC().Format(time.RFC3339))
				default:
					return nil, refuse(ReasonOCSPUnknown, "OCSP %s does not know %q", url, name)
				}
			}
			failures = append(failures, r)
		}
	}
	if c.cfg.CRL {
		revoked, r, any := c.crlStatus(ctx, cert, issuer)
		if any {
			sourced = true
			switch {
			case r == nil && revoked:
				return nil, refuse(ReasonRevoked, "CRL: %q is listed", name)
			case r == nil:
				return nil, nil
			}
			failures = append(failures, r)
		}
	}
	if !sourced {
		if !leaf {
			return nil, nil
		}
		failures = append(failures, refuse(ReasonNoRevocationSource, "%q names no OCSP responder or CRL distribution point, and no CRL file covers it", name))
	}
	// The first source's reason (OCSP's, when asked), every source's detail.
	errs := make([]error, len(failures))
	for i, f := range failures {
		errs[i] = f
	}
	failure := &refusal{Reason: failures[0].Reason, Err: errors.Join(errs...)}
	if c.cfg.FailOpen {
		return failure, nil
	}
	return nil, failure
}

// ocspURL is the responder to ask about cert: the configured one for a
// card, else the first http(s) responder it names.
func (c *revocationChecker) ocspURL(cert *x509.Certificate, leaf bool) string {
	if leaf && c.cfg.OCSPURL != "" {
		return c.cfg.OCSPURL
	}
	for _, u := range cert.OCSPServer {
		if strings.HasPrefix(u, "http://") || strings.HasPrefix(u, "https://") {
			return u
		}
	}
	return ""
}

// crlStatus judges cert by the CRLs that cover it: the files of its issuer,
// and those of its http distribution points. sourced is false when there is
// none to ask. A fresh, correctly signed CRL that lists it revokes it; a
// fresh one that does not clears it; stale ones and failures say why there
// is no answer.
func (c *revocationChecker) crlStatus(ctx context.Context, cert, issuer *x509.Certificate) (revoked bool, r *refusal, sourced bool) {
	var lists []*crlList
	var errs []error
	for _, l := range c.trust.current().crls[string(cert.RawIssuer)] {
		if l.covers(cert) {
			lists = append(lists, l)
		}
	}
	sourced = len(lists) > 0
	if c.cfg.CRLFetch {
		for _, u := range cert.CRLDistributionPoints {
			if !strings.HasPrefix(u, "http://") && !strings.HasPrefix(u, "https://") {
				continue
			}
			sourced = true
			l, err := c.fetchCRL(ctx, u, issuer)
			if err != nil {
				errs = append(errs, err)
			}
			if l != nil && l.covers(cert) {
				lists = append(lists, l)
			}
		}
	}
	if !sourced {
		return false, nil, false
	}
	now := c.now()
	fresh, stale := false, false
	for _, l := range lists {
		if err := l.signedBy(issuer); err != nil {
			errs = append(errs, fmt.Errorf("CRL %s: %w", l.source, err))
			continue
		}
		if err := c.crlFresh(l, now); err != nil {
			stale = true
			errs = append(errs, err)
			continue
		}
		fresh = true
		if l.isRevoked(cert) {
			return true, nil, true
		}
	}
	switch {
	case fresh:
		return false, nil, true
	case stale:
		return false, &refusal{Reason: ReasonCRLStale, Err: errors.Join(errs...)}, true
	case len(errs) == 0:
		errs = append(errs, errors.New("no CRL covers the certificate"))
	}
	return false, &refusal{Reason: ReasonCRLUnavailable, Err: errors.Join(errs...)}, true
}

// crlFresh refuses a CRL past its nextUpdate (or, without one, older than
// MaxAge), or from the future.
func (c *revocationChecker) crlFresh(l *crlList, now time.Time) error {
	skew := c.cfg.ClockSkew
	switch {
	case l.thisUpdate.After(now.Add(skew)):
		return fmt.Errorf("CRL %s: thisUpdate %s is in the future", l.source, l.thisUpdate.UTC().Format(time.RFC3339))
	case !l.nextUpdate.IsZero() && l.nextUpdate.Before(now.Add(-skew)):
		return fmt.Errorf("CRL %s: stale, nextUpdate was %s", l.source, l.nextUpdate.UTC().Format(time.RFC3339))
	case l.nextUpdate.IsZero() && l.thisUpdate.Add(c.cfg.MaxAge).Before(now):
		return fmt.Errorf("CRL %s: stale, issued %s without nextUpdate", l.source, l.thisUpdate.UTC().Format(time.RFC3339))
	}
	return nil
}

// fetchCRL returns the CRL of a distribution point, downloading it when
// there is none yet, when CRLRefresh has passed, or when it is past its
// nextUpdate; a distribution point that failed is left alone for RetryAfter
// (the last CRL it gave, if any, still answers while fresh). A download
// signed by anyone but issuer is refused.
func (c *revocationChecker) fetchCRL(ctx context.Context, url string, issuer *x509.Certificate) (*crlList, error) {
	c.fetchMu.Lock()
	e, ok := c.fetched.get(url)
	if !ok {
		e = &fetchedCRL{}
		c.fetched.put(url, e)
	}
	c.fetchMu.Unlock()

	e.mu.Lock()
	defer e.mu.Unlock()
	now := c.now()
	due := e.list == nil || now.Sub(e.fetchedAt) >= c.cfg.CRLRefresh ||
		(!e.list.nextUpdate.IsZero() && now.After(e.list.nextUpdate))
	if !due {
		return e.list, nil
	}
	if e.err != nil && now.Sub(e.failedAt) < c.cfg.RetryAfter {
		return e.list, e.err
	}
	l, err := c.downloadCRL(ctx, url, issuer)
	c.metrics.crlFetches.Add(1)
	if err != nil {
		c.metrics.crlFailures.Add(1)
		e.err, e.failedAt = fmt.Errorf("CRL %s: %w", url, err), now
		c.health.fail(sourceCRL, url, e.err, now, c.cfg.RetryAfter)
		c.log.WarnContext(ctx, "cns: CRL download failed", "url", url, "err", err)
		return e.list, e.err
	}
	e.list, e.fetchedAt, e.err = l, now, nil
	c.health.ok(sourceCRL, url, now)
	return l, nil
}

// downloadCRL fetches and parses one CRL, bounded by CRLMaxBytes and
// Timeout, and checks issuer signed it.
func (c *revocationChecker) downloadCRL(ctx context.Context, url string, issuer *x509.Certificate) (*crlList, error) {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("HTTP %d", resp.StatusCode)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, c.cfg.CRLMaxBytes+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > c.cfg.CRLMaxBytes {
		return nil, fmt.Errorf("larger than %d bytes (revocation.crl_max_bytes)", c.cfg.CRLMaxBytes)
	}
	l, err := parseCRL(data, url)
	if err != nil {
		return nil, err
	}
	if err := l.signedBy(issuer); err != nil {
		return nil, fmt.Errorf("signature: %w", err)
	}
	return l, nil
}

// refresh downloads, ahead of the logins that would wait for them, the CRLs
// of distribution points that are due, and forgets expired OCSP answers.
func (c *revocationChecker) refresh(ctx context.Context) {
	now := c.now()
	c.ocspCache.removeIf(func(a ocspAnswer) bool { return !now.Before(a.expires) })
	for _, d := range c.dueCRLs(now) {
		if ctx.Err() != nil {
			return
		}
		_, _ = c.fetchCRL(ctx, d.url, d.issuer)
	}
}

// dueCRL is a distribution point to download again, and the CA that signed
// its last CRL.
type dueCRL struct {
	url    string
	issuer *x509.Certificate
}

// dueCRLs lists the distribution points whose CRL is due.
func (c *revocationChecker) dueCRLs(now time.Time) []dueCRL {
	var out []dueCRL
	urls := c.fetched.keys()
	slices.Sort(urls)
	for _, u := range urls {
		e, ok := c.fetched.get(u)
		if !ok {
			continue
		}
		e.mu.Lock()
		l, fetchedAt := e.list, e.fetchedAt
		e.mu.Unlock()
		if l == nil {
			continue
		}
		if now.Sub(fetchedAt) >= c.cfg.CRLRefresh || (!l.nextUpdate.IsZero() && now.After(l.nextUpdate)) {
			if issuer := l.signer(); issuer != nil {
				out = append(out, dueCRL{u, issuer})
			}
		}
	}
	return out
}
