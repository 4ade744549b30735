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
)

// listener is one way postern is served; serveUntilShutdown runs each the
// same way.
type listener struct {
	kind  string // in errors: "" (plain), "TLS " or "admin "
	serve func(hs *http.Server, ln net.Listener) error
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
func (s *Server) serveUntilShutdown(ctx context.Context, hs *http.Server, ln net.Listener, l listener) error {
	errc := make(chan error, 1)
	go func() { errc <- l.serve(hs, ln) }()
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
func (s *Server) cutOffInFlight(hs *http.Server, grace time.Duration) {
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

// Serve accepts connections on ln until ctx is cancelled, then shuts down
// (see serveUntilShutdown).
func (s *Server) Serve(ctx context.Context, ln net.Listener, grace time.Duration) error {
	return s.serveUntilShutdown(ctx, s.NewHTTPServer(), ln, listener{
		serve: (*http.Server).Serve, grace: grace, pipeline: true})
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
		serve: func(hs *http.Server, ln net.Listener) error { return hs.ServeTLS(ln, "", "") }, grace: grace, pipeline: true})
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
	return s.serveUntilShutdown(ctx, hs, ln, listener{kind: "admin ", serve: (*http.Server).Serve, grace: adminShutdownWait})
}
