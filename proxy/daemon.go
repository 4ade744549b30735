package proxy

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"net"
	"time"

	"github.com/postern/postern/proxy/audit"
	"github.com/postern/postern/proxy/config"
	"github.com/postern/postern/proxy/deliver"
	"github.com/postern/postern/proxy/metrics"
	"github.com/postern/postern/trust"
)

// DaemonOptions are the outside of a running postern (`postern serve`):
// what overrides the config, where it logs and audits, and how it is told
// to reload.
type DaemonOptions struct {
	// Load re-reads the configuration on every reload.
	Load func() (*config.Config, error)
	// Listen and AdminListen override [server] listen and admin_listen
	// ("" keeps the config's; AdminListen config.AdminOff turns it off);
	// Grace overrides shutdown_grace (0 keeps it).
	Listen, AdminListen string
	Grace               time.Duration
	// Log is the operational log; Stdout and Stderr are the console audit
	// sinks.
	Log            *slog.Logger
	Stdout, Stderr io.Writer
	Build          metrics.BuildInfo
	// Hangup delivers each SIGHUP: reopen the audit files (they may have
	// been rotated) and reload the configuration.
	Hangup <-chan struct{}
}

// errLogged is returned by Run for a failure it has logged already.
var errLogged = errors.New("postern failed; see the log")

// Run serves cfg until ctx ends, then shuts down within the grace period.
// It logs every failure itself; a non-nil error only says that it failed.
func Run(ctx context.Context, cfg *config.Config, o DaemonOptions) error {
	log := o.Log
	for _, r := range cfg.Routes {
		endpoint := "none (sandbox)"
		if r.Endpoint != nil {
			endpoint = r.Endpoint.Host // not the whole URL: a query may hold a key
		}
		log.Debug("route", "route", r.Name, "inbound", r.Inbound, "match_host", r.MatchHost, "match_path", r.MatchPath,
			"provider", r.ProviderName, "endpoint_host", endpoint, "token", r.TokenSource)
	}
	auditCfg := cfg.Audit
	auditCfg.Version = o.Build.Version // for each chain_start line
	sinks, err := audit.OpenSinks(auditCfg, o.Stdout, o.Stderr, log)
	if err != nil {
		log.Error("cannot open audit sinks", "err", err)
		return errLogged
	}
	defer sinks.Close()
	ls, err := openListeners(cfg, o)
	if err != nil {
		return err
	}
	opts := Options{Log: log,
		// The audit line is a contract with auditors and SIEMs: always
		// JSON, every line, whatever -log-format and -log-level say.
		Audit: audit.NewLogger(sinks), AuditSinks: sinks,
		Metrics: metrics.New(o.Build), UserAgent: deliver.UserAgent(o.Build.Version)}
	if len(cfg.InterceptHosts) > 0 {
		if opts.InterceptCA, err = openInterceptCA(cfg, log); err != nil {
			return err
		}
	}
	srv := New(cfg, opts)
	defer srv.Close()
	return srv.runListeners(ctx, cfg, ls, o, sinks)
}

// listeners are the sockets Run serves, bound before anything is served so
// that a port in use fails start-up.
type listeners struct {
	plain, admin, tls net.Listener // admin and tls nil when off
	smtp              net.Listener // nil without [smtp] listen
	inbound           *InboundTLS
	grace             time.Duration
}

func openListeners(cfg *config.Config, o DaemonOptions) (*listeners, error) {
	log, ls := o.Log, &listeners{grace: o.Grace}
	if ls.grace <= 0 {
		ls.grace = cfg.ShutdownGrace
	}
	addr := cmp.Or(o.Listen, cfg.Listen)
	var err error
	if ls.plain, err = net.Listen("tcp", addr); err != nil {
		log.Error("cannot listen", "listen", addr, "err", err)
		return nil, errLogged
	}
	if adminAddr := cmp.Or(o.AdminListen, cfg.AdminListen); adminAddr != "" && adminAddr != config.AdminOff {
		if ls.admin, err = net.Listen("tcp", adminAddr); err != nil {
			log.Error("cannot listen for admin", "admin_listen", adminAddr, "err", err)
			return nil, errLogged
		}
	}
	if cfg.SMTP.Listen != "" {
		if ls.smtp, err = net.Listen("tcp", cfg.SMTP.Listen); err != nil {
			log.Error("cannot listen for SMTP", "smtp_listen", cfg.SMTP.Listen, "err", err)
			return nil, errLogged
		}
		log.Info("postern listening for SMTP", "smtp_listen", ls.smtp.Addr().String(), "starttls", cfg.ListenTLS != "")
	}
	if cfg.ListenTLS == "" {
		return ls, nil
	}
	if ls.tls, err = net.Listen("tcp", cfg.ListenTLS); err != nil {
		log.Error("cannot listen", "listen_tls", cfg.ListenTLS, "err", err)
		return nil, errLogged
	}
	if ls.inbound, err = OpenInboundTLS(cfg, log); err != nil {
		log.Error("cannot set up the HTTPS listener", "err", err)
		return nil, errLogged
	}
	log.Info("postern listening with TLS", "listen_tls", ls.tls.Addr().String(), "tls", cfg.TLS.String())
	return ls, nil
}

