package trust

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"slices"
	"strconv"

	"github.com/caddyserver/certmagic"
	"go.uber.org/zap"
)

// ACME challenge names, as in the [tls] acme_challenge key.
const (
	ACMEChallengeTLSALPN = "tls-alpn-01"
	ACMEChallengeHTTP    = "http-01"
)

// ACMEOptions configure [NewACME].
type ACMEOptions struct {
	// DataDir holds certmagic's storage (account, certificates, locks)
	// under DataDir/acme.
	DataDir string
	// Directory is the ACME CA's directory URL.
	Directory string
	// Roots verifies the ACME CA's own HTTPS endpoint (for a private CA,
	// the system roots plus its root); nil means the system roots.
	Roots *x509.CertPool
	// Email is the ACME account contact; optional.
	Email string
	// Names are the host names (or IPs) the certificate covers.
	Names []string
	// Challenge is ACMEChallengeTLSALPN (answered by the HTTPS listener
	// using TLSConfig) or ACMEChallengeHTTP (answered by a listener
	// certmagic opens on HTTPListen).
	Challenge string
	// ListenTLS is the HTTPS listener's host:port: TLS-ALPN-01 validation
	// arrives there.
	ListenTLS string
	// HTTPListen is where HTTP-01 is answered, e.g. ":80".
	HTTPListen string
	// Log receives one line per certificate event; nothing secret.
	Log *slog.Logger
}

// ACME obtains and renews the HTTPS listener's certificate with certmagic.
type ACME struct {
	cfg   *certmagic.Config
	cache *certmagic.Cache
	names []string
	log   *slog.Logger
}

// NewACME prepares certificate management; nothing is requested until
// [ACME.Start].
func NewACME(o ACMEOptions) (*ACME, error) {
	if len(o.Names) == 0 {
		return nil, fmt.Errorf("acme: no names to obtain a certificate for")
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	// The ACME account key and certificate keys are kept under DataDir.
	if err := PrepareDataDir(o.DataDir); err != nil {
		return nil, fmt.Errorf("acme: %w", err)
	}
	// certmagic logs through zap; it is silenced so that it cannot log
	// anything postern does not choose to (OnEvent below reports progress).
	quiet := zap.NewNop()
	a := &ACME{names: slices.Clone(o.Names), log: o.Log}
	a.cache = certmagic.NewCache(certmagic.CacheOptions{
		GetConfigForCert: func(certmagic.Certificate) (*certmagic.Config, error) { return a.cfg, nil },
		Logger:           quiet,
	})
	a.cfg = certmagic.New(a.cache, certmagic.Config{
		Storage: &certmagic.FileStorage{Path: filepath.Join(o.DataDir, "acme")},
		Logger:  quiet,
		OnEvent: a.onEvent,
	})
	issuer := certmagic.ACMEIssuer{
		CA:           o.Directory,
		TestCA:       o.Directory, // never fall back to another CA on retry
		Email:        o.Email,
		Agreed:       true, // configuring mode "acme" accepts the CA's terms
		TrustedRoots: o.Roots,
		Logger:       quiet,
	}
	switch o.Challenge {
	case ACMEChallengeTLSALPN:
		host, port, err := net.SplitHostPort(o.ListenTLS)
		if err != nil {
			return nil, fmt.Errorf("acme: listen_tls %q: %w", o.ListenTLS, err)
		}
		// The CA connects to this port; postern's HTTPS listener is already
		// bound to exactly this address and answers through TLSConfig, so
		// certmagic's own solver finds it taken and leaves it to us.
		issuer.ListenHost = host
		issuer.AltTLSALPNPort, _ = strconv.Atoi(port)
		issuer.DisableHTTPChallenge = true
	case ACMEChallengeHTTP:
		host, port, err := net.SplitHostPort(o.HTTPListen)
		if err != nil {
			return nil, fmt.Errorf("acme: acme_http_listen %q: %w", o.HTTPListen, err)
		}
		issuer.ListenHost = host
		issuer.AltHTTPPort, _ = strconv.Atoi(port)
		issuer.DisableTLSALPNChallenge = true
	default:
		return nil, fmt.Errorf("acme: unknown challenge %q", o.Challenge)
	}
	a.cfg.Issuers = []certmagic.Issuer{certmagic.NewACMEIssuer(a.cfg, issuer)}
	return a, nil
}

func (a *ACME) onEvent(_ context.Context, event string, data map[string]any) error {
	switch event {
	case "cert_obtaining", "cert_obtained", "cert_failed", "cached_managed_cert":
		id, _ := data["identifier"].(string)
		level := slog.LevelInfo
		if event == "cert_failed" {
			level = slog.LevelWarn
		}
		a.log.Log(context.Background(), level, "acme: "+event, "name", id)
	}
	return nil
}

// Start loads the certificate from storage or begins obtaining it, and
// keeps it renewed until [ACME.Stop]. It does not wait for issuance: the
// listener must be serving for TLS-ALPN-01 to succeed.
func (a *ACME) Start(ctx context.Context) error {
	return a.cfg.ManageAsync(ctx, a.names)
}

// TLSConfig is the HTTPS listener's configuration: [ServerTLSConfig] with
// the managed certificate, also answering TLS-ALPN-01 challenges.
func (a *ACME) TLSConfig() *tls.Config {
	c := ServerTLSConfig(a.cfg.GetCertificate)
	c.NextProtos = append(c.NextProtos, "acme-tls/1")
	return c
}

// Stop ends renewal.
func (a *ACME) Stop() { a.cache.Stop() }
