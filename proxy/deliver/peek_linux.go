package deliver

import (
	"net"
	"syscall"
	"unsafe"
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
		// A raw system call: with MSG_DONTWAIT it never blocks, so the
		// scheduler need not be told (syscall.Recvfrom's entersyscall and
		// exitsyscall cost as much as the call).
		_, _, errno := syscall.RawSyscall6(syscall.SYS_RECVFROM, uintptr(p.fd), uintptr(unsafe.Pointer(&p.buf[0])), 1,
			syscall.MSG_PEEK|syscall.MSG_DONTWAIT, 0, 0)
		switch errno {
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			return false // nothing to read: open and quiet
		default:
			return true // EOF (0 bytes), a reset, or bytes nobody asked for
		}
	}
}
