//go:build linux

package sysconn

import (
	"os"
	"strconv"
	"syscall"
	"unsafe"
)

// Console writes to the process's standard output or error (or any *os.File)
// with one raw, non-blocking system call per write when the stream is a pipe,
// a FIFO or a socket — what journald, a container runtime or a supervisor
// reads a daemon's output through — and through the *os.File otherwise.
//
// Why: os.File's Write enters the system call through syscall.Syscall. A
// pipe or socket write wakes its reader, and on a busy machine the kernel
// often runs the reader at once, so the writing thread stays "in a system
// call" long enough for the runtime's system monitor to take its P and
// hand it to another thread; each such hand-off also keeps the monitor
// polling every 20 µs instead of backing off to 10 ms. Under postern's load
// benchmark the audit trail's console writes were the only such calls,
// and the monitor's wake-ups cost about as much CPU as its own sink
// (docs/benchmarks.md). A raw non-blocking call never blocks, so the
// scheduler need not be told.
//
// Whatever a raw call does not write — the pipe or socket is full (its
// reader is behind), or it failed — is written through the *os.File, with
// exactly its semantics: it waits for room with the scheduler told, and a
// broken standard output or error ends the process with SIGPIPE as Go
// programs do. A write of at most 4096 bytes to a pipe stays atomic: a
// non-blocking one writes all of it or nothing.
//
// Unlike the file, a Console must not be written from two goroutines at
// once (postern's console sink has one); it never changes the file's own
// flags.
type Console struct {
	f    *os.File
	fd   int  // a non-blocking descriptor for f's pipe or socket; -1: none
	send bool // fd is f's socket itself: send with MSG_DONTWAIT
	own  bool // fd was opened here (a pipe's non-blocking reopening)
}

// NewConsole returns a Console for f. Nothing fails: where no raw path is
// found (a terminal, a regular file, /dev/null, a pipe that cannot be
// reopened), every write goes through f.
func NewConsole(f *os.File) *Console {
	c := &Console{f: f, fd: -1}
	fd := fileDescriptor(f)
	if fd < 0 {
		return c
	}
	var st syscall.Stat_t
	if syscall.Fstat(fd, &st) != nil {
		return c
	}
	switch st.Mode & syscall.S_IFMT {
	case syscall.S_IFSOCK:
		// A socket takes MSG_DONTWAIT on each send: its descriptor's flags,
		// shared with whoever else holds it, stay as they are.
		c.fd, c.send = fd, true
	case syscall.S_IFIFO:
		// A pipe has no per-call flag, but opening it again through /proc
		// gives a descriptor of its own that can be non-blocking (one more
		// writer end, so the reader sees the end of the pipe only once Close
		// has run too). It fails where the pipe belongs to another user or
		// /proc is not mounted: then f is written as before.
		nb, err := syscall.Open("/proc/self/fd/"+strconv.Itoa(fd), syscall.O_WRONLY|syscall.O_NONBLOCK|syscall.O_CLOEXEC, 0)
		if err == nil {
			c.fd, c.own = nb, true
		}
	}
	return c
}

// fileDescriptor is f's descriptor, read without File.Fd (which makes a
// non-blocking file blocking); -1 when f has none.
func fileDescriptor(f *os.File) int {
	rc, err := f.SyscallConn()
	if err != nil {
		return -1
	}
	fd := -1
	if rc.Control(func(s uintptr) { fd = int(s) }) != nil {
		return -1
	}
	return fd
}

// Raw reports whether writes try a raw non-blocking system call first.
func (c *Console) Raw() bool { return c.fd >= 0 }

// Write writes all of p, or reports why not.
func (c *Console) Write(p []byte) (int, error) {
	n := c.tryWrite(p)
	if n == len(p) {
		return n, nil
	}
	m, err := c.f.Write(p[n:])
	return n + m, err
}

// tryWrite writes what it can of p without blocking and returns how much.
func (c *Console) tryWrite(p []byte) int {
	if c.fd < 0 {
		return 0
	}
	n := 0
	for n < len(p) {
		var r uintptr
		var e syscall.Errno
		if c.send {
			r, _, e = syscall.RawSyscall6(syscall.SYS_SENDTO, uintptr(c.fd), uintptr(unsafe.Pointer(&p[n])), uintptr(len(p)-n),
				syscall.MSG_DONTWAIT|syscall.MSG_NOSIGNAL, 0, 0)
		} else {
			r, _, e = syscall.RawSyscall(syscall.SYS_WRITE, uintptr(c.fd), uintptr(unsafe.Pointer(&p[n])), uintptr(len(p)-n))
		}
		switch e {
		case 0:
			n += int(r)
		case syscall.EINTR:
		default:
			// Full (EAGAIN) or failed (EPIPE and the rest): the file takes
			// over, with its own waiting and its own error.
			return n
		}
	}
	return n
}

// Close closes what NewConsole opened; never the file itself.
func (c *Console) Close() error {
	if !c.own {
		return nil
	}
	fd := c.fd
	c.fd, c.own = -1, false
	return syscall.Close(fd)
}
