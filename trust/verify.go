package trust

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"time"
)

// Policy is what postern checks beyond "the chain leads to a trusted root".
type Policy struct {
	// AIA turns on fetching a missing intermediate from the certificate's
	// Authority Information Access "CA Issuers" URL (at most [MaxAIAHops]
	// issuers, [MaxAIABytes] each, [MaxAIAURLsPerCert] URLs per certificate
	// and [MaxAIARequests] requests per handshake, plain http only, never to
	// an internal address of a class the provider is not in). Fetched
	// certificates are only ever used as intermediates, never as roots.
	AIA bool
	// AIATimeout bounds all fetches for one handshake; 0 means
	// [DefaultAIATimeout].
	AIATimeout time.Duration
	// Pins maps a lower-case host name (or IP) to the SPKI pins one of which
	// must appear in its verified chain. Hosts not listed are not pinned.
	Pins map[string][]Pin
}

// WithPolicy returns a copy of r that applies p to every upstream
// connection. The root pool is shared; r itself is unchanged.
func (r *Roots) WithPolicy(p Policy) *Roots {
	c := *r
	c.policy = p
	c.aia = nil
	if p.AIA {
		c.aia = newAIAFetcher(p.AIATimeout)
	}
	pins := make(map[string][]Pin, len(p.Pins))
	for h, ps := range p.Pins {
		pins[strings.ToLower(h)] = append([]Pin(nil), ps...)
	}
	c.policy.Pins = pins
	return &c
}

// Policy returns the policy r applies.
func (r *Roots) Policy() Policy { return r.policy }

// Verification is the outcome of checking one served chain.
type Verification struct {
	// Chains are the verified chains, leaf first, root last.
	Chains [][]*x509.Certificate
	// Fetched are the intermediates fetched by AIA to build Chains.
	Fetched []*x509.Certificate
	// FetchedFrom are their URLs, in the same order.
	FetchedFrom []string
}

// Verify is [Roots.VerifyFrom] for a chain whose server address is not
// known: AIA fetches to every internal address class are refused.
func (r *Roots) Verify(ctx context.Context, host string, served []*x509.Certificate, now time.Time) (Verification, error) {
	return r.VerifyFrom(ctx, host, netip.Addr{}, served, now)
}

// VerifyFrom checks a chain (leaf first) served for host from the address
// peer exactly as every upstream connection is checked: against r's roots
// with the served intermediates, then, if that fails for want of an issuer
// and AIA is on, with issuers fetched from AIA URLs; then the host's pins.
// AIA requests go only to public addresses or to internal ones of peer's
// own class (loopback, private, link-local, carrier-grade NAT, ...): an
// invalid peer allows public addresses only. The returned error is a
// *tls.CertificateVerificationError, a *PinMismatchError, or wraps an
// *IssuerFetchError.
func (r *Roots) VerifyFrom(ctx context.Context, host string, peer netip.Addr, served []*x509.Certificate, now time.Time) (Verification, error) {
	var v Verification
	if len(served) == 0 {
		return v, &tls.CertificateVerificationError{Err: errors.New("the server sent no certificate")}
	}
	if host == "" {
		return v, &tls.CertificateVerificationError{UnverifiedCertificates: served, Err: errors.New("no host name to verify the certificate against")}
	}
	opts := x509.VerifyOptions{
		Roots:         r.pool,
		Intermediates: x509.NewCertPool(),
		DNSName:       host,
		CurrentTime:   now,
	}
	for _, c := range served[1:] {
		opts.Intermediates.AddCert(c)
	}
	chains, err := served[0].Verify(opts)
	if err != nil && r.aia != nil {
		chains, err = r.chaseAIA(ctx, peer, served, opts, err, &v)
	}
	if err != nil {
		return v, &tls.CertificateVerificationError{UnverifiedCertificates: served, Err: err}
	}
	v.Chains = chains
	if pins := r.policy.Pins[strings.ToLower(host)]; len(pins) > 0 {
		if err := matchPins(host, chains, pins); err != nil {
			return v, err
		}
	}
	return v, nil
}

