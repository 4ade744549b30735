// Package proxy is postern's server: it takes legacy SMS gateway requests in
// the three forms Cisco ISE sends them (as an HTTP proxy, straight to
// postern, or to the provider's name pointed at postern by DNS), runs each
// through one pipeline (pipeline.go) — admit, route, parse, guard,
// deliver, answer, audit — and never relays anything it did not build
// itself. Its parts are subpackages, imported one way: config (the file),
// guard (limits and credentials), deliver (sending), audit (the trail) and
// metrics; see docs/architecture.md.
package proxy

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/elazarl/goproxy"

	"github.com/postern/postern/proxy/audit"
	"github.com/postern/postern/proxy/config"
	"github.com/postern/postern/proxy/deliver"
	"github.com/postern/postern/proxy/guard"
	"github.com/postern/postern/proxy/metrics"
	"github.com/postern/postern/proxy/store"
	"github.com/postern/postern/trust"
)

// Options are the outside parts a Server writes to.
type Options struct {
	// Log receives operational messages (start-up, sandbox notices, warnings).
	Log *slog.Logger
	// Audit receives one line per message or refused request.
	Audit *slog.Logger
	// AuditSinks, when set, are told a reloaded [audit] chain_key: each
	// sink's chain starts anew with it, linked to the old one.
	AuditSinks *audit.Sinks
	// DialContext, when set, replaces how provider connections are dialled
	// (TLS verification is unaffected). Tests use it to reach a fake
	// provider under its real-looking name on loopback; nil dials normally.
	DialContext func(ctx context.Context, network, addr string) (net.Conn, error)
	// InterceptCA terminates TLS for CONNECT to [intercept] hosts; nil
	// refuses every CONNECT.
	InterceptCA *trust.InterceptCA
	// Expiry records each upstream's verified leaf; nil makes a new one
	// that logs to Log (see Server.UpstreamExpiry).
	Expiry *trust.ExpiryTracker
	// Now is the clock rate limits run on; nil means time.Now. Tests pass
	// their own to hit limits exactly without sleeping.
	Now func() time.Time
	// Metrics receives the server's counters; nil makes a fresh set.
	Metrics *metrics.Metrics
	// RetryJitter returns a uniform random number in [0, 1) for retry
	// backoff; nil uses math/rand. RetrySleep waits between retries; nil
	// sleeps for real. Tests pass their own so retries never wait.
	RetryJitter func() float64
	RetrySleep  func(ctx context.Context, d time.Duration) error
	// UserAgent is sent with every provider request (see
	// deliver.UserAgent); "" sends plain "postern".
	UserAgent string

	// dryRun, when set, takes every provider request instead of the
	// network, and each message gets one attempt (translate.go).
	dryRun http.RoundTripper
}

// Server is a running postern configuration.
type Server struct {
	opts  Options
	log   *slog.Logger
	audit *slog.Logger
	gp    *goproxy.ProxyHttpServer
	rt    atomic.Pointer[runtime]

	metrics   *metrics.Metrics
	started   *config.Config  // the config listeners and sinks were opened with: what a reload cannot change
	reloadMu  sync.Mutex      // one reload at a time (SIGHUP and the admin call)
	ready     atomic.Bool     // serving and not shutting down: /readyz
	flights   atomic.Int64    // requests in the pipeline, for shutdown
	stopSends context.Context // cancelled when the shutdown grace period is over
	cutOff    context.CancelFunc
	joins     *deliver.Joins // identical requests in flight, across reloads
	tunnels   tunnels        // intercepted CONNECT tunnels being served (intercept.go)
	stores    stores         // the [cluster] store, across reloads (cluster.go)

	plain atomic.Pointer[plainServer] // the plain listener being served (for tests: FrontCounts)
}

