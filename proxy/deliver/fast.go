package deliver

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/http/httpguts"

	"github.com/postern/postern/internal/deadline"
	"github.com/postern/postern/rewrite"
	"github.com/postern/postern/trust"
)

// FastClient sends provider requests over HTTP/1.1 keep-alive connections,
// pooled per provider host, and does the whole exchange — write the
// request, read the reply — in the calling goroutine. net/http's Transport
// hands every request to a write loop and a read loop goroutine (and its
// HTTP/2 client funnels every stream through one connection's locks and
// read loop); on this path those hand-offs cost more CPU than postern's own
// work (docs/benchmarks.md). The request is written here (a few lines of
// HTTP/1.1); the reply is read by net/http's own parser (http.ReadResponse:
// status line, headers, Content-Length, chunked bodies and trailers, the
// same rules as the net/http client), in this goroutine. The pool,
// deadlines, cancellation, the bounds on a reply and the "nothing was
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
	// cutOff, when it ends, interrupts every exchange in progress (the
	// end of the shutdown grace period); nil: nothing does but deadlines.
	cutOff context.Context

	mu     sync.Mutex
	pools  map[string]*fastPool // by "host:port"
	closed bool
}

// NewFastClient returns a FastClient dialling through d, whose exchanges
// in progress end when cutOff does (nil: only at their deadlines).
//
// An exchange's context is watched per connection, not per message: ctx's
// deadline becomes the connection's write and read deadlines, ctx's
// cancellation is noticed before anything is written, and once the request
// is on its way only that deadline and cutOff interrupt it. Every sending
// context postern makes ends at its deadline or at cutOff (the server's
// stopSends), and watching each message's context took a tenth of the
// bytes a message allocated (an AfterFunc, its parent's child map and Done
// channel).
func NewFastClient(d *trust.Dialer, cutOff context.Context) *FastClient {
	return &FastClient{dialer: d, cutOff: cutOff, responseHeaderTimeout: trust.DefaultResponseHeaderTimeout,
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

// maxReplyHeader bounds a reply's status line and headers, as net/http's
// MaxResponseHeaderBytes does (providers send 1–2 KiB; fasthttp's 16 KiB
// read buffer set the same bound before).
const maxReplyHeader = 16 << 10

// readBufferSize is the read buffer of a connection carrying a request: a
// provider's whole reply (headers and a JSON body, 1–2 KiB) fits in one
// read. It does not bound the headers (the connection's reader does); a
// longer line is read in pieces. Idle connections keep no buffer: a reply
// is read to its end before its connection goes back to the pool, and the
// buffer goes back to readBuffers.
const readBufferSize = 4 << 10

var readBuffers = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, readBufferSize) }}

// fastPool is one host's idle connections, the most recently used last.
type fastPool struct {
	mu   sync.Mutex
	idle []*fastConn
}

// fastConn is one verified provider connection.
type fastConn struct {
	tc       *tls.Conn
	lr       limitedReader // tc, bounded while a reply's headers are read
	br       *bufio.Reader // reads lr while the connection carries a request
	info     Info
	lastUsed time.Time
	peek     peeker
	// The deadlines this connection's requests last set (zero: none):
	// a busy connection keeps them from one message to the next while
	// they are within the slack (setDeadlines).
	readDeadline, writeDeadline time.Time
	// cut is set, before the deadlines are cut short, when the client's
	// cutOff ends; stopWatch stops watching it (nil: not watched).
	cut       atomic.Bool
	stopWatch func() bool
}

// newFastConn wraps tc, dialled for c, and watches c's cutOff for it.
func (c *FastClient) newFastConn(tc *tls.Conn) *fastConn {
	cs := tc.ConnectionState()
	fc := &fastConn{tc: tc, lr: limitedReader{r: tc}, info: connInfo(&cs)}
	fc.peek.init(tc.NetConn())
	if c.cutOff != nil {
		fc.stopWatch = context.AfterFunc(c.cutOff, func() {
			fc.cut.Store(true)
			fc.tc.SetDeadline(longAgo)
		})
		if c.cutOff.Err() != nil {
			// Dialled after the cut-off: the watch runs, but in a
			// goroutine of its own, maybe after the first write.
			fc.cut.Store(true)
		}
	}
	return fc
}

