//go:build linux

package sysconn

import (
	"bytes"
	"crypto/rand"
	"errors"
	"io"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// nonblocking reports f's O_NONBLOCK flag.
func nonblocking(t *testing.T, f *os.File) bool {
	t.Helper()
	var flags int
	rc, err := f.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	rc.Control(func(fd uintptr) {
		flags, err = fcntl(int(fd), syscall.F_GETFL, 0)
	})
	if err != nil {
		t.Fatal(err)
	}
	return flags&syscall.O_NONBLOCK != 0
}

func fcntl(fd, cmd, arg int) (int, error) {
	r, _, e := syscall.Syscall(syscall.SYS_FCNTL, uintptr(fd), uintptr(cmd), uintptr(arg))
	if e != 0 {
		return 0, e
	}
	return int(r), nil
}

// drain reads r to its end in a goroutine, after waiting delay (so that
// writes meet a full pipe or socket first).
func drain(r io.Reader, delay time.Duration) <-chan []byte {
	got := make(chan []byte, 1)
	go func() {
		time.Sleep(delay)
		b, _ := io.ReadAll(r)
		got <- b
	}()
	return got
}

// writeAll writes want through c in pieces of size, as the audit sink's
// batches come.
func writeAll(t *testing.T, c *Console, want []byte, size int) {
	t.Helper()
	for p := want; len(p) > 0; {
		n := min(size, len(p))
		m, err := c.Write(p[:n])
		if err != nil || m != n {
			t.Fatalf("Write(%d bytes) = %d, %v", n, m, err)
		}
		p = p[n:]
	}
}

// TestConsoleOnAPipe: on a pipe (a container runtime's or the benchmark's
// reader) Console writes through a non-blocking descriptor of its own, every
// byte arrives in order — also when the pipe is full and the reader
// late, where the file's own blocking write waits for room — and the
// file's flags are not touched.
func TestConsoleOnAPipe(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	// The smallest pipe the kernel allows: 64 KiB more than fills it.
	if _, err := fcntl(int(w.Fd()), syscall.F_SETPIPE_SZ, 4096); err != nil {
		t.Fatal(err)
	}
	before := nonblocking(t, w)
	c := NewConsole(w)
	if !c.Raw() {
		t.Fatal("a pipe got no raw path")
	}
	if nonblocking(t, w) != before {
		t.Error("NewConsole changed the file's O_NONBLOCK flag")
	}
	want := make([]byte, 64<<10+123)
	rand.Read(want)
	got := drain(r, 50*time.Millisecond)
	writeAll(t, c, want, 3000)
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	// Closing the Console leaves the file open and writable.
	if _, err := w.Write([]byte("after")); err != nil {
		t.Fatalf("the file after Console.Close: %v", err)
	}
	w.Close()
	if b := <-got; !bytes.Equal(b, append(want, "after"...)) {
		t.Fatalf("reader got %d bytes, want the %d written, in order", len(b), len(want)+5)
	}
}

// TestConsoleOnASocket: on a socket (journald's stream) Console sends with
// MSG_DONTWAIT on the file's own descriptor; a full socket is waited out
// through the file.
func TestConsoleOnASocket(t *testing.T) {
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	w := os.NewFile(uintptr(fds[0]), "journal-stream")
	r := os.NewFile(uintptr(fds[1]), "journald")
	defer r.Close()
	before := nonblocking(t, w)
	c := NewConsole(w)
	if !c.Raw() {
		t.Fatal("a socket got no raw path")
	}
	want := make([]byte, 1<<20) // far more than the socket buffers hold
	rand.Read(want)
	got := drain(r, 50*time.Millisecond)
	writeAll(t, c, want, 4096)
	if nonblocking(t, w) != before {
		t.Error("writing changed the file's O_NONBLOCK flag")
	}
	c.Close()
	w.Close()
	if b := <-got; !bytes.Equal(b, want) {
		t.Fatalf("reader got %d bytes, want the %d written, in order", len(b), len(want))
	}
}

// TestConsoleOnARegularFile: a file (stdout redirected to one) and
// /dev/null are written through the file alone.
func TestConsoleOnARegularFile(t *testing.T) {
	path := t.TempDir() + "/out"
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	c := NewConsole(f)
	if c.Raw() {
		t.Error("a regular file got a raw path")
	}
	if _, err := c.Write([]byte("line 1\nline 2\n")); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(path); string(b) != "line 1\nline 2\n" {
		t.Fatalf("file holds %q", b)
	}
	null, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer null.Close()
	if NewConsole(null).Raw() {
		t.Error("/dev/null got a raw path")
	}
}

// TestConsoleBrokenPipeIsAnError: with its reader gone, a write fails with
// EPIPE (a descriptor other than 1 and 2: the process goes on, as with
// os.File).
func TestConsoleBrokenPipeIsAnError(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	c := NewConsole(w)
	defer c.Close()
	r.Close()
	if _, err := c.Write([]byte("line\n")); !errors.Is(err, syscall.EPIPE) {
		t.Fatalf("Write to a pipe without reader: %v, want EPIPE", err)
	}
}

// TestConsoleWriteAllocatesNothing: a line costs no allocation.
func TestConsoleWriteAllocatesNothing(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	go io.Copy(io.Discard, r)
	c := NewConsole(w)
	defer c.Close()
	line := []byte(`{"time":"2026-12-04T13:00:00Z","msg":"delivered"}` + "\n")
	if n := testing.AllocsPerRun(1000, func() {
		if _, err := c.Write(line); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Errorf("Write allocates %.1f times", n)
	}
}

// consoleChildEnv makes the test binary a child that writes lines to its
// standard output through Console until it is stopped.
const consoleChildEnv = "SYSCONN_CONSOLE_CHILD"

func TestMain(m *testing.M) {
	if os.Getenv(consoleChildEnv) == "1" {
		c := NewConsole(os.Stdout)
		for i := 0; i < 500; i++ { // at most 5 s
			if _, err := c.Write([]byte("line\n")); err != nil {
				os.Stderr.WriteString("write failed without ending the process: " + err.Error() + "\n")
				os.Exit(3)
			}
			time.Sleep(10 * time.Millisecond)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TestConsoleBrokenStdoutEndsTheProcess: a Go program whose standard output
// is a pipe nobody reads any more ends with SIGPIPE on its next write;
// Console keeps that (its raw write fails, the file's write raises it).
func TestConsoleBrokenStdoutEndsTheProcess(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), consoleChildEnv+"=1")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	first := make([]byte, 5)
	if _, err := io.ReadFull(out, first); err != nil || string(first) != "line\n" {
		cmd.Process.Kill()
		t.Fatalf("child's first line: %q, %v", first, err)
	}
	out.Close()
	err = cmd.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		t.Fatalf("child ended with %v (stderr %q), want SIGPIPE", err, stderr.String())
	}
	ws, ok := ee.Sys().(syscall.WaitStatus)
	if !ok || !ws.Signaled() || ws.Signal() != syscall.SIGPIPE {
		t.Fatalf("child ended with %v (stderr %q), want SIGPIPE", err, stderr.String())
	}
}
