// Package trust owns how postern verifies SMS providers: the upstream root
// pool, the TLS client configuration and the HTTP transport used for provider
// calls, and the mapping of TLS failures to short client-safe reasons.
//
// Postern always verifies provider certificates itself. Nothing in this
// package can disable verification.
package trust

import (
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"

	"golang.org/x/crypto/x509roots/fallback/bundle"
)

// Source names where the base set of upstream roots came from.
type Source string

const (
	// SourceSystem means the host's trust store (x509.SystemCertPool).
	SourceSystem Source = "system"
	// SourceEmbedded means the Mozilla (NSS) roots compiled into postern from
	// golang.org/x/crypto/x509roots/fallback/bundle, used only when the host
	// has no roots at all.
	SourceEmbedded Source = "embedded"
)

// Report describes where the roots in a [Roots] came from, for logging at
// start-up.
type Report struct {
	// Source is the base set: the system pool or the embedded Mozilla set.
	Source Source
	// Embedded is the number of embedded roots added (0 unless Source is
	// SourceEmbedded).
	Embedded int
	// CAFiles is the number of certificates added from ca_files.
	CAFiles int
	// SystemErr is the error x509.SystemCertPool returned, if any. A non-nil
	// SystemErr always comes with Source == SourceEmbedded.
	SystemErr error
}

// String renders the report for a start-up log line, for example
// "embedded Mozilla set (117 roots) + 1 from ca_files".
func (r Report) String() string {
	var s string
	switch r.Source {
	case SourceEmbedded:
		s = "embedded Mozilla set (" + strconv.Itoa(r.Embedded) + " roots)"
	default:
		s = "system trust store"
	}
	if r.CAFiles > 0 {
		s += " + " + strconv.Itoa(r.CAFiles) + " from ca_files"
	}
	return s
}

// Roots is the immutable set of root certificates postern trusts for
// upstream (provider) connections. Build it with [LoadRoots].
type Roots struct {
	pool   *x509.CertPool
	report Report
	policy Policy      // see WithPolicy
	aia    *aiaFetcher // nil when AIA fetching is off
}

// LoadRoots builds the upstream root pool.
//
// The base set is the system pool (x509.SystemCertPool). Only when the system
// has no roots (a scratch container, or SSL_CERT_FILE/SSL_CERT_DIR pointing at
// empty places) or cannot load them, the embedded Mozilla set is used instead,
// with each root's distrust constraint honoured. Every certificate in every
// file of caFiles is then added. Each file must hold at least one PEM
// CERTIFICATE block and nothing else; all bad files are reported at once,
// each error naming its file.
func LoadRoots(caFiles []string) (*Roots, error) {
	var errs []error
	extra := make([]*x509.Certificate, 0, len(caFiles))
	for _, name := range caFiles {
		certs, err := readCAFile(name)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		extra = append(extra, certs...)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}

	var r Roots
	pool, sysErr := x509.SystemCertPool()
	if sysErr != nil || systemPoolEmpty(pool) {
		var err error
		pool, r.report.Embedded, err = embeddedPool()
		if err != nil {
			return nil, err
		}
		r.report.Source = SourceEmbedded
		r.report.SystemErr = sysErr
	} else {
		r.report.Source = SourceSystem
	}
	for _, c := range extra {
		pool.AddCert(c)
	}
	r.report.CAFiles = len(extra)
	r.pool = pool
	return &r, nil
}

// Report says where the roots came from.
func (r *Roots) Report() Report { return r.report }

// Pool returns a copy of the root pool; changing it does not affect r.
func (r *Roots) Pool() *x509.CertPool { return r.pool.Clone() }

// systemPoolEmpty reports whether a pool from x509.SystemCertPool holds no
// roots. On Linux the system pool is a plain pool loaded from the standard
// files and directories (or SSL_CERT_FILE/SSL_CERT_DIR), so it equals a new
// empty pool exactly when nothing was found. On macOS and Windows the pool is
// marked as backed by the platform verifier and never equals an empty pool,
// which is right: the platform verifier has its own roots.
func systemPoolEmpty(p *x509.CertPool) bool {
	return p == nil || p.Equal(x509.NewCertPool())
}

// embeddedPool builds a pool from the embedded Mozilla roots, without the
// global side effect of importing the fallback package.
func embeddedPool() (*x509.CertPool, int, error) {
	pool := x509.NewCertPool()
	n := 0
	for root := range bundle.Roots() {
		c, err := x509.ParseCertificate(root.Certificate)
		if err != nil {
			return nil, 0, fmt.Errorf("embedded root %d: %w", n, err)
		}
		if root.Constraint != nil {
			pool.AddCertWithConstraint(c, root.Constraint)
		} else {
			pool.AddCert(c)
		}
		n++
	}
	return pool, n, nil
}

// readCAFile parses every certificate in a PEM file. Errors name the file.
func readCAFile(name string) ([]*x509.Certificate, error) {
	data, err := os.ReadFile(name)
	if err != nil {
		// Name the file once, in the same form as the other errors.
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = fmt.Errorf("%s: %w", pe.Op, pe.Err)
		}
		return nil, fmt.Errorf("ca_files %q: %w", name, err)
	}
	var certs []*x509.Certificate
	for i := 1; ; i++ {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			return nil, fmt.Errorf("ca_files %q: PEM block %d: unexpected type %q, want CERTIFICATE", name, i, block.Type)
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("ca_files %q: PEM block %d: %w", name, i, err)
		}
		certs = append(certs, c)
	}
	if len(certs) == 0 {
		return nil, fmt.Errorf("ca_files %q: no certificates found", name)
	}
	return certs, nil
}
