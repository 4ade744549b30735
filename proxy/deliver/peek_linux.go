package deliver

import (
	"net"
	"syscall"
)

// peeker looks at an idle pooled connection's socket without blocking.
type peeker struct {
	fd  int
	ok  bool // fd is the connection's socket
	buf [1]byte
}

// init takes c's file descriptor once. It stays valid while c is open,
// and a pooled connection is only looked at by the one request that took
// it from the pool, before using it.
func (p *peeker) init(c net.Conn) {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return
	}
	rc.Control(func(fd uintptr) { p.fd, p.ok = int(fd), true })
}

// peerClosed reports whether the provider has closed the connection (or
// sent something unasked, such as a TLS close_notify) while it sat idle in
// the pool: one non-blocking recv(MSG_PEEK) straight on the socket, no
// goroutine and no poller round trip.
func (p *peeker) peerClosed() bool {
	if !p.ok {
		return false
	}
	for {
		n, _, err := syscall.Recvfrom(p.fd, p.buf[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		switch {
		case err == syscall.EINTR:
			continue
		case err == syscall.EAGAIN:
			return false // nothing to read: open and quiet
		default:
			return err != nil || n >= 0 // EOF (n == 0), a reset, or bytes nobody asked for
		}
	}
}
