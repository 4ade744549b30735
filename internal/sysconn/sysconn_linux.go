//go:build linux

package sysconn

import (
	"errors"
	"io"
	"net"
	"os"
	"syscall"
	"unsafe"
)

// Conn is a socket whose Read and Write are raw system calls. Every other
// method is the wrapped connection's. Like the net package's, Read may run
// alongside Write; unlike it, two Reads (or two Writes) must not run at
// once: each keeps its call's state in Conn so that a call allocates
// nothing. A tls.Conn, or a server's one goroutine a connection, never
// does.
type Conn struct {
	net.Conn
	rc syscall.RawConn

	rd, wr          call
	readFn, writeFn func(fd uintptr) bool // c.read and c.write, bound once
}

// call is one Read's or Write's buffer, progress and failure.
type call struct {
	p     []byte
	n     int
	errno syscall.Errno
}

// Wrap returns c reading and writing through raw system calls, or c itself
// when it is not a socket (a TLS connection, a pipe).
func Wrap(c net.Conn) net.Conn {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return c
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return c
	}
	w := &Conn{Conn: c, rc: rc}
	w.readFn, w.writeFn = w.read, w.write
	return w
}

// Read reads like net.Conn's Read: at least one byte, io.EOF at the peer's
// end, or the error.
func (c *Conn) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	c.rd = call{p: p}
	err := c.rc.Read(c.readFn)
	n, errno := c.rd.n, c.rd.errno
	c.rd.p = nil // the caller's buffer is not kept
	switch {
	case err != nil:
		return 0, c.opError("read", err)
	case errno != 0:
		return 0, c.opError("read", os.NewSyscallError("read", errno))
	case n == 0:
		return 0, io.EOF
	}
	return n, nil
}

// read is one attempt of Read on the socket; false: nothing to read yet,
// park until readable (or the deadline, or Close).
func (c *Conn) read(fd uintptr) bool {
	p := c.rd.p
	for {
		r, _, e := syscall.RawSyscall(syscall.SYS_READ, fd, uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)))
		switch e {
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			return false
		}
		c.rd.n, c.rd.errno = int(r), e
		return true
	}
}

// Write writes all of p like net.Conn's Write, waiting for room in the
// socket's buffer as needed.
func (c *Conn) Write(p []byte) (int, error) {
	c.wr = call{p: p}
	err := c.rc.Write(c.writeFn)
	n, errno := c.wr.n, c.wr.errno
	c.wr.p = nil
	switch {
	case err != nil:
		return n, c.opError("write", err)
	case errno != 0:
		return n, c.opError("write", os.NewSyscallError("write", errno))
	}
	return n, nil
}

// write writes what is left of Write's buffer; false: the socket's buffer
// is full, park until writable.
func (c *Conn) write(fd uintptr) bool {
	p := c.wr.p
	for c.wr.n < len(p) {
		r, _, e := syscall.RawSyscall(syscall.SYS_WRITE, fd, uintptr(unsafe.Pointer(&p[c.wr.n])), uintptr(len(p)-c.wr.n))
		switch e {
		case 0:
			c.wr.n += int(r)
		case syscall.EINTR:
		case syscall.EAGAIN:
			return false
		default:
			c.wr.errno = e
			return true
		}
	}
	return true
}

// SyscallConn is the socket's, for callers that look at it themselves.
func (c *Conn) SyscallConn() (syscall.RawConn, error) { return c.rc, nil }

// CloseWrite half-closes the socket when it can.
func (c *Conn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return errors.ErrUnsupported
}

// opError is err as the net package reports a failed read or write. The
// poller's own errors (a deadline, Close) come as RawConn's *net.OpError
// ("raw-read"); their cause is kept under the plain operation's name.
func (c *Conn) opError(op string, err error) error {
	var oe *net.OpError
	if errors.As(err, &oe) {
		err = oe.Err
	}
	return &net.OpError{Op: op, Net: c.LocalAddr().Network(), Source: c.LocalAddr(), Addr: c.RemoteAddr(), Err: err}
}
