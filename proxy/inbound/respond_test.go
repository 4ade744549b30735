package inbound

import (
	"bufio"
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestAppendResponseWritesWhatNetHTTPWrites: for every shape of reply —
// short, past net/http's 2 KiB chunking buffer, no content type, no body
// allowed, odd header values, keep-alive or not — the front's bytes are
// net/http's, but for the Date line's value.
func TestAppendResponseWritesWhatNetHTTPWrites(t *testing.T) {
	type reply struct {
		status int
		header http.Header
		body   string
	}
	replies := []reply{
		{200, http.Header{"Content-Type": {"text/plain; charset=utf-8"}, "Cache-Control": {"no-store"}, "X-Content-Type-Options": {"nosniff"}}, "ID: abc\n"},
		{407, http.Header{"Content-Type": {"text/plain"}, "Proxy-Authenticate": {`Basic realm="postern"`}}, "ERR: 001, Authentication failed\n"},
		{200, http.Header{"Content-Type": {"text/plain"}}, strings.Repeat("ID: x\n", 600)},
		{200, http.Header{}, "<html>hi</html>"},
		{200, http.Header{"Content-Type": {"text/plain"}}, ""},
		{204, http.Header{"Content-Type": {"text/plain"}}, ""},
		{299, http.Header{"X-Odd": {" a\r\nb "}}, "x"},
	}
	var current reply
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for k, v := range current.header {
			w.Header()[k] = v
		}
		w.WriteHeader(current.status)
		// As proxy/handler.go's servePipeline and goproxy copy a body
		// made by goproxy.NewResponse.
		io.Copy(w, io.NopCloser(bytes.NewBufferString(current.body)))
	}))
	defer srv.Close()
	date := regexp.MustCompile(`\r\nDate: [^\r]*\r\n`)
	for _, keep := range []bool{true, false} {
		for _, r := range replies {
			current = r
			req := "GET / HTTP/1.1\r\nHost: h\r\n\r\n"
			if !keep {
				req = "GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n"
			}
			want := rawReply(t, srv.Listener.Addr().String(), req)
			got := string(appendResponse(nil, r.status, r.header, []byte(r.body), keep, nil))
			if date.ReplaceAllString(got, "\r\nDate: -\r\n") != date.ReplaceAllString(want, "\r\nDate: -\r\n") {
				t.Errorf("status %d, keep %v:\nfront   %.300q\nnet/http %.300q", r.status, keep, got, want)
			}
		}
	}
}

// rawReply sends req and returns the bytes of the one reply.
func rawReply(t *testing.T, addr, req string) string {
	t.Helper()
	conn := send(t, addr, req)
	defer conn.Close()
	var raw strings.Builder
	resp, err := http.ReadResponse(bufio.NewReader(io.TeeReader(conn, &raw)), nil)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	return raw.String()
}

// TestDateCacheIsNetHTTPsDate: the Date the front writes is net/http's
// format of the current second, formatted once for the second.
func TestDateCacheIsNetHTTPsDate(t *testing.T) {
	var d dateCache
	for range 3 {
		before := time.Now().UTC().Format(http.TimeFormat)
		got := string(d.now())
		after := time.Now().UTC().Format(http.TimeFormat)
		if got != before && got != after {
			t.Fatalf("Date %q, want %q or %q", got, before, after)
		}
		time.Sleep(600 * time.Millisecond)
	}
	t0 := time.Now()
	a, b := d.now(), d.now()
	if time.Now().Unix() == t0.Unix() && &a[0] != &b[0] {
		t.Errorf("formatted twice in one second")
	}
}