// runtime is everything derived from one Config; a reload builds a new
// one and swaps it whole, so a request sees one config from start to end.
type runtime struct {
	cfg       *config.Config
	transport *http.Transport     // net/http, for routes with upstream_http2
	fast      *deliver.FastClient // HTTP/1.1 keep-alive, for every other route
	guards    *guard.State
	deliver   *deliver.Deliverer
	store     *store.Store // [cluster], nil without (cluster.go)
}

func newRuntime(cfg *config.Config, opts Options, log *slog.Logger, m *metrics.Metrics, joins *deliver.Joins, stopSends context.Context) *runtime {
	tr := trust.NewTransport(cfg.Roots, trust.WithExpiryTracker(opts.Expiry))
	if opts.DialContext != nil {
		tr.DialContext = opts.DialContext
	}
	// The same verification, expiry tracking and dialling for both clients.
	dialer := trust.NewDialer(cfg.Roots, trust.WithExpiryTracker(opts.Expiry))
	dialer.DialContext = opts.DialContext
	fast := deliver.NewFastClient(dialer, stopSends)
	do := deliver.Options{Transport: tr, Client: fast, Log: log, Metrics: m, UserAgent: opts.UserAgent,
		RetryJitter: opts.RetryJitter, RetrySleep: opts.RetrySleep, Joins: joins}
	if opts.dryRun != nil {
		do.Transport, do.Client, do.DryRun = opts.dryRun, nil, true
	}
	return &runtime{cfg: cfg, transport: tr, fast: fast, guards: guard.New(&cfg.Guards, opts.Now), deliver: deliver.New(cfg, do)}
}

// closeIdleConnections closes the upstream connections no request is using.
func (rt *runtime) closeIdleConnections() {
	rt.transport.CloseIdleConnections()
	rt.fast.CloseIdleConnections()
}

// New builds a server for cfg. Nothing listens until Serve.
func New(cfg *config.Config, opts Options) *Server {
	s := &Server{opts: opts, log: opts.Log, audit: opts.Audit, metrics: opts.Metrics, started: cfg}
	if s.metrics == nil {
		s.metrics = metrics.New(metrics.BuildInfo{})
	}
	s.stopSends, s.cutOff = context.WithCancel(context.Background())
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.audit == nil {
		s.audit = slog.New(slog.DiscardHandler)
	}
	if s.opts.Expiry == nil {
		s.opts.Expiry = trust.NewExpiryTracker(s.log, nil)
	}
	s.metrics.TrackExpiry(s.opts.Expiry)
	s.joins = &deliver.Joins{}
	rt := newRuntime(cfg, s.opts, s.log, s.metrics, s.joins, s.stopSends)
	s.attachStore(rt)
	s.rt.Store(rt)

	gp := goproxy.NewProxyHttpServer()
	// Verbose logs whole URLs, i.e. legacy passwords and guest passwords.
	gp.Verbose = false
	gp.Logger = printfLogger{s.log}
	// goproxy must never talk to anyone: postern answers every request
	// itself. Its transport and CONNECT dialer are replaced with ones that
	// refuse, so neither a bug nor HTTP(S)_PROXY in the environment can turn
	// postern into a relay.
	gp.Tr = &http.Transport{Proxy: nil, DialContext: refuseDial}
	gp.ConnectDial = func(network, addr string) (net.Conn, error) { return refuseDial(context.Background(), network, addr) }
	gp.OnRequest().HandleConnectFunc(s.connect) // intercept listed hosts, refuse the rest
	gp.OnRequest().DoFunc(s.handle)
	gp.NonproxyHandler = http.HandlerFunc(s.direct)
	s.gp = gp
	return s
}

func refuseDial(context.Context, string, string) (net.Conn, error) {
	return nil, errors.New("postern never relays: upstream dialing through goproxy is disabled")
}

// Stats returns the guardrail counters since start.
func (s *Server) Stats() metrics.Stats { return s.metrics.Stats() }

// writeAudit counts a in the metrics and writes its audit line.
func (s *Server) writeAudit(ctx context.Context, a *audit.Record) {
	s.metrics.Record(a)
	audit.Write(ctx, s.audit, a)
}

