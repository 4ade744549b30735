package sysconn

import (
	"bytes"
	"crypto/rand"
	"errors"
	"io"
	"net"
	"os"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"
)

// pair returns both ends of a loopback TCP connection: the client end
// wrapped, and the server end as the net package gives it.
func pair(t *testing.T) (wrapped net.Conn, peer net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			accepted <- nil
			return
		}
		accepted <- c
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	p := <-accepted
	if p == nil {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { c.Close(); p.Close() })
	w := Wrap(c)
	if runtime.GOOS == "linux" {
		if _, ok := w.(*Conn); !ok {
			t.Fatalf("Wrap(%T) = %T, want *Conn", c, w)
		}
	}
	return w, p
}

func TestReadAndWriteCarryEveryByte(t *testing.T) {
	w, p := pair(t)
	// 8 MiB is far more than the socket buffers hold: Write must park
	// on a full buffer and go on, and Read must park on an empty one.
	want := make([]byte, 8<<20)
	rand.Read(want)
	errc := make(chan error, 1)
	go func() {
		_, err := w.Write(want)
		errc <- err
	}()
	got := make([]byte, 0, len(want))
	buf := make([]byte, 1000) // small reads: the writer fills the buffer
	for len(got) < len(want) {
		n, err := p.Read(buf)
		if err != nil {
			t.Fatalf("peer read after %d bytes: %v", len(got), err)
		}
		got = append(got, buf[:n]...)
	}
	if err := <-errc; err != nil {
		t.Fatalf("Write: %v", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("the bytes read are not the bytes written")
	}

	// And back: the wrapped end reads what the peer writes, in pieces.
	go func() { _, err := p.Write(want); errc <- err }()
	got = got[:0]
	for len(got) < len(want) {
		n, err := w.Read(buf)
		if err != nil {
			t.Fatalf("Read after %d bytes: %v", len(got), err)
		}
		if n == 0 {
			t.Fatal("Read returned 0 bytes without an error")
		}
		got = append(got, buf[:n]...)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("the bytes read back are not the bytes written")
	}
}

func TestReadAtThePeersEndIsEOF(t *testing.T) {
	w, p := pair(t)
	p.Write([]byte("last"))
	p.Close()
	b, err := io.ReadAll(w)
	if err != nil || string(b) != "last" {
		t.Fatalf("ReadAll = %q, %v; want \"last\", nil (io.EOF ends it)", b, err)
	}
	if n, err := w.Read(make([]byte, 1)); n != 0 || err != io.EOF {
		t.Fatalf("Read after the end = %d, %v; want 0, io.EOF", n, err)
	}
}

// TestDeadlinesAndCloseReadAsTheNetPackages: the errors callers classify
// (a timeout, a closed connection, a reset) are the net package's, message
// and all.
func TestDeadlinesAndCloseReadAsTheNetPackages(t *testing.T) {
	w, _ := pair(t)
	w.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
	start := time.Now()
	_, err := w.Read(make([]byte, 10))
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("Read past the deadline: %v, want os.ErrDeadlineExceeded", err)
	}
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("Read past the deadline: %v is not a net.Error timeout", err)
	}
	if time.Since(start) > 5*time.Second {
		t.Fatal("Read did not end at its deadline")
	}
	want := "read tcp " + w.LocalAddr().String() + "->" + w.RemoteAddr().String() + ": i/o timeout"
	if err.Error() != want {
		t.Fatalf("error %q, want the net package's %q", err, want)
	}

	w.SetReadDeadline(time.Time{})
	done := make(chan error, 1)
	go func() { _, err := w.Read(make([]byte, 10)); done <- err }()
	time.Sleep(20 * time.Millisecond)
	w.Close()
	select {
	case err := <-done:
		if !errors.Is(err, net.ErrClosed) {
			t.Fatalf("Read when closed: %v, want net.ErrClosed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not end a parked Read")
	}
	if _, err := w.Write([]byte("x")); !errors.Is(err, net.ErrClosed) || !strings.HasPrefix(err.Error(), "write tcp ") {
		t.Fatalf("Write after Close: %v, want the net package's write error with net.ErrClosed", err)
	}
}

func TestAResetIsTheSystemsError(t *testing.T) {
	w, p := pair(t)
	p.(*net.TCPConn).SetLinger(0) // close with a reset
	p.Close()
	time.Sleep(20 * time.Millisecond)
	_, err := w.Read(make([]byte, 10))
	if !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("Read after a reset: %v, want ECONNRESET", err)
	}
	var se *os.SyscallError
	if !errors.As(err, &se) || se.Syscall != "read" {
		t.Fatalf("Read after a reset: %v is not an os.SyscallError of read", err)
	}
}

func TestWriteDeadlineStopsAWriteThatCannotFinish(t *testing.T) {
	w, _ := pair(t) // the peer never reads
	w.SetWriteDeadline(time.Now().Add(50 * time.Millisecond))
	n, err := w.Write(make([]byte, 64<<20))
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("Write = %d, %v; want os.ErrDeadlineExceeded", n, err)
	}
	if n <= 0 || n >= 64<<20 {
		t.Fatalf("Write reported %d bytes written; want what the buffers took", n)
	}
}

func TestWrapLeavesOtherConnectionsAlone(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	if w := Wrap(a); w != a {
		t.Fatalf("Wrap(net.Pipe) = %T, want the pipe itself", w)
	}
}

func TestCloseWriteHalfCloses(t *testing.T) {
	w, p := pair(t)
	cw, ok := w.(interface{ CloseWrite() error })
	if !ok {
		t.Fatalf("%T has no CloseWrite", w)
	}
	if err := cw.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	if n, err := p.Read(make([]byte, 1)); n != 0 || err != io.EOF {
		t.Fatalf("peer Read after CloseWrite = %d, %v; want EOF", n, err)
	}
	p.Write([]byte("still open"))
	b := make([]byte, 10)
	if n, err := io.ReadFull(w, b); err != nil || string(b[:n]) != "still open" {
		t.Fatalf("Read after CloseWrite = %q, %v", b[:n], err)
	}
}

// TestReadAndWriteAllocateNothing: the state of a call lives in Conn.
func TestReadAndWriteAllocateNothing(t *testing.T) {
	w, p := pair(t)
	msg := []byte("ping")
	buf := make([]byte, 16)
	allocs := testing.AllocsPerRun(200, func() {
		if _, err := w.Write(msg); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(p, buf[:4]); err != nil {
			t.Fatal(err)
		}
		if _, err := p.Write(msg); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(w, buf[:4]); err != nil {
			t.Fatal(err)
		}
	})
	// The peer's own calls through the net package allocate nothing
	// either; any allocation is the wrapper's.
	if allocs != 0 {
		t.Fatalf("%v allocations a round trip, want 0", allocs)
	}
}
