package trust

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"net/netip"
	"time"

	"github.com/postern/postern/internal/sysconn"
)

// Defaults for [NewTransport].
const (
	// DefaultDialTimeout bounds the TCP connect to a provider.
	DefaultDialTimeout = 5 * time.Second
	// DefaultTLSHandshakeTimeout bounds the TLS handshake with a provider.
	DefaultTLSHandshakeTimeout = 5 * time.Second
	// DefaultResponseHeaderTimeout bounds the wait for a provider's response
	// headers once the request has been written.
	DefaultResponseHeaderTimeout = 15 * time.Second
	// DefaultMaxIdleConnsPerHost is the keep-alive pool size per provider
	// host, sized for bursts of SMS (for example a batch of guest accounts).
	DefaultMaxIdleConnsPerHost = 64
	// DefaultIdleConnTimeout closes pooled connections idle for this long.
	DefaultIdleConnTimeout = 90 * time.Second
)

// Option adjusts a transport built by [NewTransport].
type Option func(*transportConfig)

type transportConfig struct {
	responseHeaderTimeout time.Duration
	expiry                *ExpiryTracker
}

// WithExpiryTracker records every verified upstream leaf in t.
func WithExpiryTracker(t *ExpiryTracker) Option {
	return func(c *transportConfig) { c.expiry = t }
}

// WithResponseHeaderTimeout sets how long to wait for a provider's response
// headers after the request is written. Non-positive values keep
// [DefaultResponseHeaderTimeout]: a provider call never waits forever.
func WithResponseHeaderTimeout(d time.Duration) Option {
	return func(c *transportConfig) {
		if d > 0 {
			c.responseHeaderTimeout = d
		}
	}
}

// ClientTLSConfig returns a new TLS client configuration that verifies
// servers with [Roots.Verify] — r's roots, AIA chasing and pins as set by
// [Roots.WithPolicy] — against the SNI name. It does not know the server's
// address, so AIA may only reach public addresses: the minimum version is TLS 1.2,
// and sessions are resumed from a fresh LRU cache. Go's own check is
// replaced, not skipped: InsecureSkipVerify is set only together with a
// VerifyConnection doing the full verification, and a connection without a
// server name (an IP address) is refused. Each call returns a distinct
// config with its own session cache. [NewTransport] binds the name per
// connection instead, so that IP endpoints verify too.
func (r *Roots) ClientTLSConfig() *tls.Config {
	return r.tlsConfig(context.Background(), "", netip.Addr{}, tls.NewLRUClientSessionCache(0), nil)
}

// NewTransport returns the HTTP transport for provider calls. It verifies
// every server against roots (see [Roots.ClientTLSConfig]), never uses a
// proxy (HTTP_PROXY, HTTPS_PROXY and friends are ignored), tries HTTP/2,
// pools keep-alive connections for bursts and bounds dialing, the TLS
// handshake and the wait for response headers.
//
// NewTransport panics if roots is nil: that is a programming error, and
// silently falling back to some other trust store would hide it.
func NewTransport(roots *Roots, opts ...Option) *http.Transport {
	if roots == nil {
		panic("trust: NewTransport called with nil *Roots")
	}
	cfg := transportConfig{responseHeaderTimeout: DefaultResponseHeaderTimeout}
	for _, o := range opts {
		o(&cfg)
	}
	dialer := &net.Dialer{
		Timeout:   DefaultDialTimeout,
		KeepAlive: 30 * time.Second,
	}
	tr := &http.Transport{
		Proxy:                  nil, // never reroute provider traffic via the environment
		DialContext:            dialer.DialContext,
		TLSClientConfig:        roots.ClientTLSConfig(),
		TLSHandshakeTimeout:    DefaultTLSHandshakeTimeout,
		ForceAttemptHTTP2:      true,
		MaxIdleConns:           4 * DefaultMaxIdleConnsPerHost,
		MaxIdleConnsPerHost:    DefaultMaxIdleConnsPerHost,
		IdleConnTimeout:        DefaultIdleConnTimeout,
		ResponseHeaderTimeout:  cfg.responseHeaderTimeout,
		ExpectContinueTimeout:  1 * time.Second,
		MaxResponseHeaderBytes: 64 << 10,
	}
	// The TLS handshake is done here rather than from TLSClientConfig so
	// that verification knows the host it dialled even when that is an IP
	// address, which crypto/tls does not pass to VerifyConnection. DialContext
	// is read at dial time, so a caller may still replace it.
	d := &Dialer{roots: roots, nextProtos: []string{"h2", "http/1.1"}, cache: tls.NewLRUClientSessionCache(0), expiry: cfg.expiry}
	tr.DialTLSContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		return d.dial(ctx, tr.DialContext, network, addr)
	}
	return tr
}

// Dialer opens provider connections verified exactly as [NewTransport]'s
// are — roots, AIA, pins and the expiry tracker, bound to the host and
// address actually dialled, with TLS sessions resumed from its own cache —
// for an HTTP client other than net/http's (proxy/deliver's HTTP/1.1
// pool). It offers only HTTP/1.1 in ALPN unless told otherwise.
type Dialer struct {
	// DialContext opens the TCP connection; nil dials with
	// [DefaultDialTimeout] and TCP keep-alive.
	DialContext func(ctx context.Context, network, addr string) (net.Conn, error)
	roots       *Roots
	nextProtos  []string
	cache       tls.ClientSessionCache
	expiry      *ExpiryTracker
}

// NewDialer returns a Dialer verifying with roots and offering only
// "http/1.1". It panics if roots is nil, as [NewTransport] does.
func NewDialer(roots *Roots, opts ...Option) *Dialer {
	if roots == nil {
		panic("trust: NewDialer called with nil *Roots")
	}
	var cfg transportConfig
	for _, o := range opts {
		o(&cfg)
	}
	return &Dialer{roots: roots, nextProtos: []string{"http/1.1"}, cache: tls.NewLRUClientSessionCache(0), expiry: cfg.expiry}
}

// DialTLSContext dials addr ("host:port") and completes a verified TLS
// handshake within [DefaultTLSHandshakeTimeout] (and ctx). On failure
// nothing has been sent but the handshake.
func (d *Dialer) DialTLSContext(ctx context.Context, network, addr string) (*tls.Conn, error) {
	dial := d.DialContext
	if dial == nil {
		dial = (&net.Dialer{Timeout: DefaultDialTimeout, KeepAlive: 30 * time.Second}).DialContext
	}
	return d.dial(ctx, dial, network, addr)
}

func (d *Dialer) dial(ctx context.Context, dial func(ctx context.Context, network, addr string) (net.Conn, error), network, addr string) (*tls.Conn, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	raw, err := dial(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	hctx, cancel := context.WithTimeout(ctx, DefaultTLSHandshakeTimeout)
	defer cancel()
	// The address actually dialled decides which internal addresses
	// AIA may reach for this chain (see Roots.VerifyFrom).
	cfg := d.roots.tlsConfig(hctx, host, remoteAddr(raw), d.cache, d.expiry)
	cfg.NextProtos = d.nextProtos
	// Records are read and written with raw system calls (internal/sysconn).
	conn := tls.Client(sysconn.Wrap(raw), cfg)
	if err := conn.HandshakeContext(hctx); err != nil {
		raw.Close()
		return nil, err
	}
	return conn, nil
}
