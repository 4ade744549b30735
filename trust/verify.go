package trust

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Policy is what postern checks beyond "the chain leads to a trusted root".
type Policy struct {
	// AIA turns on fetching a missing intermediate from the certificate's
	// Authority Information Access "CA Issuers" URL (at most [MaxAIAHops]
	// issuers, [MaxAIABytes] each). Fetched certificates are only ever used
	// as intermediates, never as roots.
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

// Verify checks a served chain (leaf first) for host exactly as every
// upstream connection is checked: against r's roots with the served
// intermediates, then, if that fails for want of an issuer and AIA is on,
// with issuers fetched from AIA URLs; then the host's pins. The returned
// error is a *tls.CertificateVerificationError, a *PinMismatchError, or
// wraps an *IssuerFetchError.
func (r *Roots) Verify(ctx context.Context, host string, served []*x509.Certificate, now time.Time) (Verification, error) {
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
		chains, err = r.chaseAIA(ctx, served, opts, err, &v)
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
// starting from the top of the served chain.
func (r *Roots) chaseAIA(ctx context.Context, served []*x509.Certificate, opts x509.VerifyOptions, err error, v *Verification) ([][]*x509.Certificate, error) {
	ctx, cancel := context.WithTimeout(ctx, r.aia.timeout)
	defer cancel()
	cur := served[len(served)-1]
	if len(cur.IssuingCertificateURL) == 0 {
		cur = served[0]
	}
	for hop := 0; hop < MaxAIAHops; hop++ {
		var unknown x509.UnknownAuthorityError
		if !errors.As(err, &unknown) || len(cur.IssuingCertificateURL) == 0 {
			return nil, err
		}
		issuer, ferr := r.aia.issuerOf(ctx, cur)
		if ferr != nil {
			return nil, fmt.Errorf("%w (%w)", err, ferr)
		}
		// Only ever an intermediate: a fetched certificate can complete a
		// chain to a root already trusted, never become a trust anchor.
		opts.Intermediates.AddCert(issuer)
		v.Fetched = append(v.Fetched, issuer)
		v.FetchedFrom = append(v.FetchedFrom, cur.IssuingCertificateURL[0])
		var chains [][]*x509.Certificate
		chains, err = served[0].Verify(opts)
		if err == nil {
			return chains, nil
		}
		cur = issuer
	}
	return nil, err
}

// tlsConfig returns the client configuration for one upstream host. Go's
// built-in verification is replaced by [Roots.Verify] in VerifyConnection,
// which does everything Go does plus AIA and pins; InsecureSkipVerify is set
// only so that Go defers to it, and VerifyConnection runs on every
// handshake, resumed ones included. host "" means the SNI name.
func (r *Roots) tlsConfig(host string, cache tls.ClientSessionCache, tracker *ExpiryTracker) *tls.Config {
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
			v, err := r.Verify(context.Background(), name, cs.PeerCertificates, time.Now())
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
