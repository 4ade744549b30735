package proxy

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"sync"
	"time"
)

// The connections of intercepted tunnels: what serveTunnel reads and
// writes through, and how a shutdown finds them.

// continueBody sends "100 Continue" the first time handle reads a body the
// client announced with "Expect: 100-continue".
type continueBody struct {
	io.ReadCloser
	conn   net.Conn
	expect bool
	sent   bool
}

func (b *continueBody) Read(p []byte) (int, error) {
	if b.expect && !b.sent {
		b.sent = true
		b.conn.SetWriteDeadline(time.Now().Add(tunnelWriteTimeout))
		if _, err := io.WriteString(b.conn, "HTTP/1.1 100 Continue\r\n\r\n"); err != nil {
			return 0, err
		}
	}
	return b.ReadCloser.Read(p)
}

// bufferedConn is a connection whose first bytes were already read into r.
type bufferedConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *bufferedConn) Read(p []byte) (int, error) {
	if c.r.Buffered() > 0 {
		return c.r.Read(p)
	}
	return c.Conn.Read(p)
}

// CloseWrite half-closes the underlying TCP connection (see
// closeAfterReply).
func (c *bufferedConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// keepBufferedWriter keeps bytes a client sent right behind its CONNECT
// (a TLS ClientHello sent without waiting for the 200): net/http has
// already read them into its buffer, and goproxy's ConnectHijack hands on
// only the bare connection.
type keepBufferedWriter struct {
	http.ResponseWriter
	hj http.Hijacker
}

func (w keepBufferedWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	conn, rw, err := w.hj.Hijack()
	if err != nil {
		return nil, nil, err
	}
	return &bufferedConn{Conn: conn, r: rw.Reader}, rw, nil
}

// tunnels tracks the intercepted tunnels being served, so that a shutdown
// closes the idle ones at once and the busy ones after their reply, as
// net/http does for its own connections (it does not track hijacked ones).
type tunnels struct {
	mu      sync.Mutex
	set     map[*tunnel]struct{}
	closing bool
}

type tunnel struct {
	ts   *tunnels
	conn net.Conn // guarded by ts.mu
	idle bool     // guarded by ts.mu: waiting for the next request
}

func (ts *tunnels) add(conn net.Conn) *tunnel {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if ts.set == nil {
		ts.set = map[*tunnel]struct{}{}
	}
	t := &tunnel{ts: ts, conn: conn}
	ts.set[t] = struct{}{}
	return t
}

func (ts *tunnels) remove(t *tunnel) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	delete(ts.set, t)
}

// shutdown wakes idle tunnels (their wait for a request fails at once) and
// makes busy ones close after their current reply.
func (ts *tunnels) shutdown() {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	ts.closing = true
	for t := range ts.set {
		if t.idle {
			t.conn.SetReadDeadline(time.Now())
		}
	}
}

func (t *tunnel) setConn(conn net.Conn) {
	t.ts.mu.Lock()
	defer t.ts.mu.Unlock()
	t.conn = conn
}

// waitIdle marks the tunnel idle, waiting for its next request; false
// means the server is shutting down and the tunnel should close instead.
// The caller sets the idle read deadline first, so that it never overwrites
// the one shutdown sets to wake the wait.
func (t *tunnel) waitIdle() bool {
	t.ts.mu.Lock()
	defer t.ts.mu.Unlock()
	if t.ts.closing {
		return false
	}
	t.idle = true
	return true
}

// busy marks the tunnel as reading or answering a request.
func (t *tunnel) busy() {
	t.ts.mu.Lock()
	defer t.ts.mu.Unlock()
	t.idle = false
}

func (t *tunnel) draining() bool {
	t.ts.mu.Lock()
	defer t.ts.mu.Unlock()
	return t.ts.closing
}
