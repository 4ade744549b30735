package trust

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"syscall"
	"time"
)

// AIA limits. A CA Issuers URL serves one certificate of a few kilobytes;
// anything else is a mistake or an attack, and must never stall a message.
// The URLs come from a certificate the server chose to send, verified or
// not, so they are attacker-controlled: the limits below keep a hostile
// certificate from turning postern into a scanner of its own network.
const (
	// DefaultAIATimeout bounds all fetches for one handshake, every hop
	// included. It stays below the TLS handshake timeout.
	DefaultAIATimeout = 3 * time.Second
	// MaxAIABytes is the most read from one AIA URL.
	MaxAIABytes = 64 << 10
	// MaxAIAHops is how many missing issuers are fetched, one after the
	// other, before giving up.
	MaxAIAHops = 3
	// MaxAIAURLsPerCert is how many of one certificate's CA Issuers URLs
	// are tried, in order; the others are ignored. Real CAs list one.
	MaxAIAURLsPerCert = 2
	// MaxAIARequests is how many HTTP requests one handshake may send for
	// AIA, a followed redirect included. Answers from the cache are free.
	MaxAIARequests = 4
	// aiaCacheSize bounds the certificates kept because they completed a
	// verified chain. Nothing else is ever stored there, so a flood of
	// junk URLs cannot evict them.
	aiaCacheSize = 128
	// aiaRecentSize bounds the separate cache of failed fetches and of
	// fetched certificates that have not (yet) completed a verified chain.
	aiaRecentSize = 64
	// aiaCacheOK is how long a certificate that completed a chain is reused.
	aiaCacheOK = 6 * time.Hour
	// aiaCacheFail is how long a failed or unproven fetch is remembered,
	// so a dead AIA server costs one timeout per minute instead of one per
	// message.
	aiaCacheFail = time.Minute
	// maxURLInError cuts URLs in error messages: they come from the
	// certificate and end up in the audit line.
	maxURLInError = 200
)

// IssuerFetchError means the chain was incomplete and the missing issuer
// could not be fetched from one of the certificate's AIA "CA Issuers"
// URLs, or was not fetched because postern refused to (see [AIARefusal]).
type IssuerFetchError struct {
	URL string
	Err error
}

func (e *IssuerFetchError) Error() string {
	return fmt.Sprintf("fetching the missing issuer from AIA URL %s: %v", shorten(e.URL), e.Err)
}

func (e *IssuerFetchError) Unwrap() error { return e.Err }

// AIARefusal is why postern did not fetch an AIA URL at all: the scheme is
// not http, a limit was reached, or the destination is an internal address
// the provider is not on. Nothing was sent.
type AIARefusal struct{ Reason string }

func (e *AIARefusal) Error() string { return "refused: " + e.Reason }

// aiaErrors is every reason one certificate's issuer could not be found,
// one per URL tried, plus how many URLs were not tried.
type aiaErrors []error

func (e aiaErrors) Error() string {
	s := make([]string, len(e))
	for i, err := range e {
		s[i] = err.Error()
	}
	return strings.Join(s, "; ")
}

func (e aiaErrors) Unwrap() []error { return e }

// shorten cuts s for an error message.
func shorten(s string) string {
	if len(s) <= maxURLInError {
		return s
	}
	return s[:maxURLInError] + "…"
}

// aiaFetcher downloads issuer certificates named in AIA extensions, with
// two bounded in-memory caches. It is safe for concurrent use.
type aiaFetcher struct {
	timeout time.Duration
	now     func() time.Time
	// lookup resolves a host name; dial connects to an IP:port that has
	// already passed the address check. Both are fields so that tests can
	// observe them without DNS and without ever connecting anywhere but
	// loopback.
	lookup func(ctx context.Context, host string) ([]netip.Addr, error)
	dial   func(ctx context.Context, peer netip.Addr, network, addr string) (net.Conn, error)

	mu     sync.Mutex
	good   aiaCache // certificates that completed a verified chain
	recent aiaCache // failures and unproven certificates, kept apart
}

func newAIAFetcher(timeout time.Duration) *aiaFetcher {
	if timeout <= 0 {
		timeout = DefaultAIATimeout
	}
	return &aiaFetcher{
		timeout: timeout,
		now:     time.Now,
		lookup: func(ctx context.Context, host string) ([]netip.Addr, error) {
			return net.DefaultResolver.LookupNetIP(ctx, "ip", host)
		},
		dial: func(ctx context.Context, peer netip.Addr, network, addr string) (net.Conn, error) {
			d := &net.Dialer{Timeout: timeout, ControlContext: guardControl(peer)}
			return d.DialContext(ctx, network, addr)
		},
		good:   aiaCache{max: aiaCacheSize},
		recent: aiaCache{max: aiaRecentSize},
	}
}

