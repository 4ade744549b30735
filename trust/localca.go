package trust

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// LocalCA is a small ECDSA P-256 certificate authority whose certificate and
// key live in postern's data directory: the self-signed listener's CA and
// the interception CA are each one. It is created on first use and loaded
// on every later start, so clients import its certificate once.
type LocalCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	// CertFile is where the CA certificate is stored, for operators.
	CertFile string
}

// localCAValidity is how long a new local CA is valid.
const localCAValidity = 10 * 365 * 24 * time.Hour

// LoadOrCreateCA loads the CA stored as <name>-ca.crt and <name>-ca.key in
// dir, or creates it (and dir, mode 0700: see [PrepareDataDir]) if neither
// file exists. created says which happened. A half-present or unreadable
// pair is an error, never silently replaced: clients trust the old CA.
func LoadOrCreateCA(dir, name, commonName string) (ca *LocalCA, created bool, err error) {
	return loadOrCreateCA(dir, name, commonName, nil)
}

// loadOrCreateCA is LoadOrCreateCA; constrain, when not nil, adds
// restrictions (name constraints) to the template of a new CA. A CA loaded
// from disk is returned as it was made.
func loadOrCreateCA(dir, name, commonName string, constrain func(*x509.Certificate)) (ca *LocalCA, created bool, err error) {
	if err := PrepareDataDir(dir); err != nil {
		return nil, false, err
	}
	certFile := filepath.Join(dir, name+"-ca.crt")
	keyFile := filepath.Join(dir, name+"-ca.key")
	_, certErr := os.Stat(certFile)
	_, keyErr := os.Stat(keyFile)
	if errors.Is(certErr, fs.ErrNotExist) && errors.Is(keyErr, fs.ErrNotExist) {
		ca, err := createCA(certFile, keyFile, commonName, constrain)
		return ca, err == nil, err
	}
	if err := checkStoredCA(certFile, keyFile); err != nil {
		return nil, false, fmt.Errorf("loading %s CA from %s: %w", name, dir, err)
	}
	pair, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, false, fmt.Errorf("loading %s CA from %s: %w", name, dir, err)
	}
	key, ok := pair.PrivateKey.(*ecdsa.PrivateKey)
	if !ok || !pair.Leaf.IsCA {
		return nil, false, fmt.Errorf("loading %s CA from %s: not an ECDSA CA certificate and key", name, dir)
	}
	return &LocalCA{cert: pair.Leaf, key: key, CertFile: certFile}, false, nil
}

func createCA(certFile, keyFile, commonName string, constrain func(*x509.Certificate)) (*LocalCA, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          randomSerial(),
		Subject:               pkix.Name{CommonName: commonName, Organization: []string{"postern"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(localCAValidity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true, // it signs leaves only
	}
	if constrain != nil {
		constrain(tmpl)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	if err := writePair(certFile, keyFile, der, key); err != nil {
		return nil, err
	}
	return &LocalCA{cert: cert, key: key, CertFile: certFile}, nil
}

// writePair stores a certificate (0644) and its key (0600), each written to
// a temporary file first and renamed, so a crash never leaves half a file.
func writePair(certFile, keyFile string, der []byte, key *ecdsa.PrivateKey) error {
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return err
	}
	if err := writeAtomic(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		return err
	}
	return writeAtomic(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
}

func writeAtomic(name string, data []byte, mode os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(name), ".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), name)
}

// Cert returns the CA certificate.
func (ca *LocalCA) Cert() *x509.Certificate { return ca.cert }

// CertPEM returns the CA certificate in PEM form, for clients to import.
func (ca *LocalCA) CertPEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.cert.Raw})
}

// Fingerprint is the SHA-256 of the CA certificate in hex, for comparing
// with what a client imported.
func (ca *LocalCA) Fingerprint() string {
	sum := sha256.Sum256(ca.cert.Raw)
	return hex.EncodeToString(sum[:])
}

// Issue signs a new server certificate for names (host names or IPs) with
// a fresh P-256 key. The chain holds the leaf and the CA.
func (ca *LocalCA) Issue(names []string, notBefore, notAfter time.Time) (*tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: randomSerial(),
		Subject:      pkix.Name{CommonName: names[0]},
		NotBefore:    notBefore,
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	for _, n := range names {
		if ip := net.ParseIP(n); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, n)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		return nil, fmt.Errorf("signing certificate for %v: %w", names, err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &tls.Certificate{Certificate: [][]byte{der, ca.cert.Raw}, PrivateKey: key, Leaf: leaf}, nil
}

func randomSerial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
	return n
}
