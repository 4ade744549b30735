package deliver

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/valyala/fasthttp"
	"golang.org/x/net/http/httpguts"

	"github.com/postern/postern/trust"
)

// FastClient sends provider requests over HTTP/1.1 keep-alive connections,
// pooled per provider host, and does the whole exchange — write the
// request, read the reply — in the calling goroutine. net/http's Transport
// hands every request to a write loop and a read loop goroutine (and its
// HTTP/2 client funnels every stream through one connection's locks and
// read loop); on this path those hand-offs cost more CPU than postern's own
// work (docs/benchmarks.md). valyala/fasthttp writes the request and parses
// the reply; the pool, deadlines, cancellation and the "nothing was
// written" bookkeeping are here, so that they mean exactly what they mean
// for the net/http client.
//
// Connections are dialled and verified by a trust.Dialer: the same roots,
// AIA, pins, expiry tracking and session resumption as the net/http
// transport, bound to the host and address dialled.
type FastClient struct {
	dialer *trust.Dialer
	// responseHeaderTimeout bounds the wait for the reply once the request
	// is written (trust.DefaultResponseHeaderTimeout).
	responseHeaderTimeout time.Duration
	idleTimeout           time.Duration
	maxIdle               int

	mu     sync.Mutex
	pools  map[string]*fastPool // by "host:port"
	closed bool
}

// NewFastClient returns a FastClient dialling through d.
func NewFastClient(d *trust.Dialer) *FastClient {
	return &FastClient{dialer: d, responseHeaderTimeout: trust.DefaultResponseHeaderTimeout,
		idleTimeout: trust.DefaultIdleConnTimeout, maxIdle: trust.DefaultMaxIdleConnsPerHost, pools: map[string]*fastPool{}}
}

// CloseIdleConnections closes the connections not carrying a request now.
// Those in use are closed when their request ends if Close was called.
func (c *FastClient) CloseIdleConnections() {
	c.mu.Lock()
	pools := make([]*fastPool, 0, len(c.pools))
	for _, p := range c.pools {
		pools = append(pools, p)
	}
	c.mu.Unlock()
	for _, p := range pools {
		p.closeIdle()
	}
}

// Close closes every idle connection and makes connections in use close
// when their request ends. The client stays usable (a message still in
// flight after a reload may dial again), but keeps nothing idle.
func (c *FastClient) Close() {
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
	c.CloseIdleConnections()
}

// readBufferSize bounds a reply's status line and headers, as net/http's
// MaxResponseHeaderBytes does (there 64 KiB; providers send 1–2 KiB). Each
// pooled connection keeps one such buffer.
const readBufferSize = 16 << 10

// fastPool is one host's idle connections, the most recently used last.
type fastPool struct {
	mu   sync.Mutex
	idle []*fastConn
}

// fastConn is one verified provider connection with its buffers.
type fastConn struct {
	tc       *tls.Conn
	br       *bufio.Reader
	bw       *bufio.Writer
	info     Info
	lastUsed time.Time
	peek     peeker
}

func (p *fastPool) get(now time.Time, idleTimeout time.Duration) *fastConn {
	p.mu.Lock()
	defer p.mu.Unlock()
	for n := len(p.idle); n > 0; n = len(p.idle) {
		fc := p.idle[n-1]
		p.idle[n-1] = nil
		p.idle = p.idle[:n-1]
		if now.Sub(fc.lastUsed) < idleTimeout {
			return fc
		}
		fc.tc.Close() // idle too long: the provider has probably dropped it
	}
	return nil
}

// put returns fc to the pool, or closes it when the pool is full.
func (p *fastPool) put(fc *fastConn, maxIdle int) {
	p.mu.Lock()
	if len(p.idle) < maxIdle {
		p.idle = append(p.idle, fc)
		fc = nil
	}
	p.mu.Unlock()
	if fc != nil {
		fc.tc.Close()
	}
}

func (p *fastPool) closeIdle() {
	p.mu.Lock()
	idle := p.idle
	p.idle = nil
	p.mu.Unlock()
	for _, fc := range idle {
		fc.tc.Close()
	}
}

func (c *FastClient) pool(addr string) (*fastPool, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	p := c.pools[addr]
	if p == nil {
		p = &fastPool{}
		c.pools[addr] = p
	}
	return p, c.closed
}

// upstreamTimeout marks a read or write that ran into its deadline, so
// that classifyTransportError sees a timeout whatever fasthttp's error
// says.
type upstreamTimeout struct{ err error }

