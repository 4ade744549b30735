package inbound

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// startFront serves handler on a loopback listener, with a net/http
// fallback that answers 299, until the test ends.
func startFront(t *testing.T, handler func(*http.Request) *http.Response, log *slog.Logger) (*Server, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h := NewHandoff(ln.Addr())
	fallback := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(299) })}
	go fallback.Serve(h)
	s := &Server{Handler: handler, Fallback: h, Limits: func() Limits { return fuzzLimits },
		ReadHeaderTimeout: 10 * time.Second, WriteTimeout: 10 * time.Second, IdleTimeout: 10 * time.Second, Log: log}
	s.init() // before the test looks at s.conns (Serve would do it in its goroutine)
	go s.Serve(ln)
	t.Cleanup(func() { s.Close(); fallback.Close() })
	return s, ln.Addr().String()
}

func okResponse(r *http.Request) *http.Response {
	return &http.Response{StatusCode: 200, Header: http.Header{"Content-Type": {"text/plain"}},
		Body: io.NopCloser(strings.NewReader("ok " + r.URL.Path))}
}

// TestHandlerPanicClosesOnlyItsConnection: a handler that panics ends its
// connection without a reply, as in net/http; the server goes on, and the
// log has the stack but nothing of the request.
func TestHandlerPanicClosesOnlyItsConnection(t *testing.T) {
	var logBuf syncBuffer
	_, addr := startFront(t, func(r *http.Request) *http.Response {
		if strings.Contains(r.URL.RawQuery, "boom") {
			panic("request " + r.URL.RawQuery)
		}
		return okResponse(r)
	}, slog.New(slog.NewTextHandler(&logBuf, nil)))
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(conn, "GET /a?boom=secret-991 HTTP/1.1\r\nHost: h\r\n\r\n")
	if reply, _ := io.ReadAll(conn); len(reply) != 0 {
		t.Errorf("panicking handler: reply %q, want none", reply)
	}
	if resp, body := get(t, addr, "GET /next HTTP/1.1\r\nHost: h\r\n\r\n"); resp.StatusCode != 200 || body != "ok /next" {
		t.Errorf("next request: %d %q", resp.StatusCode, body)
	}
	if l := logBuf.String(); !strings.Contains(l, "panic serving a request") || strings.Contains(l, "secret-991") {
		t.Errorf("log %q: want the panic noted without the request", l)
	}
}

// TestShutdownLetsANewConnectionSendItsRequest: a connection accepted
// before Shutdown whose request comes just after gets its reply, with
// "Connection: close" (net/http waits 5 s for such connections).
func TestShutdownLetsANewConnectionSendItsRequest(t *testing.T) {
	s, addr := startFront(t, okResponse, nil)
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	// Wait until the front has accepted the connection.
	for i := 0; ; i++ {
		s.mu.Lock()
		n := len(s.conns)
		s.mu.Unlock()
		if n == 1 {
			break
		}
		if i == 1000 {
			t.Fatal("connection not accepted")
		}
		time.Sleep(5 * time.Millisecond)
	}
	done := make(chan error, 1)
	go func() { done <- s.Shutdown(context.Background()) }()
	time.Sleep(50 * time.Millisecond)
	io.WriteString(conn, "GET /late HTTP/1.1\r\nHost: h\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("no reply: %v", err)
	}
	if resp.StatusCode != 200 || !resp.Close {
		t.Errorf("got %d (close %v), want 200 with Connection: close", resp.StatusCode, resp.Close)
	}
	if err := <-done; err != nil {
		t.Errorf("Shutdown: %v", err)
	}
}

// send opens a connection to addr and writes raw on it; the connection
// closes when the test ends.
func send(t *testing.T, addr, raw string) net.Conn {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(conn, raw)
	return conn
}

func get(t *testing.T, addr, raw string) (*http.Response, string) {
	t.Helper()
	conn := send(t, addr, raw)
	defer conn.Close()
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	return resp, string(body)
}

type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestCloseCancelsRequestsInFlight: every request the front reads carries
// the server's context, which Close cancels, as net/http's BaseContext
// would; each request is its own value (one connection's requests do not
// share a *http.Request).
func TestCloseCancelsRequestsInFlight(t *testing.T) {
	entered := make(chan *http.Request, 2)
	cancelled := make(chan error, 1)
	s, addr := startFront(t, func(r *http.Request) *http.Response {
		entered <- r
		if r.URL.Path == "/wait" {
			select {
			case <-r.Context().Done():
				cancelled <- r.Context().Err()
			case <-time.After(10 * time.Second):
				cancelled <- nil
			}
		}
		return okResponse(r)
	}, nil)
	if resp, _ := get(t, addr, "GET /first HTTP/1.1\r\nHost: h\r\n\r\n"); resp.StatusCode != 200 {
		t.Fatalf("first request: %d", resp.StatusCode)
	}
	first := <-entered
	if first.Context().Err() != nil {
		t.Fatalf("a request's context is done before Close: %v", first.Context().Err())
	}
	send(t, addr, "GET /wait HTTP/1.1\r\nHost: h\r\n\r\n")
	second := <-entered
	if second == first {
		t.Error("two requests were handed the same *http.Request")
	}
	s.Close()
	if err := <-cancelled; err != context.Canceled {
		t.Errorf("the request's context after Close: %v, want context.Canceled", err)
	}
}
