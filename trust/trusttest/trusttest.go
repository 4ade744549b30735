// Package trusttest is a tiny in-memory test PKI for loopback TLS tests, in
// the spirit of net/http/httptest: make a CA, issue leaves (optionally via
// intermediates), serve them from an httptest.Server, and hand the CA to the
// code under test as a pool or a ca_files PEM file.
//
// All keys are ECDSA P-256 and live only in memory (except what WritePEM
// writes: public certificates, never keys). Default leaves are valid for the
// loopback names 127.0.0.1, ::1 and localhost only.
package trusttest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
)

// CA is a certificate authority: a root from [NewCA], or an intermediate
// from [CA.Intermediate] that chains up to its root.
type CA struct {
	cert   *x509.Certificate
	key    *ecdsa.PrivateKey
	parent *CA // nil for a root
}

// NewCA returns a new self-signed root CA valid from an hour ago for ten
// years.
func NewCA(t testing.TB) *CA {
	t.Helper()
	return newCA(t, nil, "trusttest root CA")
}

// Intermediate returns a new intermediate CA signed by ca. Leaves it issues
// carry the intermediates (not the root) in their chain unless
// [LeafOptions.LeafOnly] is set.
func (ca *CA) Intermediate(t testing.TB) *CA {
	t.Helper()
	return newCA(t, ca, "trusttest intermediate CA")
}

// IntermediateAIA is [CA.Intermediate] with issuerURLs in the new
// certificate's Authority Information Access "CA Issuers" extension, for
// chains whose every missing link must be fetched.
func (ca *CA) IntermediateAIA(t testing.TB, issuerURLs ...string) *CA {
	t.Helper()
	return newCA(t, ca, "trusttest intermediate CA", issuerURLs...)
}

func newCA(t testing.TB, parent *CA, cn string, issuerURLs ...string) *CA {
	t.Helper()
	key := newKey(t)
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial(t),
		Subject:               pkix.Name{CommonName: cn, Organization: []string{"postern trusttest"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(10 * 365 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		IssuingCertificateURL: issuerURLs,
	}
	signer, signerKey := tmpl, key
	if parent != nil {
		signer, signerKey = parent.cert, parent.key
	}
	return &CA{cert: create(t, tmpl, signer, &key.PublicKey, signerKey), key: key, parent: parent}
}

// LeafOptions configures [CA.Leaf]. The zero value gives a server
// certificate for 127.0.0.1, ::1 and localhost, valid from an hour ago for
// 24 hours, served with its intermediates.
type LeafOptions struct {
	// DNSNames and IPs are the subject alternative names. If both are empty
	// the defaults (127.0.0.1, ::1, localhost) are used.
	DNSNames []string
	IPs      []net.IP
	// NotBefore and NotAfter default to now-1h and now+24h. Set both in the
	// past for an expired certificate, or both in the future for one not
	// yet valid.
	NotBefore time.Time
	NotAfter  time.Time
	// LeafOnly leaves the intermediates out of the returned chain, like a
	// misconfigured server that sends only its leaf.
	LeafOnly bool
	// IssuerURLs go into the leaf's Authority Information Access "CA
	// Issuers" extension: where a client may fetch the issuing CA (see
	// [ServeIssuer]).
	IssuerURLs []string
}

// Leaf issues a TLS server certificate signed by ca. The returned
// tls.Certificate holds the leaf followed by every intermediate up to (not
// including) the root, unless opts.LeafOnly is set; its Leaf field is set.
func (ca *CA) Leaf(t testing.TB, opts LeafOptions) tls.Certificate {
	t.Helper()
	now := time.Now()
	if len(opts.DNSNames) == 0 && len(opts.IPs) == 0 {
		opts.DNSNames = []string{"localhost"}
		opts.IPs = []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback}
	}
	if opts.NotBefore.IsZero() {
		opts.NotBefore = now.Add(-time.Hour)
	}
	if opts.NotAfter.IsZero() {
		opts.NotAfter = now.Add(24 * time.Hour)
	}
	cn := "trusttest leaf"
	if len(opts.DNSNames) > 0 {
		cn = opts.DNSNames[0]
	}
	key := newKey(t)
	tmpl := &x509.Certificate{
		SerialNumber: serial(t),
		Subject:      pkix.Name{CommonName: cn},
		DNSNames:     opts.DNSNames,
		IPAddresses:  opts.IPs,
		NotBefore:    opts.NotBefore,
		NotAfter:     opts.NotAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},

		IssuingCertificateURL: opts.IssuerURLs,
	}
	leaf := create(t, tmpl, ca.cert, &key.PublicKey, ca.key)
	chain := [][]byte{leaf.Raw}
	if !opts.LeafOnly {
		for c := ca; c.parent != nil; c = c.parent {
			chain = append(chain, c.cert.Raw)
		}
	}
	return tls.Certificate{Certificate: chain, PrivateKey: key, Leaf: leaf}
}