func (e *upstreamTimeout) Error() string   { return e.err.Error() }
func (e *upstreamTimeout) Unwrap() error   { return e.err }
func (e *upstreamTimeout) Timeout() bool   { return true }
func (e *upstreamTimeout) Temporary() bool { return true }

// longAgo is a deadline in the past: setting it interrupts a blocked read
// or write at once.
var longAgo = time.Unix(1, 0)

// Exchange sends req (an https request built by a rewrite.Provider) over
// a pooled connection to its host, within ctx's deadline; ctx's
// cancellation interrupts it. Redirects are returned, not followed.
func (c *FastClient) Exchange(ctx context.Context, req *http.Request) (Reply, error) {
	addr := req.URL.Host
	if req.URL.Port() == "" {
		addr = net.JoinHostPort(req.URL.Hostname(), "443")
	}
	freq := fasthttp.AcquireRequest()
	defer fasthttp.ReleaseRequest(freq)
	if err := buildFastRequest(freq, req); err != nil {
		return Reply{}, fmt.Errorf("preparing the request: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return Reply{}, err
	}
	p, closing := c.pool(addr)
	fc := c.idleConn(p)
	if fc == nil {
		tc, err := c.dialer.DialTLSContext(ctx, "tcp", addr)
		if err != nil {
			return Reply{}, err // nothing but a handshake was sent
		}
		cs := tc.ConnectionState()
		fc = &fastConn{tc: tc, br: bufio.NewReaderSize(tc, readBufferSize), bw: bufio.NewWriterSize(tc, 4<<10), info: connInfo(&cs)}
		fc.peek.init(tc.NetConn())
	}
	rep := Reply{Info: fc.info, Wrote: true}
	// ctx's end (the request deadline, the shutdown cut-off) interrupts
	// whatever the connection is blocked on.
	stop := context.AfterFunc(ctx, func() { fc.tc.SetDeadline(longAgo) })
	keep, err := c.roundTrip(ctx, fc, freq, &rep)
	interrupted := !stop()
	if err != nil && ctx.Err() != nil {
		// Report the context's end, as net/http does: classifyTransportError
		// tells a deadline from the cut-off by ctx itself.
		err = fmt.Errorf("%w (%v)", ctx.Err(), err)
	}
	if !keep || interrupted || closing {
		fc.tc.Close()
	} else {
		fc.lastUsed = time.Now()
		p.put(fc, c.maxIdle)
	}
	return rep, err
}

// idleConn takes the most recently used idle connection the provider has
// not closed meanwhile.
func (c *FastClient) idleConn(p *fastPool) *fastConn {
	for {
		fc := p.get(time.Now(), c.idleTimeout)
		if fc == nil {
			return nil
		}
		// A connection the provider closed while it sat idle would take the
		// request and then fail, leaving the outcome unknown: check first
		// (net/http's Transport notices the same through its read loop).
		if !fc.peek.peerClosed() {
			return fc
		}
		fc.tc.Close()
	}
}

// roundTrip writes freq on fc and reads the reply into rep. keep says
// whether fc may carry another request.
func (c *FastClient) roundTrip(ctx context.Context, fc *fastConn, freq *fasthttp.Request, rep *Reply) (keep bool, err error) {
	deadline, _ := ctx.Deadline() // zero: none
	if err := fc.tc.SetWriteDeadline(deadline); err != nil {
		return false, err
	}
	err = freq.Write(fc.bw)
	if err == nil {
		err = fc.bw.Flush()
	}
	if err != nil {
		return false, timeoutAware(err, deadline)
	}
	readDeadline := deadline
	if t := time.Now().Add(c.responseHeaderTimeout); readDeadline.IsZero() || t.Before(readDeadline) {
		readDeadline = t
	}
	if err := fc.tc.SetReadDeadline(readDeadline); err != nil {
		return false, err
	}
	resp := fasthttp.AcquireResponse()
	defer fasthttp.ReleaseResponse(resp)
	if err := readReplyHeader(&resp.Header, fc.br); err != nil {
		return false, timeoutAware(err, readDeadline)
	}
	rep.Status = resp.StatusCode()
	rep.Header = httpHeader(&resp.Header)
	if s := rep.Status; s == http.StatusNoContent || s == http.StatusNotModified {
		return !resp.ConnectionClose(), nil
	}
	if err := resp.ReadBody(fc.br, maxProviderReply); err != nil {
		if errors.Is(err, fasthttp.ErrBodyTooLarge) {
			err = errReplyTooLarge
		}
		rep.BodyErr = timeoutAware(err, readDeadline)
		return false, nil
	}
	if resp.Header.ContentLength() == -1 { // chunked: trailers end it
		if err := resp.Header.ReadTrailer(fc.br); err != nil {
			rep.BodyErr = timeoutAware(err, readDeadline)
			return false, nil
		}
	}
	rep.Body = append([]byte(nil), resp.Body()...)
	// A body that runs to the end of the connection (no length, not
	// chunked) used it up.
	return !resp.ConnectionClose() && resp.Header.ContentLength() != -2, nil
}

// readReplyHeader reads a status line and headers, skipping interim 1xx
// replies (at most a few).
func readReplyHeader(h *fasthttp.ResponseHeader, br *bufio.Reader) error {
	for range 5 {
		if err := h.Read(br); err != nil {
			var te interface{ Timeout() bool }
			switch {
			case err == io.EOF:
				return errors.New("the provider closed the connection before replying")
			case errors.As(err, &te) && te.Timeout(), errors.Is(err, net.ErrClosed):
				return fmt.Errorf("reading the reply: %w", err)
			}
			// The words net/http uses, which operators know from the audit
			// line; fasthttp's error quotes the line, which the caller
			// masks and cuts.
			return fmt.Errorf("malformed HTTP response: %w", err)
		}
		if s := h.StatusCode(); s < 100 || s > 199 {
			return nil
		}
	}
	return errors.New("reading the reply: too many interim 1xx replies")
}

// timeoutAware marks err as a timeout when its deadline has passed, which
// is what a read or write failing then means.
func timeoutAware(err error, deadline time.Time) error {
	if errors.Is(err, os.ErrDeadlineExceeded) || (!deadline.IsZero() && !time.Now().Before(deadline)) {
		return &upstreamTimeout{err: err}
	}
	var te interface{ Timeout() bool }
	if errors.As(err, &te) && te.Timeout() {
		return &upstreamTimeout{err: err}
	}
	return err
}

// buildFastRequest copies req into f. It refuses what net/http's client
// would refuse to write: a header name or value that is not valid HTTP
// (a CR or LF in a value would split the request).
func buildFastRequest(f *fasthttp.Request, req *http.Request) error {
	f.Header.SetNoDefaultContentType(true)
	f.Header.SetMethod(req.Method)
	host := req.Host
	if host == "" {
		host = req.URL.Host
	}
	f.Header.SetHost(host)
	f.Header.SetRequestURI(req.URL.RequestURI())
	for k, vs := range req.Header {
		if !httpguts.ValidHeaderFieldName(k) {
			return fmt.Errorf("invalid header name %q", k)
		}
		for _, v := range vs {
			if !httpguts.ValidHeaderFieldValue(v) {
				return fmt.Errorf("invalid value for header %q", k)
			}
			f.Header.Add(k, v)
		}
	}
	if req.Body == nil || req.Body == http.NoBody {
		return nil // fasthttp writes Content-Length: 0 for a POST
	}
	defer req.Body.Close()
	if _, err := io.Copy(f.BodyWriter(), req.Body); err != nil {
		return fmt.Errorf("reading the request body: %w", err)
	}
	return nil
}

// httpHeader copies a reply's headers for rewrite.Provider.Read and the
// retry plan (Retry-After). fasthttp has put the names in Go's canonical
// form already; the usual ones are not copied, and all values share one
// backing array.
func httpHeader(h *fasthttp.ResponseHeader) http.Header {
	n := h.Len()
	out := make(http.Header, n)
	vals := make([]string, 0, n)
	for k, v := range h.All() {
		key := commonHeader(k)
		if key == "" {
			key = http.CanonicalHeaderKey(string(k))
		}
		if prev, ok := out[key]; ok {
			out[key] = append(prev, string(v)) // a repeated header gets its own array
			continue
		}
		vals = append(vals, string(v))
		out[key] = vals[len(vals)-1 : len(vals) : len(vals)]
	}
	return out
}

// commonHeader returns the canonical name of a header providers usually
// send, without allocating, or "".
func commonHeader(k []byte) string {
	switch string(k) {
	case "Content-Type":
		return "Content-Type"
	case "Content-Length":
		return "Content-Length"
	case "Date":
		return "Date"
	case "Server":
		return "Server"
	case "Connection":
		return "Connection"
	case "Retry-After":
		return "Retry-After"
	case "Cache-Control":
		return "Cache-Control"
	case "Vary":
		return "Vary"
	case "Strict-Transport-Security":
		return "Strict-Transport-Security"
	case "X-Content-Type-Options":
		return "X-Content-Type-Options"
	}
	return ""
}
