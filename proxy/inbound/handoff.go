package inbound

import (
	"net"
	"sync"
	"time"
)

// Handoff is a net.Listener fed by the front: every connection the front
// does not serve itself comes out of Accept, with the bytes the front had
// already read replayed in front of the rest. Serve it with the server that
// decides everything outside the front's subset (in postern, net/http and
// goproxy).
type Handoff struct {
	addr  net.Addr
	conns chan net.Conn // unbuffered: a connection sent is one Accept took
	done  chan struct{}
	once  sync.Once
}

// NewHandoff returns an open Handoff that reports addr as its address.
func NewHandoff(addr net.Addr) *Handoff {
	return &Handoff{addr: addr, conns: make(chan net.Conn), done: make(chan struct{})}
}

// Accept returns the next connection handed off, or net.ErrClosed once
// Close was called.
func (h *Handoff) Accept() (net.Conn, error) {
	select {
	case c := <-h.conns:
		return c, nil
	case <-h.done:
		return nil, net.ErrClosed
	}
}

// Close makes Accept and put fail from now on.
func (h *Handoff) Close() error {
	h.once.Do(func() { close(h.done) })
	return nil
}

// Addr is the address the front listens on.
func (h *Handoff) Addr() net.Addr { return h.addr }

// put hands c to Accept; false means the Handoff is closed and c is not
// taken.
func (h *Handoff) put(c net.Conn) bool {
	select {
	case h.conns <- c:
		return true
	case <-h.done:
		return false
	}
}

// replayConn is a connection whose first bytes the front already read:
// Read returns them before anything else.
type replayConn struct {
	net.Conn
	pending []byte
	// capUntil, when set, caps the read deadlines of the first capCalls
	// SetReadDeadline calls: a request head the front was still reading
	// when it handed the connection off keeps the deadline it started
	// with, rather than getting a second read-header timeout.
	capUntil time.Time
	capCalls int
}

func (c *replayConn) Read(p []byte) (int, error) {
	if len(c.pending) > 0 {
		n := copy(p, c.pending)
		c.pending = c.pending[n:]
		return n, nil
	}
	return c.Conn.Read(p)
}

func (c *replayConn) SetReadDeadline(t time.Time) error {
	if c.capCalls > 0 {
		c.capCalls--
		if t.IsZero() || t.After(c.capUntil) {
			t = c.capUntil
		}
	}
	return c.Conn.SetReadDeadline(t)
}

func (c *replayConn) SetDeadline(t time.Time) error {
	if err := c.SetReadDeadline(t); err != nil {
		return err
	}
	return c.Conn.SetWriteDeadline(t)
}

// CloseWrite half-closes the connection, as net/http does before it closes
// one after a reply (and intercepted tunnels do, proxy/intercept.go).
func (c *replayConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}