// aiaSession is the AIA state of one handshake: where the chain came from
// and how many requests it may still send.
type aiaSession struct {
	peer netip.Addr // the provider's address; invalid when unknown
	left int
	tr   *http.Transport
}

func (f *aiaFetcher) session(peer netip.Addr) *aiaSession {
	s := &aiaSession{peer: peer.Unmap(), left: MaxAIARequests}
	// A transport per handshake: its dialer knows this provider's address,
	// and no connection is shared with another handshake.
	s.tr = &http.Transport{
		Proxy: nil, // like provider traffic: never via the environment
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			return f.dialChecked(ctx, s.peer, network, addr)
		},
		ResponseHeaderTimeout:  f.timeout,
		MaxResponseHeaderBytes: 16 << 10,
		DisableKeepAlives:      true,
		DisableCompression:     true,
	}
	return s
}

// dialChecked resolves addr's host, refuses the connection if any of its
// addresses is internal in a way the provider's is not, and otherwise
// dials the checked IP itself, so that what is dialled is what was checked
// (a second lookup could answer differently).
func (f *aiaFetcher) dialChecked(ctx context.Context, peer netip.Addr, network, addr string) (net.Conn, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	var ips []netip.Addr
	if ip, err := netip.ParseAddr(host); err == nil {
		ips = []netip.Addr{ip}
	} else {
		ips, err = f.lookup(ctx, host)
		if err != nil {
			return nil, fmt.Errorf("resolving %s: %w", host, err)
		}
		if len(ips) == 0 {
			return nil, fmt.Errorf("resolving %s: no address", host)
		}
	}
	// Any internal answer refuses the name: a public CA's AIA host has no
	// reason to resolve to one, and trying only the others would let a
	// name flip between answers.
	for _, ip := range ips {
		if err := checkDestination(host, ip, peer); err != nil {
			return nil, err
		}
	}
	var errs []error
	for _, ip := range ips {
		c, err := f.dial(ctx, peer, network, net.JoinHostPort(ip.String(), port))
		if err == nil {
			return c, nil
		}
		errs = append(errs, err)
	}
	return nil, errors.Join(errs...)
}

// guardControl checks, once more, the address a socket is about to connect
// to, for the default dialer: the last point before a packet leaves.
func guardControl(peer netip.Addr) func(ctx context.Context, network, address string, c syscall.RawConn) error {
	return func(_ context.Context, _, address string, _ syscall.RawConn) error {
		ap, err := netip.ParseAddrPort(address)
		if err != nil {
			return &AIARefusal{Reason: fmt.Sprintf("cannot check the address %q", address)}
		}
		return checkDestination(ap.Addr().String(), ap.Addr(), peer)
	}
}

// addrClass is what kind of network an address belongs to. AIA may reach
// any public address, and an internal class only when the provider's own
// address is of that class (a test set-up, or a provider behind an
// internal gateway).
type addrClass int

const (
	classPublic addrClass = iota
	classLoopback
	classPrivate
	classLinkLocal
	classCGNAT
	classUnspecified
	classMulticast
)

func (c addrClass) String() string {
	switch c {
	case classLoopback:
		return "loopback"
	case classPrivate:
		return "private"
	case classLinkLocal:
		return "link-local"
	case classCGNAT:
		return "carrier-grade NAT"
	case classUnspecified:
		return "unspecified"
	case classMulticast:
		return "multicast"
	}
	return "public"
}

var (
	cgnatPrefix    = netip.MustParsePrefix("100.64.0.0/10") // RFC 6598
	thisNetPrefix  = netip.MustParsePrefix("0.0.0.0/8")     // RFC 1122 "this network"
	siteLocal6     = netip.MustParsePrefix("fec0::/10")     // deprecated, still internal
	nat64WellKnown = netip.MustParsePrefix("64:ff9b::/96")  // RFC 6052: embeds an IPv4 address
	broadcast4     = netip.MustParseAddr("255.255.255.255") // limited broadcast
)

func classify(a netip.Addr) addrClass {
	a = a.Unmap().WithZone("")
	if nat64WellKnown.Contains(a) { // the gateway would connect to the IPv4 inside
		b := a.As16()
		a = netip.AddrFrom4([4]byte(b[12:]))
	}
	switch {
	case !a.IsValid(), a.IsUnspecified(), thisNetPrefix.Contains(a):
		return classUnspecified
	case a.IsLoopback():
		return classLoopback
	case a.IsPrivate(), siteLocal6.Contains(a): // RFC 1918, RFC 4193
		return classPrivate
	case a.IsLinkLocalUnicast():
		return classLinkLocal
	case a.IsMulticast(), a == broadcast4:
		return classMulticast
	case cgnatPrefix.Contains(a):
		return classCGNAT
	}
	return classPublic
}