// chaseAIA retries verification after fetching each missing issuer in turn,
// starting from the top of the served chain, within one AIA session: at
// most [MaxAIARequests] requests, to addresses allowed for peer.
func (r *Roots) chaseAIA(ctx context.Context, peer netip.Addr, served []*x509.Certificate, opts x509.VerifyOptions, err error, v *Verification) ([][]*x509.Certificate, error) {
	// Only the caller's cancellation is kept, not its values: those belong
	// to the caller's own request (an httptrace.ClientTrace there would
	// report the AIA requests as the provider's, and the proxy would take
	// a message as possibly sent).
	parent := ctx
	ctx, cancel := context.WithTimeout(context.Background(), r.aia.timeout)
	defer cancel()
	defer context.AfterFunc(parent, cancel)()
	s := r.aia.session(peer)
	cur := served[len(served)-1]
	if len(cur.IssuingCertificateURL) == 0 {
		cur = served[0]
	}
	for hop := 0; hop < MaxAIAHops; hop++ {
		var unknown x509.UnknownAuthorityError
		if !errors.As(err, &unknown) || len(cur.IssuingCertificateURL) == 0 {
			return nil, err
		}
		issuer, from, ferr := r.aia.issuerOf(ctx, s, cur)
		if ferr != nil {
			return nil, fmt.Errorf("%w (%w)", err, ferr)
		}
		// Only ever an intermediate: a fetched certificate can complete a
		// chain to a root already trusted, never become a trust anchor.
		opts.Intermediates.AddCert(issuer)
		v.Fetched = append(v.Fetched, issuer)
		v.FetchedFrom = append(v.FetchedFrom, from)
		var chains [][]*x509.Certificate
		chains, err = served[0].Verify(opts)
		if err == nil {
			r.aia.prove(inChains(chains, v.FetchedFrom, v.Fetched))
			return chains, nil
		}
		cur = issuer
	}
	return nil, err
}

// inChains keeps the fetched certificates (and their URLs) that are part
// of a verified chain: only those earn a place in the cache of good
// intermediates.
func inChains(chains [][]*x509.Certificate, urls []string, certs []*x509.Certificate) ([]string, []*x509.Certificate) {
	var u []string
	var c []*x509.Certificate
	for i, f := range certs {
	search:
		for _, chain := range chains {
			for _, x := range chain {
				if x.Equal(f) {
					u, c = append(u, urls[i]), append(c, f)
					break search
				}
			}
		}
	}
	return u, c
}

// tlsConfig returns the client configuration for one upstream host. Go's
// built-in verification is replaced by [Roots.VerifyFrom] in
// VerifyConnection, which does everything Go does plus AIA and pins;
// InsecureSkipVerify is set only so that Go defers to it, and
// VerifyConnection runs on every handshake, resumed ones included. host ""
// means the SNI name. peer is the server's address (invalid if unknown),
// and ctx bounds AIA fetches.
func (r *Roots) tlsConfig(ctx context.Context, host string, peer netip.Addr, cache tls.ClientSessionCache, tracker *ExpiryTracker) *tls.Config {
	return &tls.Config{
		ServerName:         host,
		RootCAs:            r.pool,
		MinVersion:         tls.VersionTLS12,
		ClientSessionCache: cache,
		InsecureSkipVerify: true, // see VerifyConnection: never without it
		VerifyConnection: func(cs tls.ConnectionState) error {
			name := host
			if name == "" {
				name = cs.ServerName
			}
			v, err := r.VerifyFrom(ctx, name, peer, cs.PeerCertificates, time.Now())
			if err != nil {
				return err
			}
			if tracker != nil {
				tracker.Observe(name, v.Chains[0][0])
			}
			return nil
		},
	}
}

// remoteAddr is the IP address c is connected to, or an invalid address.
func remoteAddr(c net.Conn) netip.Addr {
	if c.RemoteAddr() == nil {
		return netip.Addr{}
	}
	if ta, ok := c.RemoteAddr().(*net.TCPAddr); ok {
		return ta.AddrPort().Addr().Unmap()
	}
	ap, err := netip.ParseAddrPort(c.RemoteAddr().String())
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr().Unmap()
}
