package proxy_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// TestRequestSizeLimits: max_url_bytes and max_body_bytes answer 414 and
// 413 and send nothing.
func TestRequestSizeLimits(t *testing.T) {
	fp := newFakeProvider(t, oneAPIReply())
	p := startPostern(t, guardConfig(fp, t, "max_url_bytes = 1024\nmax_body_bytes = 2048", "", ""), env())
	long := strings.Repeat("a", 1100)
	if status, body := p.Get(t, "direct", "", "/http/sendmsg?"+legacyQuery("15551234567", long)); status != http.StatusRequestURITooLong {
		t.Errorf("long URL: got %d %q, want 414", status, body)
	}
	form := legacyQuery("15551234567", strings.Repeat("b", 2100))
	req, _ := http.NewRequest(http.MethodPost, "http://"+p.Addr+"/http/sendmsg", strings.NewReader(form))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if status, _, body := p.Do(t, req, nil); status != http.StatusRequestEntityTooLarge {
		t.Errorf("large body: got %d %q, want 413", status, body)
	}
	if len(fp.Requests()) != 0 {
		t.Errorf("provider got %d requests", len(fp.Requests()))
	}
	// Just under both limits is fine.
	if status, body := p.Get(t, "direct", "", "/http/sendmsg?"+legacyQuery("15551234567", strings.Repeat("a", 800))); status != 200 {
		t.Errorf("URL under the limit: got %d %q", status, body)
	}
}

// TestSlowlorisIsCutOff: a client that never finishes its headers is
// disconnected after header_read_timeout.
func TestSlowlorisIsCutOff(t *testing.T) {
	fp := newFakeProvider(t, oneAPIReply())
	p := startPostern(t, guardConfig(fp, t, `header_read_timeout = "200ms"`, "", ""), env())
	conn, err := net.Dial("tcp", p.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprint(conn, "GET /http/sendmsg?to=1 HTTP/1.1\r\nHost: x\r\nX-Slow: ")
	conn.SetReadDeadline(time.Now().Add(5 * time.Second)) // half the 10s default
	_, err = io.ReadAll(conn)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatal("postern kept a half-sent request open past header_read_timeout")
	}
}

// TestUpstreamConcurrencyLimit: with max_concurrent_upstream busy for
// upstream_queue_wait, the next message gets 503 and is not sent.
func TestUpstreamConcurrencyLimit(t *testing.T) {
	release := make(chan struct{})
	arrived := make(chan struct{}, 1)
	reply := oneAPIReply()
	fp := newFakeProvider(t, func(w http.ResponseWriter, r received) {
		arrived <- struct{}{}
		<-release
		reply(w, r)
	})
	p := startPostern(t, guardConfig(fp, t, "max_concurrent_upstream = 1\nupstream_queue_wait = \"50ms\"", "per_number = \"off\"", ""), env())
	first := make(chan int)
	go func() {
		resp, err := http.Get("http://" + p.Addr + "/http/sendmsg?" + legacyQuery("15551234567", "first"))
		if err != nil {
			first <- 0
			return
		}
		resp.Body.Close()
		first <- resp.StatusCode
	}()
	<-arrived
	status, body := p.Get(t, "direct", "", "/http/sendmsg?"+legacyQuery("15551234567", "second"))
	want := "ERR: 901, Too many messages in flight, message not sent\n"
	if status != http.StatusServiceUnavailable || body != want {
		t.Errorf("second message: got %d %q, want 503 %q", status, body, want)
	}
	close(release)
	if s := <-first; s != 200 {
		t.Errorf("first message: got %d, want 200", s)
	}
	if n := len(fp.Requests()); n != 1 {
		t.Errorf("provider got %d requests, want 1", n)
	}
	if p.Srv.Stats().Busy != 1 {
		t.Errorf("Busy = %d, want 1", p.Srv.Stats().Busy)
	}
}

