package deliver

import (
	"net"
	"syscall"
)

// peeker looks at an idle pooled connection's socket without blocking. Its
// callback is made once per connection, so a look allocates nothing.
type peeker struct {
	rc     syscall.RawConn // nil: cannot look
	closed bool
	buf    [1]byte
	look   func(fd uintptr) bool
}

func (p *peeker) init(c net.Conn) {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return
	}
	p.rc = rc
	p.look = func(fd uintptr) bool {
		n, _, err := syscall.Recvfrom(int(fd), p.buf[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		switch {
		case err == syscall.EAGAIN || err == syscall.EINTR:
			p.closed = false
		default:
			p.closed = err != nil || n >= 0 // EOF (n == 0), a reset, or bytes nobody asked for
		}
		return true // never wait for readiness
	}
}

// peerClosed reports whether the provider has closed the connection (or
// sent something unasked, such as a TLS close_notify) while it sat idle in
// the pool: one non-blocking peek at the socket, no goroutine.
func (p *peeker) peerClosed() bool {
	if p.rc == nil {
		return false
	}
	if err := p.rc.Read(p.look); err != nil {
		return true
	}
	return p.closed
}
