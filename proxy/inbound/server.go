// Package inbound is the front of postern's plain listener: it reads
// HTTP/1.1 requests in each connection's own goroutine and answers them
// there, with no goroutine per request and no background read, but only
// for a strict, unambiguous subset of HTTP/1.1 (parseHead). Every
// connection that sends anything else — CONNECT, HTTP/1.0, Expect,
// Transfer-Encoding, a repeated Host, odd bytes, anything oversized — is
// handed whole, with the bytes already read replayed in front, to a
// fallback server through a [Handoff] listener. So every parsing and
// smuggling decision outside the subset is the fallback's (net/http and
// goproxy in postern), by construction. The front never logs: what it
// read may hold a message text or a password.
package inbound

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/postern/postern/internal/deadline"
	"github.com/postern/postern/internal/sysconn"
)

// Server is the front. Set its fields before Serve; they are not changed
// afterwards (a reload does not reach them: like net/http's timeouts, they
// are the listener's, fixed at start).
type Server struct {
	// Handler answers one request in the connection's goroutine; the
	// front writes the response. It must read the body, if it wants it,
	// before returning, and keep nothing of the request (its URL, header
	// map or values) past its return: the connection's next request is
	// parsed into the same room.
	Handler func(*http.Request) *http.Response
	// Fallback receives the connections the front does not serve.
	Fallback *Handoff
	// Limits returns the current limits (a reload may change them).
	Limits func() Limits

	ReadHeaderTimeout time.Duration // from a request's first byte (or the connection's start) to its last header
	WriteTimeout      time.Duration // from a request's head to the end of its response
	IdleTimeout       time.Duration // between requests on a kept-alive connection
	// Log receives the one thing the front reports: a handler that
	// panicked. nil discards it.
	Log *slog.Logger

	served, handedOff atomic.Int64
	dates             dateCache // the Date header of this second

	mu       sync.Mutex
	ln       net.Listener
	conns    map[*conn]struct{}
	drained  chan struct{} // closed once closing and no connection is left
	closing  atomic.Bool
	ctx      context.Context // requests' context: cancelled by Close
	cancel   context.CancelFunc
	base     *http.Request // a request with only ctx set: every request read is a copy (parseHead)
	initOnce sync.Once
}

// The front keeps a head within this many bytes; a longer one is handed
// off (net/http then applies its own limit, maxHeaderBytes in postern).
const (
	initialBuffer = 4 << 10
	maxBuffer     = 16 << 10
)

// How long and how much a connection closed after its reply reads what the
// client still sends (net/http waits 500 ms): closing a socket with unread
// input makes the kernel send a reset, which can destroy the reply.
const (
	closeLinger      = 500 * time.Millisecond
	closeLingerBytes = 256 << 10
)

func (s *Server) init() {
	s.initOnce.Do(func() {
		s.conns = map[*conn]struct{}{}
		s.drained = make(chan struct{})
		s.ctx, s.cancel = context.WithCancel(context.Background())
		s.base = (&http.Request{}).WithContext(s.ctx)
	})
}

// Counts returns how many requests the front answered and how many
// connections it handed to the fallback.
func (s *Server) Counts() (served, handedOff int64) {
	return s.served.Load(), s.handedOff.Load()
}

// ErrServerClosed is what Serve returns after Shutdown or Close.
var ErrServerClosed = errors.New("inbound: server closed")

// Serve accepts connections on ln until Shutdown or Close, and serves
// each in a goroutine of its own.
func (s *Server) Serve(ln net.Listener) error {
	s.init()
	s.mu.Lock()
	if s.closing.Load() {
		s.mu.Unlock()
		ln.Close()
		return ErrServerClosed
	}
	s.ln = ln
	s.mu.Unlock()
	var delay time.Duration
	for {
		c, err := ln.Accept()
		if err != nil {
			if s.closing.Load() {
				return ErrServerClosed
			}
			// As net/http: a temporary failure (too many open files) is
			// waited out, anything else ends Serve.
			if te, ok := err.(interface{ Temporary() bool }); ok && te.Temporary() {
				delay = min(max(2*delay, 5*time.Millisecond), time.Second)
				time.Sleep(delay)
				continue
			}
			return err
		}
		delay = 0
		cn := &conn{s: s, c: c, io: sysconn.Wrap(c), accepted: time.Now()}
		if !s.track(cn) {
			c.Close()
			continue
		}
		go cn.serve()
	}
}

func (s *Server) track(c *conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing.Load() {
		return false
	}
	s.conns[c] = struct{}{}
	return true
}