// TestControlCharactersNeverReachHeadersOrLogs: CR, LF and NUL in every
// parameter (and in the from a client asks for) change no header the
// provider receives and never break an audit line.
func TestControlCharactersNeverReachHeadersOrLogs(t *testing.T) {
	fp := newFakeProvider(t, oneAPIReply())
	p := startPostern(t, guardConfig(fp, t, "", "per_number = \"off\"", ""), env())
	inject := "x\r\nX-Injected: 1\r\n\x00"
	for _, param := range []string{"user", "password", "api_id", "to", "text", "from", "climsgid", "callback", "concat", "mo"} {
		q := url.Values{"user": {legacyUser}, "password": {legacyPass}, "api_id": {legacyAPIID}, "to": {"15551234567"}, "text": {"hi"}}
		q.Set(param, q.Get(param)+inject)
		p.Get(t, "direct", "", "/http/sendmsg?"+q.Encode())
	}
	for _, r := range fp.Requests() {
		for k, vs := range r.Header {
			for _, v := range vs {
				if strings.ContainsAny(k+v, "\r\n\x00") || strings.EqualFold(k, "X-Injected") {
					t.Errorf("provider header %q: %q", k, v)
				}
			}
		}
		var body struct {
			Messages []map[string]string `json:"messages"`
		}
		json.Unmarshal(r.Body, &body)
		for _, m := range body.Messages {
			if strings.ContainsAny(m["from"]+m["to"], "\r\n\x00") {
				t.Errorf("control characters reached from/to: %q", m)
			}
		}
	}
	lines := strings.Split(strings.TrimSpace(p.Audit.String()), "\n")
	if len(lines) != 10 {
		t.Fatalf("audit has %d lines for 10 requests:\n%s", len(lines), p.Audit)
	}
	for _, l := range lines {
		var v map[string]any
		if err := json.Unmarshal([]byte(l), &v); err != nil {
			t.Errorf("audit line is not one JSON object: %q", l)
		}
	}
}

// TestNeverAnOpenProxy: whatever method, host, path or client, a request
// no route serves is refused and nothing goes upstream.
func TestNeverAnOpenProxy(t *testing.T) {
	fp := newFakeProvider(t, oneAPIReply())
	providerHost := strings.TrimPrefix(fp.Srv.URL, "https://")
	cfg := routeConfig(fp.CAFile(t), "clickatell", "clickatell-one", fp.URL("/v1/message"), "")
	p := startPostern(t, cfg, env())
	q := "/http/sendmsg?" + legacyQuery("15551234567", "hello")
	for _, tc := range []struct{ method, target string }{
		{"GET", "http://example.org/"},
		{"GET", "http://" + providerHost + "/v1/message"},
		{"POST", "http://" + providerHost + "/v1/message"},
		{"POST", "http://example.org/http/sendmsg"},
		{"GET", "http://evil.example" + q}, // matching path, other host: match_host is set
		{"GET", "http://127.0.0.1:1" + q},
		{"GET", "http://" + clickatellIn + "/http/sendmsg/../../admin"},
		{"GET", "http://" + clickatellIn + "/HTTP/SENDMSG?to=1&text=x"},
		{"PUT", "http://" + clickatellIn + q},
		{"DELETE", "http://" + clickatellIn + "/"},
	} {
		req, _ := http.NewRequest(tc.method, tc.target, strings.NewReader("to=15551234567&text=x"))
		status, _, body := p.Do(t, req, &url.URL{Scheme: "http", Host: p.Addr})
		if status/100 == 2 {
			t.Errorf("%s %s: got %d %q, want a refusal", tc.method, tc.target, status, body)
		}
	}
	for _, target := range []string{"example.org:443", providerHost, clickatellIn + ":443", "127.0.0.1:22"} {
		if status := p.RawConnect(t, target, ""); status != http.StatusForbidden {
			t.Errorf("CONNECT %s: got %d, want 403", target, status)
		}
	}
	if n := len(fp.Requests()); n != 0 {
		t.Errorf("provider got %d requests", n)
	}
	if n := fp.Connections(); n != 0 {
		t.Errorf("provider saw %d connections", n)
	}

	// A matching request from a client outside allow_clients.
	fp2 := newFakeProvider(t, oneAPIReply())
	p2 := startPostern(t, "[server]\nallow_clients = [\"192.0.2.1\"]\n"+routeConfig(fp2.CAFile(t), "r", "clickatell-one", fp2.URL("/v1/message"), ""), env())
	if status, _ := p2.Get(t, "proxy", clickatellIn, q); status != http.StatusForbidden {
		t.Errorf("disallowed client: got %d, want 403", status)
	}
	if status := p2.RawConnect(t, providerHost, ""); status != http.StatusForbidden {
		t.Errorf("disallowed client CONNECT: got %d, want 403", status)
	}
	if n := len(fp2.Requests()); n != 0 {
		t.Errorf("provider got %d requests from a disallowed client", n)
	}
}
