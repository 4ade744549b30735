package proxy

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/postern/postern/proxy/config"
	"github.com/postern/postern/trust"
)

// InboundTLS is the HTTPS listener's certificate source for the configured
// [tls] mode.
type InboundTLS struct {
	// Config is the listener's TLS configuration.
	Config *tls.Config
	// SelfSignedCA is the CA to import into ISE in self-signed mode.
	SelfSignedCA *trust.LocalCA
	acme         *trust.ACME
}

// OpenInboundTLS prepares the certificate for listen_tls from cfg.TLS: it
// loads the files, loads or creates the self-signed CA and leaf, or sets up
// ACME (which starts with [InboundTLS.Start], once the listener is bound).
func OpenInboundTLS(cfg *config.Config, log *slog.Logger) (*InboundTLS, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	t := cfg.TLS
	switch t.Mode {
	case config.TLSModeFiles:
		fc, err := trust.NewFileCertificate(t.CertFile, t.KeyFile, log)
		if err != nil {
			return nil, err
		}
		return &InboundTLS{Config: trust.ServerTLSConfig(fc.GetCertificate)}, nil
	case config.TLSModeSelfSigned:
		ss, err := trust.LoadOrCreateSelfSigned(cfg.DataDir, t.Names, time.Now())
		if err != nil {
			return nil, fmt.Errorf("self-signed certificate: %w", err)
		}
		cert := ss.Cert
		if ss.Created {
			// The CA certificate is public; printing it is the point.
			log.Warn("self-signed CA created: import it once into ISE's trusted certificates",
				"ca_file", ss.CA.CertFile, "ca_sha256", ss.CA.Fingerprint(), "ca_pem", string(ss.CA.CertPEM()))
		}
		log.Info("HTTPS listener uses the self-signed CA", "ca_file", ss.CA.CertFile, "ca_sha256", ss.CA.Fingerprint(), "names", t.Names)
		return &InboundTLS{SelfSignedCA: ss.CA, Config: trust.ServerTLSConfig(func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return cert, nil })}, nil
	case config.TLSModeACME:
		a, err := trust.NewACME(trust.ACMEOptions{
			DataDir: cfg.DataDir, Directory: t.ACMEDirectory, Roots: t.ACMERoots, Email: t.ACMEEmail,
			Names: t.Names, Challenge: t.ACMEChallenge, ListenTLS: cfg.ListenTLS, HTTPListen: t.ACMEHTTPListen, Log: log,
		})
		if err != nil {
			return nil, err
		}
		return &InboundTLS{Config: a.TLSConfig(), acme: a}, nil
	}
	return nil, fmt.Errorf("listen_tls: unknown [tls] mode %q", t.Mode)
}

// Start begins ACME certificate management; other modes have nothing to
// start. Call it once the HTTPS listener is bound.
func (in *InboundTLS) Start(ctx context.Context) error {
	if in.acme == nil {
		return nil
	}
	return in.acme.Start(ctx)
}

// Close stops ACME renewal.
func (in *InboundTLS) Close() {
	if in.acme != nil {
		in.acme.Stop()
	}
}

// ServeBoth serves the plain listener and, when tlsLn is not nil, the HTTPS
// listener with in, until ctx is cancelled or either fails; then both shut
// down.
func (s *Server) ServeBoth(ctx context.Context, ln, tlsLn net.Listener, in *InboundTLS, grace time.Duration) error {
	if tlsLn == nil {
		return s.Serve(ctx, ln, grace)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer in.Close()
	tlsErr := make(chan error, 1)
	go func() {
		err := s.ServeTLS(ctx, tlsLn, in.Config, grace)
		cancel()
		tlsErr <- err
	}()
	if err := in.Start(ctx); err != nil {
		cancel()
		return errors.Join(fmt.Errorf("starting ACME: %w", err), <-tlsErr)
	}
	err := s.Serve(ctx, ln, grace)
	cancel()
	return errors.Join(err, <-tlsErr)
}