// close closes the connection and stops watching the cut-off for it.
func (fc *fastConn) close() {
	if fc.stopWatch != nil {
		fc.stopWatch()
	}
	fc.tc.Close()
}

// errCutOff: the client's cutOff ended while a request was in progress.
var errCutOff = errors.New("sending cut off at the end of the shutdown grace period")

// checkCut reports errCutOff once the cut-off has come. Called after each
// deadline is set: a deadline set after the cut-off's own would hide it,
// and the cut-off sets cut before its deadline.
func (fc *fastConn) checkCut() error {
	if fc.cut.Load() {
		return errCutOff
	}
	return nil
}

// limitedReader reads r until n bytes have been read, then fails with
// errReplyHeaderTooLarge: the bound on a reply's headers, set before they
// are read and lifted once they are (the body has its own bound).
type limitedReader struct {
	r io.Reader
	n int64
}

var errReplyHeaderTooLarge = errors.New("reply headers larger than 16 KiB")

func (l *limitedReader) Read(p []byte) (int, error) {
	if l.n <= 0 {
		return 0, errReplyHeaderTooLarge
	}
	if int64(len(p)) > l.n {
		p = p[:l.n]
	}
	n, err := l.r.Read(p)
	l.n -= int64(n)
	return n, err
}

// noLimit lifts limitedReader's bound.
const noLimit = 1<<63 - 1

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
		fc.close() // idle too long: the provider has probably dropped it
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
		fc.close()
	}
}

