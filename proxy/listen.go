package proxy

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/postern/postern/proxy/config"
	"github.com/postern/postern/proxy/inbound"
)

// listener is one way postern is served; serveUntilShutdown runs each the
// same way.
type listener struct {
	kind  string // in errors: "" (plain), "TLS " or "admin "
	serve func(ln net.Listener) error
	grace time.Duration // how long requests in flight may finish on shutdown
	// pipeline: the listener feeds the message pipeline, so it counts for
	// /readyz and cuts off messages still in flight when grace is over.
	pipeline bool
}

// serveUntilShutdown serves hs on ln until ctx is cancelled, then shuts
// down: it stops accepting, lets requests in flight finish for up to grace,
// and then, for a pipeline listener, cuts off what is left. A message cut
// off is answered and audited with its outcome (usually "unknown": it may
// have reached the provider). Being cut off is part of a normal shutdown,
// not an error.
func (s *Server) serveUntilShutdown(ctx context.Context, hs httpServer, ln net.Listener, l listener) error {
	errc := make(chan error, 1)
	go func() { errc <- l.serve(ln) }()
	if l.pipeline {
		s.ready.Store(true)
		defer s.ready.Store(false)
	}
	select {
	case err := <-errc:
		return fmt.Errorf("serving %s%s: %w", l.kind, ln.Addr(), err)
	case <-ctx.Done():
	}
	if l.pipeline {
		s.ready.Store(false)
	}
	sctx, cancel := context.WithTimeout(context.Background(), l.grace)
	defer cancel()
	err := hs.Shutdown(sctx)
	switch {
	case err == nil:
	case l.pipeline:
		s.cutOffInFlight(hs, l.grace)
	case !errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("shutting down %s%s: %w", l.kind, ln.Addr(), err)
	default:
		hs.Close()
	}
	if l.pipeline {
		s.rt.Load().closeIdleConnections()
	}
	return nil
}

// cutOffInFlight ends the messages still in flight once the grace period
// is over, and gives them a moment to answer ISE and write their audit
// lines before hs closes every connection.
func (s *Server) cutOffInFlight(hs httpServer, grace time.Duration) {
	s.log.Warn("shutdown grace period over: cutting off messages still in flight; each is audited with its outcome",
		"grace", grace.String(), "in_flight", s.flights.Load())
	s.cutOff()
	fctx, fcancel := context.WithTimeout(context.Background(), cutOffWait)
	defer fcancel()
	if err := hs.Shutdown(fctx); err != nil {
		hs.Close()
	}
}

// cutOffWait bounds how long cut-off messages get to be answered and audited.
const cutOffWait = 5 * time.Second

// adminShutdownWait bounds the admin listener's shutdown: it has no
// messages to finish.
const adminShutdownWait = 2 * time.Second

// httpServer is what serveUntilShutdown stops: an *http.Server, or the
// plain listener's front with its fallback (plainServer).
type httpServer interface {
	Shutdown(ctx context.Context) error
	Close() error
}

// Serve accepts connections on ln until ctx is cancelled, then shuts down
// (see serveUntilShutdown). The requests of the strict subset ISE sends
// are read and answered by the front (proxy/inbound) in each connection's
// goroutine; every other connection goes to net/http and goproxy as before
// (plainServer).
func (s *Server) Serve(ctx context.Context, ln net.Listener, grace time.Duration) error {
	ps := s.newPlainServer(ln.Addr())
	s.plain.Store(ps)
	return s.serveUntilShutdown(ctx, ps, ln, listener{serve: ps.Serve, grace: grace, pipeline: true})
}

// plainServer is the plain listener: the front serves what it can, and
// hands every other connection, replayed from its first byte, to hs (the
// same *http.Server and goproxy handler as the TLS listener's) through
// handoff.
type plainServer struct {
	front   *inbound.Server
	hs      *http.Server
	handoff *inbound.Handoff
	tunnels *tunnels
}

func (s *Server) newPlainServer(addr net.Addr) *plainServer {
	hs := s.NewHTTPServer()
	h := inbound.NewHandoff(addr)
	front := &inbound.Server{
		Handler:  s.serveFront,
		Fallback: h,
		Limits: func() inbound.Limits {
			g := &s.Config().Guards
			return inbound.Limits{MaxURLBytes: g.MaxURLBytes, MaxBodyBytes: g.MaxBodyBytes}
		},
		// net/http's timeouts, fixed at start as net/http's are (a reload
		// of header_read_timeout or request_timeout needs a restart).
		ReadHeaderTimeout: hs.ReadHeaderTimeout,
		WriteTimeout:      hs.WriteTimeout,
		IdleTimeout:       hs.IdleTimeout,
		Log:               s.log,
	}
	return &plainServer{front: front, hs: hs, handoff: h, tunnels: &s.tunnels}
}

// Serve serves ln with the front and the handed-off connections with hs.
func (p *plainServer) Serve(ln net.Listener) error {
	go p.hs.Serve(p.handoff) // returns when Shutdown or Close closes handoff
	return p.front.Serve(ln)
}

// Shutdown drains both as net/http's Shutdown does: idle connections close
// at once, busy ones after their reply. The front drains first, so that a
// connection it hands off meanwhile is still taken by hs.
func (p *plainServer) Shutdown(ctx context.Context) error {
	p.hs.SetKeepAlivesEnabled(false) // closes hs's idle connections
	p.tunnels.shutdown()
	ferr := p.front.Shutdown(ctx)
	herr := p.hs.Shutdown(ctx)
	if ferr != nil {
		return ferr
	}
	return herr
}

// Close closes every connection of both at once.
func (p *plainServer) Close() error {
	return errors.Join(p.front.Close(), p.hs.Close())
}

// ServeTLS serves the same handler as Serve over TLS on ln — HTTP/1.1 only,
// TLS 1.2 or later with modern suites — and shuts down as Serve does.
func (s *Server) ServeTLS(ctx context.Context, ln net.Listener, cfg *tls.Config, grace time.Duration) error {
	hs := s.NewHTTPServer()
	hs.TLSConfig = cfg
	// A non-nil empty map keeps net/http from offering h2: ISE speaks
	// HTTP/1.1, and goproxy's handler expects it.
	hs.TLSNextProto = map[string]func(*http.Server, *tls.Conn, http.Handler){}
	return s.serveUntilShutdown(ctx, hs, ln, listener{kind: "TLS ",
		serve: func(ln net.Listener) error { return hs.ServeTLS(ln, "", "") }, grace: grace, pipeline: true})
}

// ServeAdmin serves [Server.AdminHandler] on ln until ctx is cancelled. It
// stays up while the main listener drains, so probes see /readyz go 503.
func (s *Server) ServeAdmin(ctx context.Context, ln net.Listener, load func() (*config.Config, error)) error {
	hs := &http.Server{
		Handler:           s.AdminHandler(load),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       60 * time.Second,
		MaxHeaderBytes:    maxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	return s.serveUntilShutdown(ctx, hs, ln, listener{kind: "admin ", serve: hs.Serve, grace: adminShutdownWait})
}