// checkDestination refuses ip (what host resolved to) unless it is public
// or of the same class as peer, the provider's address. An unknown peer
// is taken as public: every internal class is refused.
func checkDestination(host string, ip, peer netip.Addr) error {
	c := classify(ip)
	if c == classPublic {
		return nil
	}
	pc := classPublic
	if peer.IsValid() {
		pc = classify(peer)
	}
	if c == pc {
		return nil
	}
	what := ip.String() + " is"
	if host != ip.String() {
		what = host + " resolves to " + ip.String() + ","
	}
	provider := "the provider's address is unknown"
	if peer.IsValid() {
		provider = fmt.Sprintf("the provider's address %s is %s", peer, pc)
	}
	return &AIARefusal{Reason: fmt.Sprintf("%s %s address, and %s", what, article(c), provider)}
}

// article returns c with "a" or "an" in front.
func article(c addrClass) string {
	s := c.String()
	if strings.ContainsRune("aeiou", rune(s[0])) {
		return "an " + s
	}
	return "a " + s
}

// checkAIAURL allows only what RFC 5280 means for CA Issuers over the
// network: plain http. https would need its own chain (and AIA) to verify;
// ldap and ftp are not spoken.
func checkAIAURL(u *url.URL) error {
	if u.Scheme != "http" {
		return &AIARefusal{Reason: fmt.Sprintf("scheme %q is not http", u.Scheme)}
	}
	if u.Hostname() == "" {
		return &AIARefusal{Reason: "the URL has no host"}
	}
	return nil
}

// issuerOf fetches the certificate that issued c, trying its first
// [MaxAIAURLsPerCert] AIA URLs in turn, and returns it with the URL it came
// from. The result is only a candidate intermediate: the caller verifies
// the chain again against its roots.
func (f *aiaFetcher) issuerOf(ctx context.Context, s *aiaSession, c *x509.Certificate) (*x509.Certificate, string, error) {
	var errs aiaErrors
	for i, raw := range c.IssuingCertificateURL {
		if i == MaxAIAURLsPerCert {
			errs = append(errs, fmt.Errorf("%d more AIA URL(s) not tried: at most %d per certificate",
				len(c.IssuingCertificateURL)-i, MaxAIAURLsPerCert))
			break
		}
		issuer, err := f.fetch(ctx, s, raw)
		if err == nil && c.CheckSignatureFrom(issuer) != nil {
			err = &IssuerFetchError{URL: raw, Err: errors.New("the certificate served there did not issue this one")}
		}
		if err == nil {
			return issuer, raw, nil
		}
		errs = append(errs, err)
	}
	if len(errs) == 0 {
		return nil, "", errors.New("the certificate has no AIA URL")
	}
	return nil, "", errs
}

// fetch returns the certificate at raw: from a cache, or downloaded if the
// session may still send a request. Refusals are not cached: they cost
// nothing, and depend on the provider's address.
func (f *aiaFetcher) fetch(ctx context.Context, s *aiaSession, raw string) (*x509.Certificate, error) {
	now := f.now()
	f.mu.Lock()
	e, ok := f.good.get(raw, now)
	if !ok {
		e, ok = f.recent.get(raw, now)
	}
	f.mu.Unlock()
	if ok {
		return e.cert, e.err
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, &IssuerFetchError{URL: raw, Err: &AIARefusal{Reason: "not a valid URL"}}
	}
	if err := checkAIAURL(u); err != nil {
		return nil, &IssuerFetchError{URL: raw, Err: err}
	}
	cert, err := f.download(ctx, s, u)
	if err != nil {
		err = &IssuerFetchError{URL: raw, Err: err}
		if ref := (*AIARefusal)(nil); errors.As(err, &ref) {
			return nil, err
		}
	}
	f.mu.Lock()
	f.recent.put(raw, aiaEntry{cert: cert, err: err, expires: now.Add(aiaCacheFail)}, now)
	f.mu.Unlock()
	return cert, err
}

// prove moves certificates that completed a verified chain into the cache
// of good intermediates.
func (f *aiaFetcher) prove(urls []string, certs []*x509.Certificate) {
	now := f.now()
	f.mu.Lock()
	defer f.mu.Unlock()
	for i, raw := range urls {
		f.recent.delete(raw)
		f.good.put(raw, aiaEntry{cert: certs[i], expires: now.Add(aiaCacheOK)}, now)
	}
}

