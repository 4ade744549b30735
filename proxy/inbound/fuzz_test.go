package inbound

import (
	"bytes"
	"io"
	"net"
	"net/http"
	"reflect"
	"testing"
	"time"
)

// seedRequests are requests the front takes (ISE's, a Go client's, a POST
// form) and requests it must hand off; the fuzzer starts from them.
var seedRequests = []string{
	"GET /http/sendmsg?user=ise&password=pw&api_id=1&to=41791234567&text=Hello+world HTTP/1.1\r\nHost: postern.example:8080\r\nUser-Agent: Java/1.8\r\nAccept: */*\r\n\r\n",
	"GET http://api.clickatell.com/http/sendmsg?to=1&text=x HTTP/1.1\r\nHost: api.clickatell.com\r\nProxy-Authorization: Basic aXNlOnB3\r\nConnection: keep-alive\r\n\r\n",
	"GET /a HTTP/1.1\r\nHost: 127.0.0.1:1\r\nUser-Agent: Go-http-client/1.1\r\nAccept-Encoding: gzip\r\n\r\n",
	"POST /sms HTTP/1.1\r\nHost: h\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 11\r\n\r\nto=1&text=x",
	"GET /a HTTP/1.1\r\nHost: h\r\nConnection: close\r\nPragma: no-cache\r\n\r\n",
	"GET /a%20b?q=%E2%82%AC HTTP/1.1\r\nhost: [::1]:80\r\nx-a: 1\r\nX-A: 2\r\n\r\n",
	// Handed off: each is net/http's to decide.
	"POST /a HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd",
	"POST /a HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
	"GET /a HTTP/1.1\r\nHost: h\r\nX: a\r\n b\r\n\r\n",
	"GET /a HTTP/1.1\r\nHost: h\r\nX: a\x00b\r\n\r\n",
	"GET /a HTTP/1.1\nHost: h\n\n",
	"GET /a HTTP/1.0\r\nHost: h\r\n\r\n",
	"CONNECT h:443 HTTP/1.1\r\nHost: h:443\r\n\r\n",
	"GET /a HTTP/1.1\r\nHost: h\r\nHost: i\r\n\r\n",
	"GET /a HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\n\r\n",
	"GET /a HTTP/1.1\r\nHost : h\r\n\r\n",
	"GET /a HTTP/1.1\r\nHost: h\r\nContent-Length: +3\r\n\r\nabc",
	"GET https://h/a HTTP/1.1\r\nHost: h\r\n\r\n",
}

var fuzzLimits = Limits{MaxURLBytes: 8 << 10, MaxBodyBytes: 64 << 10}

// FuzzParseAgreesWithNetHTTP: whatever the front takes, net/http's own
// server takes too, and reads as the same request — method, URL, Host,
// headers, body, keep-alive. So the front never answers a request net/http
// would have refused or read differently. The seeds run in every test run.
func FuzzParseAgreesWithNetHTTP(f *testing.F) {
	for _, s := range seedRequests {
		f.Add([]byte(s))
	}
	oracle := newOracle(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		n := headEnd(data)
		if n < 0 {
			return
		}
		h, ok := parseHead(data[:n], fuzzLimits, nil, nil)
		if !ok || len(data)-n < h.contentLength {
			return // handed off
		}
		body := data[n : n+h.contentLength]
		got, err := oracle.read(data[:n+h.contentLength])
		if err != nil {
			t.Fatalf("the front takes %q, net/http does not: %v", data, err)
		}
		want := h.req
		checks := []struct {
			what      string
			got, want any
		}{
			{"method", got.Method, want.Method},
			{"URL", got.URL, want.URL},
			{"Host", got.Host, want.Host},
			{"RequestURI", got.RequestURI, want.RequestURI},
			{"header", got.Header, want.Header},
			{"ContentLength", got.ContentLength, want.ContentLength},
			{"Close", got.Close, want.Close},
			{"Proto", got.Proto, want.Proto},
			{"body", got.body, body},
		}
		for _, c := range checks {
			if !reflect.DeepEqual(c.got, c.want) {
				t.Errorf("%q: %s: net/http %#v, front %#v", data, c.what, c.got, c.want)
			}
		}
	})
}

// oracle is a real net/http server: each request is written to it over a
// pipe, and its handler reports what it read.
type oracle struct {
	h    *Handoff
	seen chan seenRequest
}

type seenRequest struct {
	*http.Request
	body []byte
}

func newOracle(tb testing.TB) *oracle {
	o := &oracle{h: NewHandoff(&net.TCPAddr{}), seen: make(chan seenRequest, 1)}
	hs := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			body, _ := io.ReadAll(r.Body)
			o.seen <- seenRequest{Request: r, body: body}
		}),
		MaxHeaderBytes: 32 << 10,
		ErrorLog:       nil,
	}
	go hs.Serve(o.h)
	tb.Cleanup(func() { hs.Close() })
	return o
}

func (o *oracle) read(req []byte) (seenRequest, error) {
	client, server := net.Pipe()
	defer client.Close()
	if !o.h.put(server) {
		return seenRequest{}, net.ErrClosed
	}
	go func() {
		client.Write(req)
	}()
	reply := make(chan []byte, 1)
	go func() {
		b, _ := io.ReadAll(client)
		reply <- b
	}()
	select {
	case r := <-o.seen:
		if r.body == nil {
			r.body = []byte{}
		}
		return r, nil
	case <-time.After(2 * time.Second):
		client.Close()
		return seenRequest{}, &refusedError{<-reply}
	}
}

type refusedError struct{ reply []byte }

func (e *refusedError) Error() string {
	if len(e.reply) == 0 {
		return "no reply"
	}
	return "replied " + string(bytes.SplitN(e.reply, []byte("\r\n"), 2)[0])
}
