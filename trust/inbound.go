package trust

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
)

// ServerTLSConfig is the inbound TLS policy for connections from ISE: TLS
// 1.2 or later, and with TLS 1.2 only forward-secret AEAD suites (TLS 1.3
// suites are all modern and not configurable). HTTP/1.1 is the only
// application protocol offered; ISE speaks nothing else. getCert supplies
// the certificate.
func ServerTLSConfig(getCert func(*tls.ClientHelloInfo) (*tls.Certificate, error)) *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		CipherSuites: []uint16{
			tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
			tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
			tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
			tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
			tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
			tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
		},
		NextProtos:     []string{"http/1.1"},
		GetCertificate: getCert,
	}
}

// FileCertificate serves a PEM certificate and key from disk and picks up
// new files without a restart: before each handshake it looks at both
// files, and if either changed (replaced, rewritten, resized) it loads the
// pair again. A pair that does not load (half written, mismatched) is
// logged and the previous certificate stays in service.
type FileCertificate struct {
	certFile, keyFile string
	log               *slog.Logger

	cur atomic.Pointer[loadedPair]
	mu  sync.Mutex // serialises reloads
}

type loadedPair struct {
	cert          *tls.Certificate
	certFI, keyFI os.FileInfo
}

// NewFileCertificate loads certFile and keyFile, failing if they do not
// hold a matching certificate and key.
func NewFileCertificate(certFile, keyFile string, log *slog.Logger) (*FileCertificate, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	f := &FileCertificate{certFile: certFile, keyFile: keyFile, log: log}
	p, err := f.load()
	if err != nil {
		return nil, err
	}
	f.cur.Store(p)
	return f, nil
}

func (f *FileCertificate) load() (*loadedPair, error) {
	certFI, err1 := os.Stat(f.certFile)
	keyFI, err2 := os.Stat(f.keyFile)
	if err := errors.Join(err1, err2); err != nil {
		return nil, fmt.Errorf("tls files: %w", err)
	}
	cert, err := tls.LoadX509KeyPair(f.certFile, f.keyFile)
	if err != nil {
		return nil, fmt.Errorf("tls files %s, %s: %w", f.certFile, f.keyFile, err)
	}
	return &loadedPair{cert: &cert, certFI: certFI, keyFI: keyFI}, nil
}

func changed(old os.FileInfo, name string) bool {
	fi, err := os.Stat(name)
	if err != nil {
		return false // gone for a moment while being replaced: keep serving
	}
	return !os.SameFile(old, fi) || !fi.ModTime().Equal(old.ModTime()) || fi.Size() != old.Size()
}

// GetCertificate is a tls.Config.GetCertificate.
func (f *FileCertificate) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	p := f.cur.Load()
	if !changed(p.certFI, f.certFile) && !changed(p.keyFI, f.keyFile) {
		return p.cert, nil
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if p = f.cur.Load(); !changed(p.certFI, f.certFile) && !changed(p.keyFI, f.keyFile) {
		return p.cert, nil // another handshake reloaded meanwhile
	}
	np, err := f.load()
	if err != nil {
		f.log.Warn("TLS certificate files changed but do not load; still serving the previous certificate", "err", err)
		// Remember the bad files' state so each handshake does not retry.
		certFI, _ := os.Stat(f.certFile)
		keyFI, _ := os.Stat(f.keyFile)
		if certFI != nil && keyFI != nil {
			f.cur.Store(&loadedPair{cert: p.cert, certFI: certFI, keyFI: keyFI})
		}
		return p.cert, nil
	}
	f.cur.Store(np)
	f.log.Info("TLS certificate reloaded", "cert_file", f.certFile, "subject", np.cert.Leaf.Subject.String(),
		"not_after", np.cert.Leaf.NotAfter.UTC())
	return np.cert, nil
}
