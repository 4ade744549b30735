package deliver

import (
	"bufio"
	"bytes"
	"io"
	"net/http"
	"reflect"
	"strings"
	"testing"

	"golang.org/x/net/http/httpguts"
)

// seedReplies are replies as providers and the boxes between send them,
// and near misses of the plain shape.
var seedReplies = []struct {
	reply string
	plain bool // the fast path takes it
}{
	{"HTTP/1.1 202 Accepted\r\nContent-Type: application/json\r\nDate: Thu, 03 Dec 2026 15:00:00 GMT\r\nContent-Length: 2\r\n\r\n{}", true},
	{"HTTP/1.1 200 OK\r\nServer: nginx\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: 7\r\nConnection: keep-alive\r\nX-Request-Id: abc\r\n\r\n{\"a\":1}", true},
	{"HTTP/1.1 429 Too Many Requests\r\nRetry-After: 30\r\nContent-Length: 0\r\n\r\n", true},
	{"HTTP/1.1 503 Service Unavailable\r\nretry-after: 5\r\ncontent-length: 2\r\nconnection: Close\r\n\r\n{}", true},
	{"HTTP/1.1 200\r\nContent-Length: 2\r\n\r\n{}", true},
	{"HTTP/1.1 200 OK\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\nX-Empty:\r\nX-Tab:\tv\t\r\nContent-Length: 2\r\n\r\n{}extra", true},
	{"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\n{}", false},
	{"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}", false},
	{"HTTP/1.1 200 OK\r\nContent-Length: +2\r\n\r\n{}", false},
	{"HTTP/1.1 200 OK\r\nContent-Length:  2 \r\n\r\n{}", true},
	{"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 2\r\n\r\n2\r\n{}\r\n0\r\n\r\n", false},
	{"HTTP/1.1 200 OK\r\nX-A: 1\r\n folded\r\nContent-Length: 2\r\n\r\n{}", false},
	{"HTTP/1.1 200 OK\r\nX A: 1\r\nContent-Length: 2\r\n\r\n{}", false},
	{"HTTP/1.1 200 OK\r\nX-A : 1\r\nContent-Length: 2\r\n\r\n{}", false},
	{"HTTP/1.1 200 OK\r\nX-A: a\x00b\r\nContent-Length: 2\r\n\r\n{}", false},
	{"HTTP/1.1 200 OK\r\nX-A: caf\xc3\xa9\r\nContent-Length: 2\r\n\r\n{}", true},
	{"HTTP/1.1 204 No Content\r\nContent-Length: 2\r\n\r\n", false},
	{"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}", false},
	{"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\n{}", false},
	{"HTTP/1.1 200 OK\r\n\r\n{}", false},
	{"HTTP/1.1 2000 OK\r\nContent-Length: 2\r\n\r\n{}", false},
	{"HTTP/1.1 20x OK\r\nContent-Length: 2\r\n\r\n{}", false},
	{"HTTP/1.1 200 OK\nContent-Length: 2\n\n{}", false},
	{"HTTP/1.1 200 OK\r\nConnection: keep-alive, close\r\nContent-Length: 2\r\n\r\n{}", true},
}