func (s *Server) untrack(c *conn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.conns, c)
	if s.closing.Load() && len(s.conns) == 0 {
		s.closeDrained()
	}
}

func (s *Server) closeDrained() {
	select {
	case <-s.drained:
	default:
		close(s.drained)
	}
}

// Shutdown stops accepting, closes idle connections, and waits until the
// busy ones have answered their request (each closes after it, with
// "Connection: close") or ctx ends. It may be called again.
func (s *Server) Shutdown(ctx context.Context) error {
	s.init()
	s.mu.Lock()
	s.closing.Store(true)
	if s.ln != nil {
		s.ln.Close()
	}
	for c := range s.conns {
		c.wakeIfIdle()
	}
	if len(s.conns) == 0 {
		s.closeDrained()
	}
	s.mu.Unlock()
	select {
	case <-s.drained:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Close closes the listener and every connection at once, and cancels
// the context of the requests still running.
func (s *Server) Close() error {
	s.init()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closing.Store(true)
	s.cancel()
	var err error
	if s.ln != nil {
		err = s.ln.Close()
	}
	for c := range s.conns {
		c.c.Close()
	}
	return err
}

// conn is one client connection the front is serving.
type conn struct {
	s *Server
	c net.Conn
	// io is c for reading requests and writing responses: through raw
	// system calls when c is a socket (internal/sysconn). Everything else
	// (deadlines, hand-off, close) uses c.
	io         net.Conn
	accepted   time.Time
	state      atomic.Int32 // stateNew, stateIdle or stateBusy
	remoteAddr string

	buf  []byte // buf[r:w] is read and not yet used
	r, w int
	out  []byte       // the response being written
	body bytes.Buffer // its body
	room requestRoom  // the request being served

	// The read and write deadlines this goroutine last set (zero: none
	// yet), so that a busy connection need not set them again for every
	// request (setReadDeadline). Shutdown's wakeIfIdle may set an earlier
	// read deadline meanwhile; keeping that one is what it wants.
	readDeadline, writeDeadline time.Time
}

// A connection's state, for Shutdown.
const (
	stateNew  = iota // accepted, nothing read yet
	stateIdle        // between requests, nothing read of the next
	stateBusy        // reading or answering a request
)

// newConnGrace is how long Shutdown lets a new connection send its first
// request: net/http's 5 s for connections in StateNew.
const newConnGrace = 5 * time.Second

// wakeIfIdle makes an idle connection's read fail at once, so that it
// closes, and gives a new one until newConnGrace after its start (the
// caller has set closing). A connection marks itself idle after setting
// its idle deadline and then checks closing, so one of the two always sees
// the other.
func (c *conn) wakeIfIdle() {
	switch c.state.Load() {
	case stateIdle:
		c.c.SetReadDeadline(aLongTimeAgo)
	case stateNew:
		c.c.SetReadDeadline(after(c.accepted, min(newConnGrace, c.s.ReadHeaderTimeout)))
	}
}

var aLongTimeAgo = time.Unix(1, 0)

// serve reads and answers requests until the client closes, a timeout, a
// shutdown, or a request the front hands off.
func (c *conn) serve() {
	handedOff := false
	defer func() {
		if !handedOff {
			c.c.Close()
		}
		c.s.untrack(c)
	}()
	c.buf = make([]byte, initialBuffer)
	start := c.accepted
	c.setReadDeadline(after(start, c.s.ReadHeaderTimeout), c.s.ReadHeaderTimeout)
	if c.s.closing.Load() {
		// Shut down between the accept and here: Shutdown's wakeIfIdle
		// may have run before the deadline above replaced its own, so
		// give the connection the grace any new one gets to send its
		// request (and it is answered with "Connection: close").
		c.wakeIfIdle()
	}
	for {
		n, full, err := c.readHead(&start)
		if err != nil {
			// Nothing of a request read (closed, idle too long, shut
			// down): nothing to answer, as net/http. A timeout or a
			// reset part-way through a head ends the connection the same
			// way; a client that closed mid-head is the fallback's to
			// answer.
			if c.w > c.r && errors.Is(err, io.EOF) {
				handedOff = c.handOff(time.Time{})
			}
			return
		}
		if full {
			// Too long for the front: the fallback reads the rest under
			// the read-header deadline this request started with.
			handedOff = c.handOff(after(startedAt(&start), c.s.ReadHeaderTimeout))
			return
		}
		h, ok := parseHead(c.buf[c.r:c.r+n], c.s.Limits(), c.s.base, &c.room)
		if !ok || c.w-c.r-n < h.contentLength {
			// Outside the subset, or a body not in hand: the fallback
			// reads it with its own body timeout.
			handedOff = c.handOff(time.Time{})
			return
		}
		if !c.answer(h, n) {
			return
		}
		start = time.Now()
		if c.w == c.r {
			c.r, c.w = 0, 0
			// Idle: wait for the next request.
			c.setReadDeadline(after(start, c.s.IdleTimeout), c.s.IdleTimeout)
			c.state.Store(stateIdle)
			if c.s.closing.Load() {
				return
			}
		}
	}
}

// readHead reads until buf[r:] holds a complete head, returning its length;
// full reports that none fits in maxBuffer. *start is when the request
// began: the connection's start, the end of the previous response, or the
// first byte after an idle wait (readHead sets that one, to zero: see
// startedAt).
func (c *conn) readHead(start *time.Time) (n int, full bool, err error) {
	deadlineSet := c.state.Load() == stateNew // set by serve
	for {
		if c.w > c.r {
			if n := headEnd(c.buf[c.r:c.w]); n >= 0 {
				c.state.Store(stateBusy)
				return n, false, nil
			}
			if c.w-c.r >= maxBuffer {
				return 0, true, nil
			}
			if !deadlineSet {
				// Part of a head: the rest must come within the
				// read-header timeout from its start.
				c.setReadDeadline(after(startedAt(start), c.s.ReadHeaderTimeout), c.s.ReadHeaderTimeout)
				deadlineSet = true
			}
		}
		if c.w == len(c.buf) {
			if c.r > 0 {
				c.w = copy(c.buf, c.buf[c.r:c.w])
				c.r = 0
			} else {
				nb := make([]byte, min(2*len(c.buf), maxBuffer))
				copy(nb, c.buf[:c.w])
				c.buf = nb
			}
		}
		m, err := c.io.Read(c.buf[c.w:])
		if m > 0 {
			switch c.state.Load() {
			case stateIdle:
				// The first bytes after an idle wait: the request's
				// read-header timeout starts now. The clock is read
				// only if a deadline needs it (startedAt): a head that
				// came whole, nearly every one, never does.
				*start = time.Time{}
				deadlineSet = false
				c.state.Store(stateBusy)
			case stateNew:
				c.state.Store(stateBusy)
			}
		}
		c.w += m
		if err != nil {
			if n := headEnd(c.buf[c.r:c.w]); n >= 0 {
				return n, false, nil
			}
			return 0, false, err
		}
	}
}

// startedAt is *start, read from the clock now if it was left for later
// (zero): readHead leaves it when a request's first bytes arrive, and
// whoever first needs it does so right after that read.
func startedAt(start *time.Time) time.Time {
	if start.IsZero() {
		*start = time.Now()
	}
	return *start
}

// handOff gives the connection, with what was read and not yet used in
// front, to the fallback. capUntil, when set, caps the fallback's first
// read deadlines (see replayConn). It reports whether the fallback took the
// connection (false: the server is closing it).
func (c *conn) handOff(capUntil time.Time) bool {
	pending := append([]byte(nil), c.buf[c.r:c.w]...)
	rc := &replayConn{Conn: c.c, pending: pending}
	if !capUntil.IsZero() {
		// net/http sets a read deadline when it starts serving a
		// connection and again when it starts reading a request.
		rc.capUntil, rc.capCalls = capUntil, 2
	}
	// Deadlines are the fallback's from here.
	c.c.SetDeadline(time.Time{})
	c.s.handedOff.Add(1)
	return c.s.Fallback.put(rc)
}

// setReadDeadline sets the read deadline t (the timeout d after its
// start), unless the one in force may stand for it (deadline.Keep): a
// busy connection then sets its deadlines about once a second rather than
// twice a request. The slack's bound of a second also bounds what the
// write deadline may lose: it is request_timeout plus ten seconds, and an
// answer must still go out at request_timeout.
func (c *conn) setReadDeadline(t time.Time, d time.Duration) {
	if deadline.Keep(c.readDeadline, t, deadline.Slack(d)) {
		return
	}
	c.readDeadline = t
	c.c.SetReadDeadline(t)
}

// setWriteDeadline is setReadDeadline for the write deadline.
func (c *conn) setWriteDeadline(t time.Time, d time.Duration) {
	if deadline.Keep(c.writeDeadline, t, deadline.Slack(d)) {
		return
	}
	c.writeDeadline = t
	c.c.SetWriteDeadline(t)
}

// after is the deadline d after t; none when d is not positive, as for
// net/http's timeouts.
func after(t time.Time, d time.Duration) time.Time {
	if d <= 0 {
		return time.Time{}
	}
	return t.Add(d)
}