// ServeIssuer publishes ca's certificate in DER form, as a CA Issuers URL
// does, from a plain HTTP server on loopback, and returns its URL. The
// server is closed when the test ends.
func ServeIssuer(t testing.TB, ca *CA) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/pkix-cert")
		w.Write(ca.cert.Raw)
	}))
	t.Cleanup(srv.Close)
	return srv.URL + "/issuer.crt"
}

// AIAServer is a plain HTTP server on loopback that publishes CA
// certificates at chosen paths, as CA Issuers URLs do, answers 404 for
// every other path, and records every request it gets.
type AIAServer struct {
	srv *httptest.Server

	mu       sync.Mutex
	handlers map[string]http.Handler
	paths    []string
}

// NewAIAServer starts an AIAServer, closed when the test ends.
func NewAIAServer(t testing.TB) *AIAServer {
	t.Helper()
	s := &AIAServer{handlers: map[string]http.Handler{}}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.paths = append(s.paths, r.URL.Path)
		h := s.handlers[r.URL.Path]
		s.mu.Unlock()
		if h == nil {
			http.NotFound(w, r)
			return
		}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(s.srv.Close)
	return s
}

// URL returns the absolute URL of path (which starts with "/") on s,
// whether or not anything is published there.
func (s *AIAServer) URL(path string) string { return s.srv.URL + path }

// Addr is s's host:port.
func (s *AIAServer) Addr() string { return s.srv.Listener.Addr().String() }

// Publish serves ca's certificate in DER form at path and returns its URL.
func (s *AIAServer) Publish(path string, ca *CA) string {
	return s.Handle(path, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/pkix-cert")
		w.Write(ca.cert.Raw)
	}))
}

// Handle serves path with h and returns its URL.
func (s *AIAServer) Handle(path string, h http.Handler) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.handlers[path] = h
	return s.URL(path)
}

// Requests returns the paths requested so far, in order.
func (s *AIAServer) Requests() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.paths...)
}

// Cert returns the CA's certificate.
func (ca *CA) Cert() *x509.Certificate { return ca.cert }

// CertPEM returns the CA's certificate in PEM form.
func (ca *CA) CertPEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.cert.Raw})
}

// WritePEM writes the CA's certificate as a new PEM file in dir (typically
// t.TempDir()) and returns its path, for use as a ca_files entry.
func (ca *CA) WritePEM(t testing.TB, dir string) string {
	t.Helper()
	f, err := os.CreateTemp(dir, "ca-*.pem")
	if err != nil {
		t.Fatalf("trusttest: %v", err)
	}
	if _, err := f.Write(ca.CertPEM()); err != nil {
		f.Close()
		t.Fatalf("trusttest: write %s: %v", f.Name(), err)
	}
	if err := f.Close(); err != nil {
		t.Fatalf("trusttest: close %s: %v", f.Name(), err)
	}
	return f.Name()
}

// Pool returns a new pool holding only this CA's certificate as a root. For
// an intermediate, that makes the intermediate itself the trust anchor; use
// the root's Pool to exercise full chain building.
func (ca *CA) Pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.cert)
	return p
}

// NewTLSServer starts an httptest.Server on loopback that serves handler
// over TLS with cert, followed by any extra chain certificates (appended to
// cert.Certificate in the order given). The server speaks HTTP/1.1 with TLS
// 1.2 or later and is closed when the test ends.
func NewTLSServer(t testing.TB, handler http.Handler, cert tls.Certificate, chain ...*x509.Certificate) *httptest.Server {
	t.Helper()
	served := cert
	served.Certificate = append([][]byte(nil), cert.Certificate...)
	for _, c := range chain {
		served.Certificate = append(served.Certificate, c.Raw)
	}
	srv := httptest.NewUnstartedServer(handler)
	srv.TLS = &tls.Config{
		Certificates: []tls.Certificate{served},
		MinVersion:   tls.VersionTLS12,
	}
	srv.Config.ErrorLog = log.New(testWriter{t}, "trusttest server: ", 0)
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv
}

// testWriter sends server log lines (such as expected handshake failures) to
// t.Log, so they show only for failing or -v tests.
type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}

func newKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatalf("trusttest: generate key: %v", err)
	}
	return key
}

func serial(t testing.TB) *big.Int {
	t.Helper()
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		t.Fatalf("trusttest: serial: %v", err)
	}
	return n
}

func create(t testing.TB, tmpl, parent *x509.Certificate, pub *ecdsa.PublicKey, signer *ecdsa.PrivateKey) *x509.Certificate {
	t.Helper()
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, signer)
	if err != nil {
		t.Fatalf("trusttest: create certificate: %v", err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatalf("trusttest: parse certificate: %v", err)
	}
	return c
}

// PEM returns cert's chain and key in PEM form, as files on disk hold them.
func PEM(t testing.TB, cert tls.Certificate) (certPEM, keyPEM []byte) {
	t.Helper()
	for _, der := range cert.Certificate {
		certPEM = append(certPEM, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})...)
	}
	der, err := x509.MarshalPKCS8PrivateKey(cert.PrivateKey)
	if err != nil {
		t.Fatalf("trusttest: marshal key: %v", err)
	}
	return certPEM, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
}
