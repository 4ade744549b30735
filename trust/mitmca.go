package trust

import (
	"container/list"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"
)

// Interception leaf lifetimes and cache bound. Leaves are short-lived and
// minted on demand; the cache keeps the handful of intercepted hosts from
// costing a signature per CONNECT.
const (
	interceptLeafValidity = 7 * 24 * time.Hour
	interceptLeafReuse    = 24 * time.Hour
	// InterceptCacheSize bounds how many intercepted hosts' leaves are kept.
	InterceptCacheSize = 64
)

// InterceptCA terminates TLS for intercepted CONNECT requests: it mints a
// leaf per host from postern's own interception CA (never goproxy's
// built-in one, whose key is public) and keeps recent leaves in a bounded
// LRU cache. It is safe for concurrent use.
type InterceptCA struct {
	ca  *LocalCA
	now func() time.Time

	mu    sync.Mutex
	order *list.List // of *leafEntry, most recent first
	byKey map[string]*list.Element
	size  int
}

type leafEntry struct {
	host    string
	cert    *tls.Certificate
	expires time.Time
}

// LoadOrCreateInterceptCA loads the interception CA from dir
// (intercept-ca.crt, intercept-ca.key) or creates it on first start. A new
// CA carries X.509 name constraints permitting hosts only (see
// [NameConstraintsFor]), so a client that trusts it trusts it for nothing
// else. A CA loaded from disk is used as it is: [InterceptCA.Fit] says
// whether it can serve hosts.
func LoadOrCreateInterceptCA(dir string, hosts []string) (ic *InterceptCA, created bool, err error) {
	if len(hosts) == 0 {
		return nil, false, errors.New("interception CA: no [intercept] hosts to make it for")
	}
	ca, created, err := loadOrCreateCA(dir, "intercept", "postern interception CA",
		func(tmpl *x509.Certificate) { NameConstraintsFor(tmpl, hosts) })
	if err != nil {
		return nil, false, err
	}
	return NewInterceptCA(ca, InterceptCacheSize, nil), created, nil
}

// NewInterceptCA wraps ca with a leaf cache of size entries; now nil means
// time.Now.
func NewInterceptCA(ca *LocalCA, size int, now func() time.Time) *InterceptCA {
	if now == nil {
		now = time.Now
	}
	return &InterceptCA{ca: ca, now: now, order: list.New(), byKey: map[string]*list.Element{}, size: max(size, 1)}
}

// CA returns the interception CA, whose certificate clients must trust.
func (ic *InterceptCA) CA() *LocalCA { return ic.ca }

// ErrNotPermitted is returned (wrapped) by [InterceptCA.Leaf] for a host
// outside the CA's name constraints.
var ErrNotPermitted = errors.New("host is outside the interception CA's name constraints")

// Permits reports whether the CA's name constraints allow a leaf for host
// (always true for a CA without constraints).
func (ic *InterceptCA) Permits(host string) bool { return permits(ic.ca.cert, host) }

// Leaf returns a certificate for host, from the cache or freshly signed. A
// host the CA's name constraints do not permit gets no leaf: clients would
// refuse it, and minting it would defeat the constraints.
func (ic *InterceptCA) Leaf(host string) (*tls.Certificate, error) {
	host = strings.ToLower(host)
	if !ic.Permits(host) {
		return nil, fmt.Errorf("leaf for %q: %w", host, ErrNotPermitted)
	}
	now := ic.now()
	ic.mu.Lock()
	if el, ok := ic.byKey[host]; ok {
		e := el.Value.(*leafEntry)
		if now.Before(e.expires) {
			ic.order.MoveToFront(el)
			ic.mu.Unlock()
			return e.cert, nil
		}
		ic.order.Remove(el)
		delete(ic.byKey, host)
	}
	ic.mu.Unlock()

	cert, err := ic.ca.Issue([]string{host}, now.Add(-time.Hour), now.Add(interceptLeafValidity))
	if err != nil {
		return nil, err
	}
	ic.mu.Lock()
	defer ic.mu.Unlock()
	if el, ok := ic.byKey[host]; ok { // signed concurrently: keep one
		ic.order.Remove(el)
	}
	ic.byKey[host] = ic.order.PushFront(&leafEntry{host: host, cert: cert, expires: now.Add(interceptLeafReuse)})
	for ic.order.Len() > ic.size {
		last := ic.order.Back()
		ic.order.Remove(last)
		delete(ic.byKey, last.Value.(*leafEntry).host)
	}
	return cert, nil
}