// FuzzPlainHeadReadsAsNetHTTP: every reply head parsePlainHead takes,
// net/http's parser takes too and reads the same way — status, headers,
// length, whether the connection closes, the body. So the fast path never
// reads a reply net/http would have refused or read differently. The seeds
// run in every test run.
func FuzzPlainHeadReadsAsNetHTTP(f *testing.F) {
	for _, s := range seedReplies {
		f.Add([]byte(s.reply))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		h, ok := parsePlainHead(data, keepAll)
		if !ok {
			if _, postTakes := parsePlainHead(data, wantHeader); postTakes {
				t.Fatalf("taken without its headers only: %q", data)
			}
			return
		}
		// ExchangePost's reading (headers kept only when not 2xx) is the
		// same reading.
		d, ok := parsePlainHead(data, wantHeader)
		kept := h.header
		if !wantHeader(h.status) {
			kept = nil
		}
		if !ok || d.len != h.len || d.status != h.status || d.contentLength != h.contentLength || d.close != h.close ||
			!reflect.DeepEqual(d.header, kept) {
			t.Fatalf("ExchangePost reads %q as %+v, Exchange as %+v", data, d, h)
		}
		if !bytes.Equal(data[h.len-4:h.len], []byte("\r\n\r\n")) {
			t.Fatalf("head of %d bytes does not end with the blank line: %q", h.len, data)
		}
		resp, err := http.ReadResponse(bufio.NewReader(bytes.NewReader(data)), nil)
		if err != nil {
			t.Fatalf("the fast path takes %q, net/http does not: %v", data, err)
		}
		body, bodyErr := io.ReadAll(resp.Body)
		checks := []struct {
			what      string
			got, want any
		}{
			{"status", h.status, resp.StatusCode},
			{"header", h.header, resp.Header},
			{"ContentLength", h.contentLength, resp.ContentLength},
			{"Close", h.close, resp.Close},
		}
		for _, c := range checks {
			if !reflect.DeepEqual(c.got, c.want) {
				t.Errorf("%s: fast path %#v, net/http %#v (reply %q)", c.what, c.got, c.want, data)
			}
		}
		rest := data[h.len:]
		if int64(len(rest)) >= h.contentLength {
			if bodyErr != nil || !bytes.Equal(body, rest[:h.contentLength]) {
				t.Errorf("body: fast path %q, net/http %q %v", rest[:h.contentLength], body, bodyErr)
			}
		}
	})
}

// TestPlainHeadTakesTheUsualReplies: the replies providers send are read
// by the fast path; the odd ones are left to net/http.
func TestPlainHeadTakesTheUsualReplies(t *testing.T) {
	for _, s := range seedReplies {
		if _, ok := parsePlainHead([]byte(s.reply), keepAll); ok != s.plain {
			t.Errorf("%q: fast path %v, want %v", s.reply, ok, s.plain)
		}
	}
}

// BenchmarkReplyHead reads a provider's usual reply, head and body, with
// the fast path (keeping its headers as Exchange does, or not as
// ExchangePost does for a 2xx) and with net/http's parser:
//
//	go test -run='^$' -bench=ReplyHead -benchmem ./proxy/deliver/
func BenchmarkReplyHead(b *testing.B) {
	reply := []byte(seedReplies[1].reply)
	for name, keep := range map[string]func(int) bool{"plain": keepAll, "plain-post": wantHeader} {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				h, ok := parsePlainHead(reply, keep)
				if !ok {
					b.Fatal("not plain")
				}
				body := make([]byte, h.contentLength)
				copy(body, reply[h.len:])
			}
		})
	}
	b.Run("net/http", func(b *testing.B) {
		b.ReportAllocs()
		br := bufio.NewReader(nil)
		for b.Loop() {
			br.Reset(bytes.NewReader(reply))
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := readBody(resp); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// TestFramingHeaderIsCanonicalHeaderKey: framingHeader names a header
// exactly when net/http's canonical form of it is one of the four that
// frame a reply, for every spelling of those names in any case and every
// one-byte change to them.
func TestFramingHeaderIsCanonicalHeaderKey(t *testing.T) {
	framing := map[string]bool{"Content-Length": true, "Transfer-Encoding": true, "Trailer": true, "Connection": true}
	check := func(name string) {
		want := ""
		if c := http.CanonicalHeaderKey(name); framing[c] && httpguts.ValidHeaderFieldName(name) {
			want = c
		}
		if !httpguts.ValidHeaderFieldName(name) {
			return // parsePlainHead refuses it before asking
		}
		if got := framingHeader(name); got != want {
			t.Errorf("framingHeader(%q) = %q, want %q", name, got, want)
		}
	}
	for name := range framing {
		for _, n := range []string{name, strings.ToLower(name), strings.ToUpper(name), "X-" + name, name[1:], name + "s"} {
			check(n)
		}
		for i := range len(name) {
			for c := range 256 {
				b := []byte(name)
				b[i] = byte(c)
				check(string(b))
			}
		}
	}
	check("Date")
	check("Content-Type")
}
