package trust

import (
	"crypto/ecdsa"
	"crypto/tls"
	"fmt"
	"net"
	"path/filepath"
	"slices"
	"time"
)

// Self-signed listener certificate lifetimes: the leaf is renewed at start
// when less than selfSignedRenew is left.
const (
	selfSignedValidity = 397 * 24 * time.Hour
	selfSignedRenew    = 30 * 24 * time.Hour
)

// SelfSigned is the HTTPS listener's certificate in self-signed mode: a
// local CA (created once in the data directory, to be imported by ISE) and
// a leaf for the configured names signed by it, also kept there.
type SelfSigned struct {
	CA      *LocalCA
	Created bool // the CA was created by this call: print it for the operator
	Cert    *tls.Certificate
}

// LoadOrCreateSelfSigned loads or creates the self-signed CA in dir and a
// leaf for names, issuing a new leaf when the stored one is missing, does
// not cover names, or has less than 30 days left.
func LoadOrCreateSelfSigned(dir string, names []string, now time.Time) (*SelfSigned, error) {
	ca, created, err := LoadOrCreateCA(dir, "self-signed", "postern self-signed CA")
	if err != nil {
		return nil, err
	}
	certFile := filepath.Join(dir, "self-signed.crt")
	keyFile := filepath.Join(dir, "self-signed.key")
	if pair, err := tls.LoadX509KeyPair(certFile, keyFile); err == nil && !created &&
		pair.Leaf.CheckSignatureFrom(ca.cert) == nil && covers(pair.Leaf.DNSNames, pair.Leaf.IPAddresses, names) &&
		pair.Leaf.NotAfter.Sub(now) > selfSignedRenew {
		pair.Certificate = append(pair.Certificate, ca.cert.Raw)
		return &SelfSigned{CA: ca, Cert: &pair}, nil
	}
	cert, err := ca.Issue(names, now.Add(-time.Hour), now.Add(selfSignedValidity))
	if err != nil {
		return nil, err
	}
	if err := writePair(certFile, keyFile, cert.Certificate[0], cert.PrivateKey.(*ecdsa.PrivateKey)); err != nil {
		return nil, fmt.Errorf("storing self-signed certificate: %w", err)
	}
	return &SelfSigned{CA: ca, Created: created, Cert: cert}, nil
}

func covers(dns []string, ips []net.IP, names []string) bool {
	for _, n := range names {
		if ip := net.ParseIP(n); ip != nil {
			if !slices.ContainsFunc(ips, ip.Equal) {
				return false
			}
		} else if !slices.Contains(dns, n) {
			return false
		}
	}
	return true
}
