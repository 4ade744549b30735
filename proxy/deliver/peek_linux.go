package deliver

import (
	"net"
	"syscall"
)

// peerClosed reports whether the provider has closed c (or sent something
// unasked, such as a TLS close_notify) while it sat idle in the pool: one
// non-blocking peek at the socket, no goroutine.
func peerClosed(c net.Conn) bool {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return false
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	closed := false
	var b [1]byte
	err = rc.Read(func(fd uintptr) bool {
		n, _, err := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		switch {
		case err == syscall.EAGAIN || err == syscall.EINTR:
		case err != nil, n >= 0:
			closed = true // EOF (n == 0), a reset, or bytes nobody asked for
		}
		return true // never wait for readiness
	})
	return closed || err != nil
}