// Config returns the configuration currently served.
func (s *Server) Config() *config.Config { return s.rt.Load().cfg }

// UpstreamExpiry reports the last verified leaf certificate of every
// provider host and its expiry (for metrics and diagnostics).
func (s *Server) UpstreamExpiry() *trust.ExpiryTracker { return s.opts.Expiry }

// Handler is the HTTP handler serving all three ways in.
func (s *Server) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if hj, ok := w.(http.Hijacker); ok && r.Method == http.MethodConnect {
			w = keepBufferedWriter{ResponseWriter: w, hj: hj}
		}
		s.gp.ServeHTTP(w, r)
	})
}

// NewHTTPServer returns an *http.Server for the handler with limits suited to
// ISE's small requests: slow or oversized clients cannot hold connections.
func (s *Server) NewHTTPServer() *http.Server {
	cfg := s.Config()
	hs := &http.Server{
		Handler:           s.Handler(),
		ReadHeaderTimeout: cfg.Guards.HeaderReadTimeout,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      cfg.RequestTimeout + 10*time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    maxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	// Intercepted tunnels are hijacked connections, which Shutdown does not
	// see: close them as it closes its own.
	hs.RegisterOnShutdown(s.tunnels.shutdown)
	return hs
}

// printfLogger receives goproxy's log lines. Their arguments can quote a
// request line, a Host header or a URL, that is, message texts and legacy
// passwords (goproxy's "Cannot read request from mitm'd client" quotes the
// malformed request line), so none of them is ever formatted: postern logs
// a fixed message and, when the format is one of goproxy's own constant
// messages, that format with its verbs unfilled.
type printfLogger struct{ log *slog.Logger }

func (p printfLogger) Printf(format string, _ ...any) {
	p.log.Warn("goproxy reported a problem; its details are withheld because they may quote a request",
		"event", goproxyEvent(format))
}

// goproxyEvent names the goproxy message a format belongs to: goproxy
// writes "[%03d] WARN: " + a constant message + "\n". A format that is not
// one of those (none is expected; a verbose mode would pass dynamic text)
// is not repeated.
func goproxyEvent(format string) string {
	msg := strings.TrimSuffix(strings.TrimPrefix(format, "[%03d] "), "\n")
	msg = strings.TrimPrefix(strings.TrimPrefix(msg, "WARN: "), "INFO: ")
	if _, ok := goproxyMessages[msg]; ok {
		return msg
	}
	return "unrecognised goproxy message"
}

// goproxyMessages are goproxy v1.9.4's warnings (ctx.Warnf formats).
var goproxyMessages = map[string]struct{}{
	"Cannot read response %s":                            {},
	"Hijack error: %v":                                   {},
	"Can't close response body %v":                       {},
	"Cannot hijack connection: %v":                       {},
	"Cannot write response that reject http CONNECT: %v": {},
	"ConnectProxyAuthHijack is not supported when the proxy is served over HTTP/2":    {},
	"CONNECT: server does not support hijacking and request is not HTTP/2 (proto=%s)": {},
	"Error dialing to %s: %s":                             {},
	"Cannot handshake client %v %v":                       {},
	"Cannot read request from mitm'd client %v %v":        {},
	"Cannot parse URL %s: %v":                             {},
	"Illegal URL %s":                                      {},
	"Cannot read response from mitm'd server %v":          {},
	"Unable to use Websocket connection":                  {},
	"Cannot write response header from mitm'd client: %v": {},
	"Cannot flush response header from mitm'd client: %v": {},
	"Cannot write response from mitm'd client: %v":        {},
	"Error responding to client: %s":                      {},
	"Error closing client connection: %s":                 {},
	"Error copying to client: %s":                         {},
	"Cannot sign host certificate with provided CA: %s":   {},
	"HTTP/2 MITM: upstream RoundTrip failed: %v":          {},
	"HTTP/2 MITM: error writing response body: %v":        {},
	"HTTP/2 MITM: error reading response body: %v":        {},
}