// Cached returns how many leaves are cached.
func (ic *InterceptCA) Cached() int {
	ic.mu.Lock()
	defer ic.mu.Unlock()
	return ic.order.Len()
}

// ServerTLSConfig returns the inbound TLS configuration for an intercepted
// connection to host.
func (ic *InterceptCA) ServerTLSConfig(host string) (*tls.Config, error) {
	cert, err := ic.Leaf(host)
	if err != nil {
		return nil, err
	}
	return ServerTLSConfig(func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return cert, nil }), nil
}

// NameConstraintsFor restricts a CA template to hosts, as a critical X.509
// name constraints extension (RFC 5280 4.2.1.10): host names become
// permitted DNS subtrees, IP addresses permitted single-address ranges.
// Every other name a client checks is closed off too: without an IP subtree
// every IP address would stay permitted, so all IPv4 and IPv6 addresses are
// excluded; without a DNS subtree every name would, so only the reserved
// name "invalid" (RFC 6761, never resolvable) is permitted. A DNS subtree
// also permits names below it (RFC 5280 semantics, enforced by every
// verifier); postern itself mints leaves only for the listed hosts.
func NameConstraintsFor(tmpl *x509.Certificate, hosts []string) {
	tmpl.PermittedDNSDomainsCritical = true
	tmpl.PermittedDNSDomains, tmpl.PermittedIPRanges = nil, nil
	for _, h := range hosts {
		h = strings.ToLower(h)
		if ip := net.ParseIP(h); ip != nil {
			if v4 := ip.To4(); v4 != nil {
				ip = v4
			}
			tmpl.PermittedIPRanges = append(tmpl.PermittedIPRanges, &net.IPNet{IP: ip, Mask: net.CIDRMask(len(ip)*8, len(ip)*8)})
		} else if !slices.Contains(tmpl.PermittedDNSDomains, h) {
			tmpl.PermittedDNSDomains = append(tmpl.PermittedDNSDomains, h)
		}
	}
	if len(tmpl.PermittedDNSDomains) == 0 {
		tmpl.PermittedDNSDomains = []string{"invalid"}
	}
	if len(tmpl.PermittedIPRanges) == 0 {
		tmpl.ExcludedIPRanges = []*net.IPNet{
			{IP: net.IPv4zero.To4(), Mask: net.CIDRMask(0, 32)},
			{IP: net.IPv6zero, Mask: net.CIDRMask(0, 128)},
		}
	}
}

// constrained reports whether ca carries any DNS or IP name constraint.
func constrained(ca *x509.Certificate) bool {
	return len(ca.PermittedDNSDomains)+len(ca.ExcludedDNSDomains)+len(ca.PermittedIPRanges)+len(ca.ExcludedIPRanges) > 0
}

// permits applies ca's DNS and IP name constraints to host the way a
// verifier applies them to a leaf naming host (crypto/x509's rules).
func permits(ca *x509.Certificate, host string) bool {
	host = strings.ToLower(host)
	if ip := net.ParseIP(host); ip != nil {
		if slices.ContainsFunc(ca.ExcludedIPRanges, func(n *net.IPNet) bool { return n.Contains(ip) }) {
			return false
		}
		return len(ca.PermittedIPRanges) == 0 ||
			slices.ContainsFunc(ca.PermittedIPRanges, func(n *net.IPNet) bool { return n.Contains(ip) })
	}
	if slices.ContainsFunc(ca.ExcludedDNSDomains, func(c string) bool { return domainMatches(c, host) }) {
		return false
	}
	return len(ca.PermittedDNSDomains) == 0 ||
		slices.ContainsFunc(ca.PermittedDNSDomains, func(c string) bool { return domainMatches(c, host) })
}