// download GETs u, following at most one redirect and only to the same
// host and port, and parses the issuer certificate.
func (f *aiaFetcher) download(ctx context.Context, s *aiaSession, u *url.URL) (*x509.Certificate, error) {
	resp, err := f.get(ctx, s, u)
	if err != nil {
		return nil, err
	}
	if isRedirect(resp.StatusCode) {
		next, err := redirectTarget(u, resp)
		resp.Body.Close()
		if err != nil {
			return nil, err
		}
		if resp, err = f.get(ctx, s, next); err != nil {
			return nil, err
		}
		if isRedirect(resp.StatusCode) {
			resp.Body.Close()
			return nil, &AIARefusal{Reason: "redirected a second time: at most one redirect is followed"}
		}
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("HTTP status %d", resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxAIABytes+1))
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			return nil, fmt.Errorf("timed out after %v", f.timeout)
		}
		return nil, fmt.Errorf("reading: %w", err)
	}
	if len(body) > MaxAIABytes {
		return nil, fmt.Errorf("larger than %d bytes", MaxAIABytes)
	}
	cert, err := parseIssuerCert(body)
	if err != nil {
		return nil, err
	}
	if !cert.IsCA || !cert.BasicConstraintsValid {
		return nil, errors.New("the certificate served is not a CA")
	}
	return cert, nil
}

// get sends one GET, if the session has a request left.
func (f *aiaFetcher) get(ctx context.Context, s *aiaSession, u *url.URL) (*http.Response, error) {
	if s.left <= 0 {
		return nil, &AIARefusal{Reason: fmt.Sprintf("not fetched: at most %d AIA requests per handshake", MaxAIARequests)}
	}
	s.left--
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, err
	}
	resp, err := s.tr.RoundTrip(req)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			return nil, fmt.Errorf("timed out after %v", f.timeout)
		}
		return nil, err
	}
	return resp, nil
}

func isRedirect(status int) bool {
	switch status {
	case http.StatusMovedPermanently, http.StatusFound, http.StatusSeeOther,
		http.StatusTemporaryRedirect, http.StatusPermanentRedirect:
		return true
	}
	return false
}

// redirectTarget is where resp redirects from u, if that is plain http on
// the same host and port.
func redirectTarget(u *url.URL, resp *http.Response) (*url.URL, error) {
	next, err := resp.Location()
	if err != nil {
		return nil, fmt.Errorf("HTTP status %d without a valid Location", resp.StatusCode)
	}
	if next.Scheme != "http" || !strings.EqualFold(next.Hostname(), u.Hostname()) || portOf(next) != portOf(u) {
		return nil, &AIARefusal{Reason: fmt.Sprintf("redirected to another host or scheme (%s): not followed", shorten(next.Redacted()))}
	}
	return next, nil
}

func portOf(u *url.URL) string {
	if p := u.Port(); p != "" {
		return p
	}
	return "80"
}

// aiaCache maps URLs to fetch results, holding at most max entries: when
// full, expired entries go first, then the one closest to expiry.
type aiaCache struct {
	max int
	m   map[string]aiaEntry
}

type aiaEntry struct {
	cert    *x509.Certificate
	err     error
	expires time.Time
}

func (c *aiaCache) get(k string, now time.Time) (aiaEntry, bool) {
	e, ok := c.m[k]
	if !ok || !now.Before(e.expires) {
		return aiaEntry{}, false
	}
	return e, true
}

func (c *aiaCache) put(k string, e aiaEntry, now time.Time) {
	if c.m == nil {
		c.m = map[string]aiaEntry{}
	}
	if _, ok := c.m[k]; !ok && len(c.m) >= c.max {
		for k, v := range c.m {
			if !now.Before(v.expires) {
				delete(c.m, k)
			}
		}
		for len(c.m) >= c.max {
			var oldest string
			first := true
			for k, v := range c.m {
				if first || v.expires.Before(c.m[oldest].expires) {
					oldest, first = k, false
				}
			}
			delete(c.m, oldest)
		}
	}
	c.m[k] = e
}

func (c *aiaCache) delete(k string) { delete(c.m, k) }

func (c *aiaCache) len() int { return len(c.m) }

// parseIssuerCert reads a single DER certificate (what RFC 5280 says a CA
// Issuers URL serves) or, as some CAs publish, a PEM one. PKCS#7 bundles
// (.p7c) are not understood.
func parseIssuerCert(b []byte) (*x509.Certificate, error) {
	if block, _ := pem.Decode(b); block != nil && block.Type == "CERTIFICATE" {
		b = block.Bytes
	}
	c, err := x509.ParseCertificate(b)
	if err != nil {
		return nil, errors.New("not a DER or PEM certificate")
	}
	return c, nil
}
