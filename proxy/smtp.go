package proxy

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"time"

	"github.com/postern/postern/proxy/smtpd"
)

// ServeSMTP serves the [smtp] listener on ln until ctx is cancelled, then
// shuts it down as the HTTP listeners do: it stops accepting, lets
// messages in flight finish for up to grace, then cuts off what is left,
// each answered and audited with its outcome. tlsCfg is STARTTLS's
// certificate ([tls]); nil offers no STARTTLS. The SMTP front end drives
// the same stages as handle, on the configuration serving now.
func (s *Server) ServeSMTP(ctx context.Context, ln net.Listener, tlsCfg *tls.Config, grace time.Duration) error {
	srv := smtpd.New(s.started, smtpd.Options{
		Runtime: func() smtpd.Runtime {
			rt := s.rt.Load()
			return smtpd.Runtime{Config: rt.cfg, Guards: rt.guards, Deliver: rt.deliver}
		},
		Audit: s.writeAudit, Metrics: s.metrics, Track: func() func() { return s.track().end }, StopSends: s.stopSends, TLS: tlsCfg, Log: s.log,
	})
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serving SMTP %s: %w", ln.Addr(), err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		s.log.Warn("shutdown grace period over: cutting off SMTP messages still in flight; each is audited with its outcome",
			"grace", grace.String(), "in_flight", s.flights.Load())
		s.cutOff()
		fctx, fcancel := context.WithTimeout(context.Background(), cutOffWait)
		defer fcancel()
		if srv.Shutdown(fctx) != nil {
			srv.Close()
		}
	}
	return <-errc
}
