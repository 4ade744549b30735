package inbound

import (
	"errors"
	"net"
	"reflect"
	"strings"
	"testing"
	"time"
)

// TestParseHeadTakesOnlyTheSubset: ISE's requests are the front's; every
// smuggling and parsing case the suites check end to end (proxy/*_test.go)
// is handed off, so net/http decides it as before.
func TestParseHeadTakesOnlyTheSubset(t *testing.T) {
	for i, s := range seedRequests {
		n := headEnd([]byte(s))
		_, ok := parseHead([]byte(s)[:max(n, 0)], fuzzLimits, nil, nil)
		if want := i < 6; n < 0 || ok != want {
			t.Errorf("%q: taken %v (head end %d), want %v", s, ok, n, want)
		}
	}
	for _, s := range []string{
		"GET /a HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\n",
		"GET /a HTTP/1.1\r\nHost: h\r\nTransfer-Encoding : chunked\r\n\r\n",
		"GET /a HTTP/1.1\r\n\r\n",
		"GET /a HTTP/1.1\r\nHost:\r\n\r\n",
		"GET /a HTTP/1.1\r\nHost: h\r\nX: \x7f\r\n\r\n",
		"GET /a HTTP/1.1\r\nHost: h\r\nX: caf\xc3\xa9\r\n\r\n",
		"GET /a b HTTP/1.1\r\nHost: h\r\n\r\n",
		"GET /a  HTTP/1.1\r\nHost: h\r\n\r\n",
		"get /a HTTP/1.1\r\nHost: h\r\n\r\n",
		"HEAD /a HTTP/1.1\r\nHost: h\r\n\r\n",
		"GET /a#f HTTP/1.1\r\nHost: h\r\n\r\n",
		"GET http://u:p@h/a HTTP/1.1\r\nHost: h\r\n\r\n",
		"GET http:///a HTTP/1.1\r\nHost: h\r\n\r\n",
		"GET /a HTTP/1.1\r\nHost: h\r\nConnection: upgrade\r\n\r\n",
		"GET /a HTTP/1.1\r\nHost: h\r\nContent-Length: 1000000\r\n\r\n",
		"GET /" + strings.Repeat("a", 9000) + " HTTP/1.1\r\nHost: h\r\n\r\n",
		"GET /a HTTP/1.1\r\nHost: h\r\nX: a\r\n\r",
	} {
		if _, ok := parseHead([]byte(s), fuzzLimits, nil, nil); ok {
			t.Errorf("%q: taken, want handed off", s)
		}
	}
}

// TestParseHeadIntoARoomForgetsTheLastRequest: a connection parses each
// request into the same room; what one request had (a header, a value, a
// body length, "Connection: close") is never seen in the next, whatever
// the order, and each reads as it reads parsed alone.
func TestParseHeadIntoARoomForgetsTheLastRequest(t *testing.T) {
	taken := seedRequests[:6]
	for _, first := range taken {
		for _, second := range taken {
			var room requestRoom
			headOf := func(s string) []byte { return []byte(s)[:headEnd([]byte(s))] }
			if _, ok := parseHead(headOf(first), fuzzLimits, nil, &room); !ok {
				t.Fatalf("%q: not taken", first)
			}
			got, ok := parseHead(headOf(second), fuzzLimits, nil, &room)
			want, _ := parseHead(headOf(second), fuzzLimits, nil, nil)
			if !ok || got.req != &room.req {
				t.Fatalf("%q after %q: taken %v, in the room %v", second, first, ok, got.req == &room.req)
			}
			g, w := got.req, want.req
			if g.Method != w.Method || g.URL.String() != w.URL.String() || g.Host != w.Host || g.RequestURI != w.RequestURI ||
				g.ContentLength != w.ContentLength || g.Close != w.Close || got.contentLength != want.contentLength ||
				!reflect.DeepEqual(g.Header, w.Header) {
				t.Errorf("%q after %q:\n got %s %s host %q len %d close %v %v\nwant %s %s host %q len %d close %v %v", second, first,
					g.Method, g.URL, g.Host, g.ContentLength, g.Close, g.Header, w.Method, w.URL, w.Host, w.ContentLength, w.Close, w.Header)
			}
		}
	}
}

// TestReplayConnKeepsTheHeadDeadline: a connection handed off part-way
// through a head replays what was read first, and the fallback's first two
// read deadlines (net/http sets one per connection and one per request)
// cannot reach past the deadline the head started with.
func TestReplayConnKeepsTheHeadDeadline(t *testing.T) {
	client, server := net.Pipe()
	defer client.Close()
	rc := &replayConn{Conn: server, pending: []byte("GET /"), capUntil: time.Now().Add(-time.Second), capCalls: 2}
	go client.Write([]byte("rest"))
	buf := make([]byte, 16)
	if n, _ := rc.Read(buf); string(buf[:n]) != "GET /" {
		t.Fatalf("first read %q, want the replayed bytes", buf[:n])
	}
	rc.SetReadDeadline(time.Now().Add(time.Hour))
	rc.SetReadDeadline(time.Time{})
	if _, err := rc.Read(buf); err == nil || !isTimeout(err) {
		t.Fatalf("read after capped deadlines: %v, want a timeout", err)
	}
	rc.SetReadDeadline(time.Time{}) // the third is the fallback's own
	if n, err := rc.Read(buf); err != nil || string(buf[:n]) != "rest" {
		t.Fatalf("third deadline: read %q, %v", buf[:n], err)
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// BenchmarkParseHead parses an ISE GET as it arrives (a Java client's
// headers) into a connection's room:
//
//	go test -run='^$' -bench=ParseHead -benchmem ./proxy/inbound/
func BenchmarkParseHead(b *testing.B) {
	raw := []byte("GET /http/sendmsg?user=ise&password=pw&api_id=1&to=41791234567&text=Your+password+is+Xk7%21 HTTP/1.1\r\n" +
		"Host: postern.example:8080\r\nUser-Agent: Java/1.8.0_181\r\nAccept: text/html, image/gif, image/jpeg, *; q=.2, */*; q=.2\r\nConnection: keep-alive\r\n\r\n")
	lim := Limits{MaxURLBytes: 8192, MaxBodyBytes: 8192}
	var room requestRoom // as a connection parses its requests
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := parseHead(raw, lim, nil, &room); !ok {
			b.Fatal("not taken")
		}
	}
}

// TestParseHeadAllocationBudget: a Java client's GET, parsed into its
// connection's room, allocates only the head's string (issue 13: the
// request, URL, header map and values are the room's).
func TestParseHeadAllocationBudget(t *testing.T) {
	raw := []byte("GET /http/sendmsg?user=ise&password=pw&api_id=1&to=41791234567&text=Your+password+is+Xk7%21 HTTP/1.1\r\n" +
		"Host: postern.example:8080\r\nUser-Agent: Java/1.8.0_181\r\nAccept: text/html, image/gif, image/jpeg, *; q=.2, */*; q=.2\r\nConnection: keep-alive\r\n\r\n")
	var room requestRoom
	lim := Limits{MaxURLBytes: 8192, MaxBodyBytes: 8192}
	allocs := testing.AllocsPerRun(100, func() {
		if _, ok := parseHead(raw, lim, nil, &room); !ok {
			t.Fatal("not taken")
		}
	})
	if allocs > 1 {
		t.Errorf("parsing a GET into a room: %.1f allocations, budget 1", allocs)
	}
}