func (p *fastPool) closeIdle() {
	p.mu.Lock()
	idle := p.idle
	p.idle = nil
	p.mu.Unlock()
	for _, fc := range idle {
		fc.close()
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
// that classifyTransportError sees a timeout whatever the error says.
type upstreamTimeout struct{ err error }

func (e *upstreamTimeout) Error() string   { return e.err.Error() }
func (e *upstreamTimeout) Unwrap() error   { return e.err }
func (e *upstreamTimeout) Timeout() bool   { return true }
func (e *upstreamTimeout) Temporary() bool { return true }

// longAgo is a deadline in the past: setting it interrupts a blocked read
// or write at once.
var longAgo = time.Unix(1, 0)

// requestBuffers holds the bytes of requests being written: a request is
// written in one call (one TLS record), and no connection keeps a write
// buffer between requests.
var requestBuffers = sync.Pool{New: func() any { b := make([]byte, 0, 2<<10); return &b }}

// Exchange sends req (an https request built by a rewrite.Provider) over
// a pooled connection to its host, within ctx's deadline; ctx's
// cancellation interrupts it. Redirects are returned, not followed.
func (c *FastClient) Exchange(ctx context.Context, req *http.Request) (Reply, error) {
	bp := getRequestBuffer()
	defer putRequestBuffer(bp)
	wire, closeAfter, err := appendRequest((*bp)[:0], req)
	*bp = wire
	if err != nil {
		return Reply{}, fmt.Errorf("preparing the request: %w", err)
	}
	return c.exchange(ctx, dialAddr(req.URL), wire, closeAfter, req)
}

// ExchangePost sends the POST whose request line and headers p rendered,
// with body, as Exchange sends a request.
func (c *FastClient) ExchangePost(ctx context.Context, p *PreparedPost, body []byte) (Reply, error) {
	bp := getRequestBuffer()
	defer putRequestBuffer(bp)
	wire := p.AppendRequest((*bp)[:0], body)
	*bp = wire
	return c.exchange(ctx, p.addr, wire, false, nil)
}

// ExchangeMessage sends poster's POST for m as ExchangePost sends it,
// the body made in place in the request buffer rather than made, then
// copied, per message. A message poster cannot make a body of comes back
// as built, and nothing is sent.
func (c *FastClient) ExchangeMessage(ctx context.Context, p *PreparedPost, poster rewrite.Poster, m rewrite.Message) (rep Reply, built, err error) {
	bp := getRequestBuffer()
	defer putRequestBuffer(bp)
	buf, wire, built := p.AppendMessage((*bp)[:0], poster, m)
	*bp = buf
	if built != nil {
		return Reply{}, built, nil
	}
	rep, err = c.exchange(ctx, p.addr, wire, false, nil)
	return rep, nil, err
}

// maxLengthLine is the longest Content-Length line and blank line.
const maxLengthLine = len("Content-Length: ") + len("18446744073709551615") + len("\r\n\r\n")

// AppendMessage appends to dst the request ExchangeMessage writes for m,
// the same bytes as AppendRequest of poster.PostBody(m): buf is dst with
// the request appended, wire the request itself, at its end. The body is
// appended first, after room for the longest head; the head and its
// Content-Length then go right before it, so wire may start after len(dst).
func (p *PreparedPost) AppendMessage(dst []byte, poster rewrite.Poster, m rewrite.Message) (buf, wire []byte, err error) {
	start := len(dst)
	bodyAt := start + len(p.head) + maxLengthLine
	dst = slices.Grow(dst, bodyAt-start)[:bodyAt]
	dst, err = poster.AppendPostBody(dst, m)
	if err != nil {
		return dst[:start], nil, err
	}
	var line [maxLengthLine]byte
	length := appendLength(line[:0], int64(len(dst)-bodyAt))
	from := bodyAt - len(length) - len(p.head)
	copy(dst[from:], p.head)
	copy(dst[from+len(p.head):], length)
	return dst, dst[from:], nil
}

// AppendRequest appends to dst the whole request ExchangePost writes for
// body: the prepared head, Content-Length, the blank line and body.
func (p *PreparedPost) AppendRequest(dst, body []byte) []byte {
	dst = appendLength(append(dst, p.head...), int64(len(body)))
	return append(dst, body...)
}

// appendLength ends a request head with its Content-Length and the blank
// line.
func appendLength(dst []byte, n int64) []byte {
	dst = append(dst, "Content-Length: "...)
	dst = strconv.AppendInt(dst, n, 10)
	return append(dst, "\r\n\r\n"...)
}

// PreparedPost is a rewrite.Poster's request line and headers (User-Agent
// included), rendered once as HTTP/1.1, and where they go.
type PreparedPost struct {
	addr string // host:port dialled
	host string // the host the connection is verified for (Info.Host)
	head []byte // "POST /path HTTP/1.1\r\nHost: ...\r\n" and one line per header
}

// PreparePost renders p's request line and headers with userAgent, as
// Exchange would write Build's request. ok is false when p's requests are
// not for this client (not https, an endpoint Build refuses, a header
// Exchange would refuse): Build's path then says why, per message.
func PreparePost(p rewrite.Poster, userAgent string) (*PreparedPost, bool) {
	u, header, err := p.PostTarget()
	if err != nil || u.Scheme != "https" {
		return nil, false
	}
	h := maps.Clone(header)
	h.Set("User-Agent", userAgent)
	req := &http.Request{Method: http.MethodPost, URL: u, Host: u.Host, Header: h}
	head, closeAfter, err := appendHead(nil, req)
	if err != nil || closeAfter {
		return nil, false
	}
	return &PreparedPost{addr: dialAddr(u), host: u.Hostname(), head: head}, true
}

// dialAddr is the host:port a request to u dials.
func dialAddr(u *url.URL) string {
	if u.Port() == "" {
		return net.JoinHostPort(u.Hostname(), "443")
	}
	return u.Host
}

func getRequestBuffer() *[]byte { return requestBuffers.Get().(*[]byte) }

func putRequestBuffer(bp *[]byte) {
	if cap(*bp) <= 64<<10 { // one huge request does not pin its buffer
		*bp = (*bp)[:0]
		requestBuffers.Put(bp)
	}
}

// exchange sends wire, a whole HTTP/1.1 request, to addr and reads the
// reply. req, when not nil, is the request wire says (for a HEAD's reply).
func (c *FastClient) exchange(ctx context.Context, addr string, wire []byte, closeAfter bool, req *http.Request) (Reply, error) {
	now := time.Now() // one reading for the context, the pool and the deadlines
	if err := errAt(ctx, now); err != nil {
		return Reply{}, err
	}
	started := now
	p, closing := c.pool(addr)
	fc := c.idleConn(p, now)
	if fc == nil {
		tc, err := c.dialer.DialTLSContext(ctx, "tcp", addr)
		if err != nil {
			return Reply{Took: time.Since(started)}, err // nothing but a handshake was sent
		}
		fc = c.newFastConn(tc)
		now = time.Now()
	}
	fc.br = readBuffers.Get().(*bufio.Reader)
	fc.br.Reset(&fc.lr)
	rep := Reply{Info: fc.info, Wrote: true}
	// ctx's deadline is the connection's (roundTrip), and the cut-off
	// interrupts whatever the connection is blocked on (newFastConn).
	keep, err := c.roundTrip(ctx, fc, wire, req, &rep, now)
	done := time.Now() // one reading for the latency and the idle clock
	rep.Took = done.Sub(started)
	interrupted := fc.cut.Load()
	if err != nil && ctx.Err() != nil {
		// Report the context's end, as net/http does: classifyTransportError
		// tells a deadline from the cut-off by ctx itself.
		err = fmt.Errorf("%w (%v)", ctx.Err(), err)
	}
	// Bytes after the reply were not asked for: the connection's next
	// reply could not be trusted to be the next request's.
	unasked := fc.br.Buffered() > 0
	fc.br.Reset(nil)
	readBuffers.Put(fc.br)
	fc.br = nil
	if !keep || closeAfter || interrupted || closing || unasked {
		fc.close()
	} else {
		fc.lastUsed = done
		p.put(fc, c.maxIdle)
	}
	return rep, err
}

// idleConn takes the most recently used idle connection the provider has
// not closed meanwhile.
func (c *FastClient) idleConn(p *fastPool, now time.Time) *fastConn {
	for {
		fc := p.get(now, c.idleTimeout)
		if fc == nil {
			return nil
		}
		// A connection the provider closed while it sat idle would take the
		// request and then fail, leaving the outcome unknown: check first
		// (net/http's Transport notices the same through its read loop).
		if !fc.peek.peerClosed() {
			return fc
		}
		fc.close()
	}
}

// roundTrip writes wire (req's bytes) on fc and reads the reply into rep.
// keep says whether fc may carry another request. now is the time, read
// once by exchange.
func (c *FastClient) roundTrip(ctx context.Context, fc *fastConn, wire []byte, req *http.Request, rep *Reply, now time.Time) (keep bool, err error) {
	deadline, _ := ctx.Deadline() // zero: none
	// The reply must come within responseHeaderTimeout of the write and
	// before the deadline. When the deadline comes first already (postern's
	// default: request_timeout 10 s, the reply's 15 s), one deadline for
	// both directions is set once.
	both := !deadline.IsZero() && !now.Add(c.responseHeaderTimeout).Before(deadline)
	if err := fc.setDeadlines(deadline, both, now); err != nil {
		return false, err
	}
	if err := fc.checkCut(); err != nil {
		rep.Wrote = false
		return false, err
	}
	if _, err := fc.tc.Write(wire); err != nil {
		return false, timeoutAware(err, deadline)
	}
	readDeadline := deadline
	if !both {
		written := time.Now()
		if t := written.Add(c.responseHeaderTimeout); readDeadline.IsZero() || t.Before(readDeadline) {
			readDeadline = t
		}
		if err := fc.setReadDeadline(readDeadline, written); err != nil {
			return false, err
		}
		if err := fc.checkCut(); err != nil {
			return false, err
		}
	}
	fc.lr.n = maxReplyHeader
	if err := awaitReply(fc.br); err != nil {
		fc.lr.n = noLimit
		return false, timeoutAware(err, readDeadline)
	}
	// The usual reply arrives whole in the first read and is plain: read
	// here without net/http's parser (plainreply.go).
	headers := keepAll
	if req == nil {
		headers = wantHeader // ExchangePost, ExchangeMessage
	}
	if h, ok := parsePlainHead(peekBuffered(fc.br), headers); ok {
		fc.lr.n = noLimit
		fc.br.Discard(h.len)
		rep.Status, rep.Header = h.status, h.header
		body := make([]byte, h.contentLength)
		if _, err := io.ReadFull(fc.br, body); err != nil {
			rep.BodyErr = timeoutAware(err, readDeadline)
			return false, nil
		}
		rep.Body = body
		return !h.close, nil
	}
	resp, err := readReplyHeader(fc.br, req)
	fc.lr.n = noLimit
	if err != nil {
		return false, timeoutAware(err, readDeadline)
	}
	// resp.Body is a view of fc.br with nothing to release; closing it
	// would drain what is left of a body too large to read.
	rep.Status, rep.Header = resp.StatusCode, resp.Header
	rep.Body, rep.BodyErr = readBody(resp)
	if rep.BodyErr != nil {
		rep.BodyErr = timeoutAware(rep.BodyErr, readDeadline)
		return false, nil
	}
	// resp.Close: the provider said so, HTTP/1.0, or a body that ran to
	// the end of the connection (no length, not chunked) used it up.
	return !resp.Close, nil
}

// setDeadlines sets the write deadline t and, with both, the read deadline
// too, each unless the one in force may stand (deadline.Keep: no later
// than t and within a quarter of the time left, at most a second, before
// it). A message on a busy connection may so time out up to that much
// before its own deadline, never after it; it sets its deadlines about
// once a second rather than for every message.
func (fc *fastConn) setDeadlines(t time.Time, both bool, now time.Time) error {
	slack := deadline.Slack(t.Sub(now))
	setWrite := !deadline.Keep(fc.writeDeadline, t, slack)
	setRead := both && !deadline.Keep(fc.readDeadline, t, slack)
	var err error
	switch {
	case setWrite && setRead:
		err = fc.tc.SetDeadline(t)
	case setWrite:
		err = fc.tc.SetWriteDeadline(t)
	case setRead:
		err = fc.tc.SetReadDeadline(t)
	}
	if err != nil {
		return err
	}
	if setWrite {
		fc.writeDeadline = t
	}
	if setRead {
		fc.readDeadline = t
	}
	return nil
}

// setReadDeadline is setDeadlines for the read deadline alone.
func (fc *fastConn) setReadDeadline(t, now time.Time) error {
	if deadline.Keep(fc.readDeadline, t, deadline.Slack(t.Sub(now))) {
		return nil
	}
	if err := fc.tc.SetReadDeadline(t); err != nil {
		return err
	}
	fc.readDeadline = t
	return nil
}

// readReplyHeader reads a status line and headers, skipping interim 1xx
// replies (at most a few).
func readReplyHeader(br *bufio.Reader, req *http.Request) (*http.Response, error) {
	for range 5 {
		if err := awaitReply(br); err != nil {
			return nil, err
		}
		resp, err := http.ReadResponse(br, req)
		if err != nil {
			var te interface{ Timeout() bool }
			switch {
			case errors.As(err, &te) && te.Timeout(), errors.Is(err, net.ErrClosed):
				return nil, fmt.Errorf("reading the reply: %w", err)
			}
			// The words net/http's client uses, which operators know from
			// the audit line; the caller masks and cuts what follows.
			return nil, fmt.Errorf("malformed HTTP response: %w", err)
		}
		if s := resp.StatusCode; s < 100 || s > 199 {
			return resp, nil
		}
		resp.Body.Close()
	}
	return nil, errors.New("reading the reply: too many interim 1xx replies")
}

// awaitReply waits for a reply's first byte. Nothing at all before the
// connection ended is not a malformed reply: the provider closed it (or the
// deadline came) first.
func awaitReply(br *bufio.Reader) error {
	if _, err := br.Peek(1); err != nil {
		if err == io.EOF {
			return errors.New("the provider closed the connection before replying")
		}
		return fmt.Errorf("reading the reply: %w", err)
	}
	return nil
}

// peekBuffered is what br holds, without reading more.
func peekBuffered(br *bufio.Reader) []byte {
	b, _ := br.Peek(br.Buffered())
	return b
}

// readBody reads a reply's body, at most maxProviderReply bytes: in one
// allocation when the provider said how long it is.
func readBody(resp *http.Response) ([]byte, error) {
	if n := resp.ContentLength; n >= 0 && n <= maxProviderReply {
		body := make([]byte, n)
		if _, err := io.ReadFull(resp.Body, body); err != nil {
			return nil, err
		}
		// Reach the end, so the connection is known to be at the next reply.
		if _, err := resp.Body.Read(nil); err != nil && err != io.EOF {
			return nil, err
		}
		return body, nil
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxProviderReply+1))
	if err == nil && len(body) > maxProviderReply {
		err = errReplyTooLarge
	}
	return body, err
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

// appendRequest appends req as HTTP/1.1 to dst: request line, Host,
// req.Header, Content-Length and the body. It refuses what net/http's
// client would refuse to write: a header name or value that is not valid
// HTTP (a CR or LF in a value would split the request). closeAfter: req
// asked for the connection to be closed after it.
func appendRequest(dst []byte, req *http.Request) (wire []byte, closeAfter bool, err error) {
	dst, closeAfter, err = appendHead(dst, req)
	if err != nil {
		return dst, false, err
	}
	if req.Body == nil || req.Body == http.NoBody {
		if req.Method == http.MethodPost || req.Method == http.MethodPut || req.Method == http.MethodPatch {
			dst = append(dst, "Content-Length: 0\r\n"...)
		}
		return append(dst, "\r\n"...), closeAfter, nil
	}
	defer req.Body.Close()
	if n := req.ContentLength; n > 0 {
		// The usual case (a rewrite.Provider's body is a bytes.Reader): the
		// length is known, the body goes straight after the headers.
		dst = appendLength(dst, n)
		mark := len(dst)
		dst, err = appendAll(dst, req.Body)
		if err == nil && int64(len(dst)-mark) != n {
			err = fmt.Errorf("body of %d bytes, %d announced", len(dst)-mark, n)
		}
		if err != nil {
			return dst, false, fmt.Errorf("reading the request body: %w", err)
		}
		return dst, closeAfter, nil
	}
	body, err := io.ReadAll(req.Body)
	if err != nil {
		return dst, false, fmt.Errorf("reading the request body: %w", err)
	}
	return append(appendLength(dst, int64(len(body))), body...), closeAfter, nil
}

// appendHead appends req's request line, Host and header lines (not the
// framing headers, nor the blank line that ends them), in name order, so
// that a request reads the same every run.
func appendHead(dst []byte, req *http.Request) (head []byte, closeAfter bool, err error) {
	host := req.Host
	if host == "" {
		host = req.URL.Host
	}
	uri := req.URL.RequestURI()
	if !httpguts.ValidHostHeader(host) || strings.ContainsAny(uri, " \r\n") || !validMethod(req.Method) {
		return dst, false, errors.New("invalid method, host or path")
	}
	dst = append(dst, req.Method...)
	dst = append(dst, ' ')
	dst = append(dst, uri...)
	dst = append(dst, " HTTP/1.1\r\nHost: "...)
	dst = append(dst, host...)
	dst = append(dst, "\r\n"...)
	var keys [16]string // a provider request's few headers, on the stack
	names := keys[:0]
	for k := range req.Header {
		names = append(names, k)
	}
	slices.Sort(names)
	for _, k := range names {
		vs := req.Header[k]
		if !httpguts.ValidHeaderFieldName(k) {
			return dst, false, fmt.Errorf("invalid header name %q", k)
		}
		switch http.CanonicalHeaderKey(k) {
		case "Host", "Content-Length", "Transfer-Encoding", "Trailer":
			continue // written from the request itself, as net/http does
		case "Connection":
			for _, v := range vs {
				closeAfter = closeAfter || httpguts.HeaderValuesContainsToken([]string{v}, "close")
			}
		}
		for _, v := range vs {
			if !httpguts.ValidHeaderFieldValue(v) {
				return dst, false, fmt.Errorf("invalid value for header %q", k)
			}
			dst = append(dst, k...)
			dst = append(dst, ": "...)
			dst = append(dst, v...)
			dst = append(dst, "\r\n"...)
		}
	}
	return dst, closeAfter, nil
}

// appendAll appends what r holds to dst.
func appendAll(dst []byte, r io.Reader) ([]byte, error) {
	for {
		if len(dst) == cap(dst) {
			dst = append(dst, 0)[:len(dst)]
		}
		n, err := r.Read(dst[len(dst):cap(dst)])
		dst = dst[:len(dst)+n]
		if err == io.EOF {
			return dst, nil
		}
		if err != nil {
			return dst, err
		}
	}
}

// validMethod: a method is an HTTP token.
func validMethod(m string) bool {
	if m == "" {
		return false
	}
	for _, r := range m {
		if !httpguts.IsTokenRune(r) {
			return false
		}
	}
	return true
}