// domainMatches is RFC 5280's DNS subtree match: the constraint itself and
// every name below it; a constraint starting with "." only names below it;
// an empty one every name.
func domainMatches(constraint, host string) bool {
	constraint = strings.ToLower(constraint)
	switch {
	case constraint == "":
		return true
	case strings.HasPrefix(constraint, "."):
		return strings.HasSuffix(host, constraint)
	}
	return host == constraint || strings.HasSuffix(host, "."+constraint)
}

// CAFit says whether an interception CA can serve the [intercept] hosts.
type CAFit struct {
	CertFile string
	// Constrained is false for a CA made before postern added name
	// constraints: clients that trust it trust it for every name.
	Constrained bool
	// Permitted lists the CA's permitted DNS names and IP ranges.
	Permitted []string
	// Outside lists the hosts the CA's constraints do not permit: clients
	// would refuse their leaves, so postern mints none and refuses the
	// CONNECT.
	Outside []string
}

// Fit checks hosts against the CA's name constraints.
func (ic *InterceptCA) Fit(hosts []string) CAFit { return fitCA(ic.ca.cert, ic.ca.CertFile, hosts) }

func fitCA(ca *x509.Certificate, certFile string, hosts []string) CAFit {
	f := CAFit{CertFile: certFile, Constrained: constrained(ca), Permitted: slices.Clone(ca.PermittedDNSDomains)}
	for _, n := range ca.PermittedIPRanges {
		f.Permitted = append(f.Permitted, n.String())
	}
	for _, h := range hosts {
		if !permits(ca, h) {
			f.Outside = append(f.Outside, h)
		}
	}
	return f
}

// Problem is a message for the operator when the CA cannot serve every
// host, else "".
func (f CAFit) Problem() string {
	if len(f.Outside) == 0 {
		return ""
	}
	return fmt.Sprintf("the interception CA %s permits only %s, but [intercept] hosts also lists %s: "+
		"clients would refuse a leaf for it, so postern refuses CONNECT to it. %s",
		f.CertFile, strings.Join(f.Permitted, ", "), strings.Join(f.Outside, ", "), f.NewCAHowTo())
}

// Notice is a message for the operator when the CA has no name constraints
// (made by an earlier postern), else "".
func (f CAFit) Notice() string {
	if f.Constrained {
		return ""
	}
	return fmt.Sprintf("the interception CA %s has no name constraints (made by an earlier postern): "+
		"whoever trusts it trusts it for every host name, not only the [intercept] hosts. "+
		"postern still mints leaves only for those hosts. %s", f.CertFile, f.NewCAHowTo())
}

// NewCAHowTo says how to replace the interception CA with one made for the
// current [intercept] hosts.
func (f CAFit) NewCAHowTo() string {
	return fmt.Sprintf("To make a new CA for the current [intercept] hosts: stop postern, move %s and its key "+
		"(intercept-ca.key, same directory) out of data_dir, start postern (it creates a new CA and logs its "+
		"certificate), and import the new certificate into ISE's trusted certificates.", f.CertFile)
}

// InspectInterceptCA reads the interception CA certificate in dir (not its
// key) and checks hosts against it, for `postern check`. exists is false
// when no CA has been made yet.
func InspectInterceptCA(dir string, hosts []string) (f CAFit, exists bool, err error) {
	certFile := filepath.Join(dir, "intercept-ca.crt")
	pemBytes, err := os.ReadFile(certFile)
	if errors.Is(err, fs.ErrNotExist) {
		return CAFit{CertFile: certFile}, false, nil
	}
	if err != nil {
		return CAFit{CertFile: certFile}, false, fmt.Errorf("reading the interception CA: %w", err)
	}
	block, _ := pem.Decode(pemBytes)
	if block == nil || block.Type != "CERTIFICATE" {
		return CAFit{CertFile: certFile}, true, fmt.Errorf("reading the interception CA %s: no PEM certificate", certFile)
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return CAFit{CertFile: certFile}, true, fmt.Errorf("reading the interception CA %s: %w", certFile, err)
	}
	return fitCA(cert, certFile, hosts), true, nil
}
