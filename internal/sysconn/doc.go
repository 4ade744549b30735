// Package sysconn reads and writes a socket with raw system calls inside
// the runtime's poller, without the scheduler's bookkeeping around each
// call.
//
// The net package makes every read and write through syscall.Syscall,
// which tells the scheduler the goroutine may block: entering and leaving
// cost about as much as a short call, and while a call lasts the system
// monitor may hand its P to another thread (a wake-up, and a second hand-off
// when the call returns). A read or write of a non-blocking socket never
// blocks — it moves bytes or answers EAGAIN — and a loopback or LAN write
// mostly costs the kernel's own TCP work. Conn makes the same calls through
// syscall.RawConn, so the poller still parks the goroutine on EAGAIN and
// honours deadlines and Close exactly as the net package does, and errors
// read as the net package's (*net.OpError, os.SyscallError, io.EOF,
// os.ErrDeadlineExceeded, net.ErrClosed). Under postern's load benchmark it
// took about 1 µs of CPU off a message (docs/benchmarks.md).
//
// Console does the same for the process's standard output or error when a
// pipe or socket carries it (the audit trail's console sink): one raw
// non-blocking call per write, and the *os.File for whatever that does not
// write.
package sysconn