// openInterceptCA loads (or makes) the CA that intercepted tunnels are
// served with, and says what ISE must trust.
func openInterceptCA(cfg *config.Config, log *slog.Logger) (*trust.InterceptCA, error) {
	ic, created, err := trust.LoadOrCreateInterceptCA(cfg.DataDir, cfg.InterceptHosts)
	if err != nil {
		log.Error("cannot load the interception CA", "err", err)
		return nil, errLogged
	}
	if created {
		log.Warn("interception CA created: ISE must trust it to send HTTPS through postern", "ca_file", ic.CA().CertFile,
			"ca_sha256", ic.CA().Fingerprint(), "ca_pem", string(ic.CA().CertPEM()))
	}
	log.Info("intercepting CONNECT", "hosts", cfg.InterceptHosts, "ca_file", ic.CA().CertFile, "ca_sha256", ic.CA().Fingerprint())
	ReportInterceptCA(log, ic, cfg.InterceptHosts)
	return ic, nil
}

// runListeners serves until ctx ends: the admin listener stays up while
// the others drain, so probes see /readyz go 503.
func (s *Server) runListeners(ctx context.Context, cfg *config.Config, ls *listeners, o DaemonOptions, sinks *audit.Sinks) error {
	log := o.Log
	adminCtx, stopAdmin := context.WithCancel(context.Background())
	adminDone := make(chan error, 1)
	adminAt := "off"
	if ls.admin != nil {
		adminAt = ls.admin.Addr().String()
		go func() { adminDone <- s.ServeAdmin(adminCtx, ls.admin, o.Load) }()
	} else {
		adminDone <- nil
	}
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-o.Hangup:
				sinks.Reopen()
				s.ReloadFrom(o.Load) // logs its own outcome
			}
		}
	}()
	smtpAt := "off"
	if ls.smtp != nil {
		smtpAt = ls.smtp.Addr().String()
	}
	// Ready from the moment "postern listening" is logged: the listeners
	// are bound, and a connection made now waits in their backlog until
	// serving starts. serveUntilShutdown marks it again, and unready as
	// the drain begins.
	s.ready.Store(true)
	log.Info("postern listening", "listen", ls.plain.Addr().String(), "admin", adminAt, "smtp", smtpAt, "config", cfg.Source,
		"routes", len(cfg.Routes), "upstream_roots", cfg.Roots.Report().String(), "version", o.Build.Version, "commit", o.Build.Commit)
	// The SMTP listener runs beside the HTTP ones; either failing stops
	// the others.
	ctx, stop := context.WithCancel(ctx)
	defer stop()
	smtpDone := make(chan error, 1)
	if ls.smtp != nil {
		var starttls *tls.Config
		if ls.inbound != nil {
			starttls = ls.inbound.Config
		}
		go func() {
			err := s.ServeSMTP(ctx, ls.smtp, starttls, ls.grace)
			stop()
			smtpDone <- err
		}()
	} else {
		smtpDone <- nil
	}
	err := s.ServeBoth(ctx, ls.plain, ls.tls, ls.inbound, ls.grace)
	stop()
	err = errors.Join(err, <-smtpDone)
	stopAdmin()
	if aerr := <-adminDone; aerr != nil {
		log.Error("admin listener stopped", "err", aerr)
	}
	if err != nil {
		log.Error("server stopped", "err", err)
		return errLogged
	}
	log.Info("postern stopped")
	return nil
}
