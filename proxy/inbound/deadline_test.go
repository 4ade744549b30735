package inbound

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"testing"
	"time"
)

// dialTimedFront serves okResponse with the front's three timeouts on a
// loopback listener and returns a connection to it; both end with the
// test.
func dialTimedFront(t *testing.T, readHeader, write, idle time.Duration) net.Conn {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{Handler: okResponse, Fallback: NewHandoff(ln.Addr()), Limits: func() Limits { return fuzzLimits },
		ReadHeaderTimeout: readHeader, WriteTimeout: write, IdleTimeout: idle}
	go s.Serve(ln)
	t.Cleanup(func() { s.Close() })
	conn, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	conn.SetDeadline(time.Now().Add(20 * time.Second))
	return conn
}

// TestBusyConnectionStillTimesOutIdle: a connection that carries a
// request every 50 ms for longer than its idle timeout, keeping its idle
// deadline from one request to the next while within the slack, is not
// closed while busy; it closes once it goes idle, and not before three
// quarters of the idle timeout after its last answer.
func TestBusyConnectionStillTimesOutIdle(t *testing.T) {
	const idle = time.Second
	conn := dialTimedFront(t, idle, idle, idle)
	br := bufio.NewReader(conn)
	var last time.Time
	for range 30 { // 1.5 s
		time.Sleep(50 * time.Millisecond)
		io.WriteString(conn, "GET /busy HTTP/1.1\r\nHost: h\r\n\r\n")
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("busy connection: %v", err)
		}
		io.Copy(io.Discard, resp.Body)
		last = time.Now()
		if resp.StatusCode != 200 {
			t.Fatalf("got %d, want 200", resp.StatusCode)
		}
	}
	if n, err := br.ReadByte(); err != io.EOF {
		t.Fatalf("idle connection: read %q, %v; want it closed (EOF)", n, err)
	}
	// Within the slack of the timeout (a quarter, at most a second), with
	// a generous allowance for a slow machine on this side.
	if waited := time.Since(last); waited < idle/2 {
		t.Errorf("closed %v after the last answer; the idle timeout is %v", waited, idle)
	}
}

// TestHeadAfterIdleHasTheReadHeaderTimeout: on a kept-alive connection,
// the read-header timeout starts with the first bytes of the next request
// after an idle wait. A head sent in two parts within it is answered; a
// head left unfinished is cut off after it, long before the idle timeout.
func TestHeadAfterIdleHasTheReadHeaderTimeout(t *testing.T) {
	const readHeader, idle = 600 * time.Millisecond, 20 * time.Second
	conn := dialTimedFront(t, readHeader, idle, idle)
	br := bufio.NewReader(conn)
	const head = "GET /after-idle HTTP/1.1\r\nHost: h\r\n\r\n"
	// A new connection's read-header timeout runs from its start: the
	// first request at once.
	io.WriteString(conn, head)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	for i := range 2 {
		// Idle longer than the read-header timeout, then a head in two
		// parts, the second well within it.
		time.Sleep(readHeader + 200*time.Millisecond)
		io.WriteString(conn, head[:10])
		time.Sleep(readHeader / 6)
		io.WriteString(conn, head[10:])
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("request %d, sent in two parts after an idle wait: %v", i+1, err)
		}
		io.Copy(io.Discard, resp.Body)
		if resp.StatusCode != 200 {
			t.Fatalf("request %d: got %d, want 200", i+1, resp.StatusCode)
		}
	}
	time.Sleep(readHeader + 200*time.Millisecond)
	io.WriteString(conn, head[:10])
	sent := time.Now()
	if n, err := br.ReadByte(); err != io.EOF {
		t.Fatalf("unfinished head: read %q, %v; want the connection closed (EOF)", n, err)
	}
	if waited := time.Since(sent); waited > idle/2 {
		t.Errorf("unfinished head cut off after %v; the read-header timeout is %v", waited, readHeader)
	}
}
