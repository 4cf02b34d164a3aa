package cns

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// trustSet is the CNS CAs and the CRL files, as loaded at one time.
type trustSet struct {
	roots *x509.CertPool
	cas   []*x509.Certificate
	// crls are the CRL files, by raw issuer name.
	crls map[string][]*crlList
	// caStamp is the SHA-256 of the CA bundle, crlStamp the CRL files'
	// names, sizes and modification times: a reload that finds the same
	// stamps keeps this set.
	caStamp, crlStamp string
	loadedAt          time.Time
}

// trustStore holds the current trustSet and reloads it when its files change;
// logins read it without a lock.
type trustStore struct {
	caFile, crlDir string
	cur            atomic.Pointer[trustSet]
	mu             sync.Mutex // one reload at a time
	// lastErr is the error of the last reload that failed (the previous set
	// stays in force), nil after a good one.
	lastErr atomic.Pointer[string]
}

// newTrustStore loads the files once; an error here fails the start.
func newTrustStore(caFile, crlDir string, now time.Time) (*trustStore, error) {
	s := &trustStore{caFile: caFile, crlDir: crlDir}
	if _, err := s.reload(now); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *trustStore) current() *trustSet { return s.cur.Load() }

// reload reads whichever file changed since the last load; changed says
// whether anything did. On an error the previous set stays in force.
func (s *trustStore) reload(now time.Time) (changed bool, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	defer func() {
		if err != nil {
			msg := err.Error()
			s.lastErr.Store(&msg)
		} else {
			s.lastErr.Store(nil)
		}
	}()
	prev := s.cur.Load()
	next := &trustSet{loadedAt: now}
	caData, err := os.ReadFile(s.caFile)
	if err != nil {
		return false, fmt.Errorf("cns: CA bundle: %w", err)
	}
	caStamp := fmt.Sprintf("%x", sha256.Sum256(caData))
	var crlFiles []string
	if s.crlDir != "" {
		if crlFiles, err = listCRLFiles(s.crlDir); err != nil {
			return false, err
		}
	}
	crlStamp, err := stamp(crlFiles)
	if err != nil {
		return false, err
	}
	if prev != nil && prev.caStamp == caStamp && prev.crlStamp == crlStamp {
		return false, nil
	}
	if prev != nil && prev.caStamp == caStamp {
		next.roots, next.cas = prev.roots, prev.cas
	} else if next.roots, next.cas, err = parseCAs(caData, s.caFile); err != nil {
		return false, err
	}
	if prev != nil && prev.crlStamp == crlStamp {
		next.crls = prev.crls
	} else if next.crls, err = loadCRLs(crlFiles); err != nil {
		return false, err
	}
	next.caStamp, next.crlStamp = caStamp, crlStamp
	s.cur.Store(next)
	return true, nil
}

// parseCAs reads a PEM bundle of CA certificates; each is a trust anchor.
func parseCAs(data []byte, path string) (*x509.CertPool, []*x509.Certificate, error) {
	pool := x509.NewCertPool()
	var cas []*x509.Certificate
	for rest := data; ; {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, nil, fmt.Errorf("cns: CA bundle %s: certificate %d: %w", path, len(cas)+1, err)
		}
		if !c.IsCA || !c.BasicConstraintsValid {
			return nil, nil, fmt.Errorf("cns: CA bundle %s: %q is not a CA certificate", path, c.Subject.CommonName)
		}
		pool.AddCert(c)
		cas = append(cas, c)
	}
	if len(cas) == 0 {
		return nil, nil, fmt.Errorf("cns: CA bundle %s holds no certificate", path)
	}
	return pool, cas, nil
}

// listCRLFiles returns the CRL files of dir (*.crl, *.pem, *.der), sorted.
func listCRLFiles(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("cns: CRL folder: %w", err)
	}
	var out []string
	for _, e := range entries {
		ext := strings.ToLower(filepath.Ext(e.Name()))
		if e.Type().IsRegular() && (ext == ".crl" || ext == ".pem" || ext == ".der") {
			out = append(out, filepath.Join(dir, e.Name()))
		}
	}
	slices.Sort(out)
	return out, nil
}

// loadCRLs parses CRL files, indexed by issuer.
func loadCRLs(files []string) (map[string][]*crlList, error) {
	out := map[string][]*crlList{}
	var errs []error
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		l, err := parseCRL(data, f)
		if err != nil {
			errs = append(errs, fmt.Errorf("cns: CRL file %w", err))
			continue
		}
		out[string(l.rawIssuer)] = append(out[string(l.rawIssuer)], l)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return out, nil
}

// stamp describes files by name, size and modification time.
func stamp(files []string) (string, error) {
	var b strings.Builder
	for _, f := range files {
		fi, err := os.Stat(f)
		if err != nil {
			return "", fmt.Errorf("cns: %w", err)
		}
		fmt.Fprintf(&b, "%s|%d|%d\n", f, fi.Size(), fi.ModTime().UnixNano())
	}
	return b.String(), nil
}
