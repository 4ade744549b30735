package deliver

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/postern/postern/proxy/config"
	"github.com/postern/postern/rewrite"
	"github.com/postern/postern/trust"
	"github.com/postern/postern/trust/trusttest"
)

// rawProvider is a TLS server on loopback that reads each request with
// net/http's parser and answers with whatever bytes reply returns: the
// wire format as a provider (or something in between) might send it.
type rawProvider struct {
	url     string
	roots   *trust.Roots
	accepts atomic.Int32 // connections accepted

	mu   sync.Mutex
	reqs []seenRequest
}

// maxRequestsPerConn bounds the requests the raw provider reads on one
// connection.
const maxRequestsPerConn = 1000

type seenRequest struct {
	head string // request line and headers, as received
	body string
}

func newRawProvider(t *testing.T, reply func(n int) string) *rawProvider {
	t.Helper()
	ca := trusttest.NewCA(t)
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{ca.Leaf(t, trusttest.LeafOptions{})}})
	if err != nil {
		t.Fatal(err)
	}
	roots, err := trust.LoadRoots([]string{ca.WritePEM(t, t.TempDir())})
	if err != nil {
		t.Fatal(err)
	}
	p := &rawProvider{url: "https://" + ln.Addr().String(), roots: roots}
	var wg sync.WaitGroup
	var conns sync.Map // open connections, closed at the end
	t.Cleanup(func() {
		ln.Close()
		conns.Range(func(c, _ any) bool { c.(net.Conn).Close(); return true })
		wg.Wait()
	})
	var served atomic.Int32
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			p.accepts.Add(1)
			conns.Store(c, true)
			wg.Go(func() {
				defer c.Close()
				c.SetDeadline(time.Now().Add(10 * time.Second))
				br := bufio.NewReader(c)
				// Bounded, but above any test's request count: a provider
				// that drops a kept-alive connection just after a reply
				// races the client's next request on it, an outcome no
				// client can know (TestPreparedPostSendsWhatBuildSays sends
				// 24 requests over one connection).
				for range maxRequestsPerConn {
					var head strings.Builder
					tee := bufio.NewReader(io.TeeReader(br, &head))
					req, err := http.ReadRequest(tee)
					if err != nil {
						return
					}
					body, _ := io.ReadAll(req.Body)
					h, _, _ := strings.Cut(head.String(), "\r\n\r\n")
					p.mu.Lock()
					p.reqs = append(p.reqs, seenRequest{head: h, body: string(body)})
					p.mu.Unlock()
					out := reply(int(served.Add(1)) - 1)
					if out == "" { // close without replying
						return
					}
					// A reply ending in "\x00close" is sent without that
					// mark, and the connection closed after it.
					out, closeAfter := strings.CutSuffix(out, "\x00close")
					if _, err := io.WriteString(c, out); err != nil || closeAfter {
						return
					}
				}
			})
		}
	})
	return p
}

// post sends one small JSON POST through c.
func (p *rawProvider) post(t *testing.T, c *FastClient) (Reply, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.url+"/v1/message?x=1", strings.NewReader(`{"messages":[]}`))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer tok")
	return c.Exchange(ctx, req)
}

// TestFastClientWritesHTTP11: the request the provider reads is plain
// HTTP/1.1 with exactly the provider request's headers, its Host and the
// body's length — nothing added (no User-Agent), nothing lost.
func TestFastClientWritesHTTP11(t *testing.T) {
	p := newRawProvider(t, func(int) string { return "HTTP/1.1 202 Accepted\r\nContent-Length: 2\r\n\r\n{}" })
	c := NewFastClient(trust.NewDialer(p.roots), nil)
	for range 2 {
		rep, err := p.post(t, c)
		if err != nil || rep.Status != 202 || string(rep.Body) != "{}" {
			t.Fatalf("reply %d %q, err %v", rep.Status, rep.Body, err)
		}
	}
	if n := p.accepts.Load(); n != 1 {
		t.Errorf("%d connections for two requests, want one kept alive", n)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	host := strings.TrimPrefix(p.url, "https://")
	for _, r := range p.reqs {
		lines := strings.Split(r.head, "\r\n")
		if lines[0] != "POST /v1/message?x=1 HTTP/1.1" {
			t.Errorf("request line %q", lines[0])
		}
		got := map[string]bool{}
		for _, l := range lines[1:] {
			got[l] = true
		}
		want := []string{"Host: " + host, "Content-Type: application/json", "Authorization: Bearer tok", "Content-Length: 15"}
		for _, w := range want {
			if !got[w] {
				t.Errorf("header %q missing from %q", w, r.head)
			}
		}
		if len(got) != len(want) {
			t.Errorf("headers %q, want exactly %q", lines[1:], want)
		}
		if r.body != `{"messages":[]}` {
			t.Errorf("body %q", r.body)
		}
	}
}

// TestFastClientReplies: every shape of reply a provider or a box in
// between may send is read as net/http's client reads it, the bounds on
// headers and body hold, and a connection is kept for the next request only
// when it is known to be at the start of the next reply.
func TestFastClientReplies(t *testing.T) {
	long := strings.Repeat("a", 12<<10) // longer than the read buffer, within the bound
	for _, tc := range []struct {
		name    string
		reply   string
		status  int
		body    string
		header  [2]string // a header the reply must carry
		bodyErr error     // wanted Reply.BodyErr (errors.Is), or nil
		err     string    // wanted error text, or "" for a reply
		reused  bool      // the second request went over the same connection
	}{
		{name: "content-length", reply: "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 7\r\n\r\n{\"a\":1}",
			status: 200, body: `{"a":1}`, header: [2]string{"Content-Type", "application/json"}, reused: true},
		{name: "chunked with a trailer", reply: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\n{\"a\r\n4\r\n\":1}\r\n0\r\nX-Trailer: t\r\n\r\n",
			status: 200, body: `{"a":1}`, reused: true},
		{name: "a header longer than the read buffer", reply: "HTTP/1.1 200 OK\r\nX-Long: " + long + "\r\nContent-Length: 2\r\n\r\n{}",
			status: 200, body: "{}", header: [2]string{"X-Long", long}, reused: true},
		{name: "interim 100 Continue first", reply: "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\n{}",
			status: 201, body: "{}", reused: true},
		{name: "204 without a body", reply: "HTTP/1.1 204 No Content\r\n\r\n", status: 204, reused: true},
		{name: "the provider closes after it", reply: "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\n{}",
			status: 200, body: "{}"},
		{name: "HTTP/1.0", reply: "HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\n{}", status: 200, body: "{}"},
		{name: "body to the end of the connection", reply: "HTTP/1.1 200 OK\r\n\r\n{}\x00close", status: 200, body: "{}"},
		{name: "bytes nobody asked for after it", reply: "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}HTTP/1.1 200 OK\r\n", status: 200, body: "{}"},
		{name: "headers over 16 KiB", reply: "HTTP/1.1 200 OK\r\nX-Long: " + strings.Repeat("a", 17<<10) + "\r\nContent-Length: 2\r\n\r\n{}",
			err: "malformed HTTP response: reply headers larger than 16 KiB"},
		{name: "body over 1 MiB", reply: fmt.Sprintf("HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n", maxProviderReply+1) + strings.Repeat("a", maxProviderReply+1),
			status: 200, bodyErr: errReplyTooLarge},
		{name: "chunked body over 1 MiB", reply: fmt.Sprintf("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n%x\r\n%s\r\n0\r\n\r\n", maxProviderReply+1, strings.Repeat("a", maxProviderReply+1)),
			status: 200, bodyErr: errReplyTooLarge},
		{name: "truncated body", reply: "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n{}\x00close", status: 200, bodyErr: io.ErrUnexpectedEOF},
		{name: "differing Content-Lengths", reply: "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}",
			err: "malformed HTTP response"},
		{name: "not HTTP", reply: "SSH-2.0-OpenSSH\r\n\r\n", err: "malformed HTTP response"},
		{name: "closed without replying", reply: "", err: "the provider closed the connection before replying"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := newRawProvider(t, func(int) string { return tc.reply })
			c := NewFastClient(trust.NewDialer(p.roots), nil)
			rep, err := p.post(t, c)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) || !rep.Wrote {
					t.Fatalf("err %v, wrote %v; want %q after writing", err, rep.Wrote, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatalf("exchange: %v", err)
			}
			if tc.bodyErr != nil {
				if !errors.Is(rep.BodyErr, tc.bodyErr) || rep.Status != tc.status {
					t.Fatalf("status %d body error %v, want %d %v", rep.Status, rep.BodyErr, tc.status, tc.bodyErr)
				}
				return
			}
			if rep.Status != tc.status || rep.BodyErr != nil || string(rep.Body) != tc.body {
				t.Fatalf("reply %d %q %v, want %d %q", rep.Status, rep.Body, rep.BodyErr, tc.status, tc.body)
			}
			if k := tc.header[0]; k != "" && rep.Header.Get(k) != tc.header[1] {
				t.Errorf("header %s = %.40q", k, rep.Header.Get(k))
			}
			if _, err := p.post(t, c); err != nil {
				t.Fatalf("second exchange: %v", err)
			}
			if reused := p.accepts.Load() == 1; reused != tc.reused {
				t.Errorf("second request reused the connection: %v, want %v", reused, tc.reused)
			}
		})
	}
}

// TestPreparedPostSendsWhatBuildSays: a Poster's request sent from its
// prepared head and the body made in place (ExchangeMessage) reaches the provider as Build's request sent
// through Exchange does — the same request line, the same headers (the
// prepared head in name order), User-Agent and Content-Length, and the same
// body byte for byte — with hostile texts, for every Poster.
func TestPreparedPostSendsWhatBuildSays(t *testing.T) {
	p := newRawProvider(t, func(int) string { return "HTTP/1.1 202 Accepted\r\nContent-Length: 2\r\n\r\n{}" })
	c := NewFastClient(trust.NewDialer(p.roots), nil)
	endpoint, err := url.Parse(p.url + "/v1/mes%2Fsage?x=1&y=%20")
	if err != nil {
		t.Fatal(err)
	}
	cfg := rewrite.Config{Token: "tok", Endpoint: endpoint, From: "+15550001111"}
	var posters []rewrite.Poster
	for _, mk := range []func() (rewrite.Provider, error){
		func() (rewrite.Provider, error) { return rewrite.NewClickatellOne(cfg) },
		func() (rewrite.Provider, error) { return rewrite.NewClickatellPlatform(cfg) },
		func() (rewrite.Provider, error) { return rewrite.NewClickatellREST(cfg) },
		func() (rewrite.Provider, error) {
			return rewrite.NewTwilio(cfg, rewrite.TwilioConfig{AccountSID: "AC0123456789abcdef0123456789abcdef"})
		},
	} {
		pr, err := mk()
		if err != nil {
			t.Fatal(err)
		}
		posters = append(posters, pr.(rewrite.Poster))
	}
	const ua = "postern/test"
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, pr := range posters {
		prep, ok := PreparePost(pr, ua)
		if !ok {
			t.Fatalf("%T: not prepared", pr)
		}
		for _, text := range []string{`Pass: "a&b" <c> 'd' \ + % # 100%`, "line1\nline2\r\n😀 مرحبا", strings.Repeat("long ", 400)} {
			m := rewrite.Message{To: []string{"15551234567"}, Text: text, Options: rewrite.Options{ClientMessageID: "id-1"}}
			body, err := pr.PostBody(m)
			if err != nil {
				t.Fatal(err)
			}
			// The body made in place is the request AppendRequest makes of
			// PostBody's, whatever the buffer held before.
			prefix := []byte("kept")
			buf, wire, err := prep.AppendMessage(prefix, pr, m)
			if err != nil || string(wire) != string(prep.AppendRequest(nil, body)) || string(buf[:4]) != "kept" || &buf[len(buf)-1] != &wire[len(wire)-1] {
				t.Fatalf("%T AppendMessage = %q, %v; want AppendRequest's %q at the end of the buffer", pr, wire, err, prep.AppendRequest(nil, body))
			}
			if rep, built, err := c.ExchangeMessage(ctx, prep, pr, m); built != nil || err != nil || rep.Status != 202 {
				t.Fatalf("%T prepared: %d %v %v", pr, rep.Status, built, err)
			}
			req, err := pr.Build(ctx, m)
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("User-Agent", ua)
			if rep, err := c.Exchange(ctx, req); err != nil || rep.Status != 202 {
				t.Fatalf("%T built: %d %v", pr, rep.Status, err)
			}
		}
	}
	// A message the poster cannot make a body of is sent nowhere.
	for _, pr := range posters {
		prep, _ := PreparePost(pr, ua)
		if _, built, err := c.ExchangeMessage(ctx, prep, pr, rewrite.Message{Text: "no recipient"}); built == nil || err != nil {
			t.Errorf("%T: a message without a recipient: built %v, err %v", pr, built, err)
		}
		if buf, wire, err := prep.AppendMessage([]byte("kept"), pr, rewrite.Message{Text: "no recipient"}); err == nil || string(buf) != "kept" || wire != nil {
			t.Errorf("%T: AppendMessage of a bad message = %q %q %v", pr, buf, wire, err)
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.reqs) != 2*3*len(posters) {
		t.Fatalf("%d requests received", len(p.reqs))
	}
	for i := 0; i < len(p.reqs); i += 2 {
		prepared, built := p.reqs[i], p.reqs[i+1]
		if prepared.body != built.body {
			t.Errorf("request %d: prepared body %q, built %q", i, prepared.body, built.body)
		}
		pl, bl := strings.Split(prepared.head, "\r\n"), strings.Split(built.head, "\r\n")
		if pl[0] != bl[0] || !strings.HasPrefix(pl[0], "POST /v1/mes%2Fsage?x=1&y=%20 HTTP/1.1") {
			t.Errorf("request line %q, built %q", pl[0], bl[0])
		}
		names := func(lines []string) []string {
			var out []string
			for _, l := range lines {
				name, _, _ := strings.Cut(l, ":")
				out = append(out, name)
			}
			return out
		}
		// Host first, then the headers in name order, then the length.
		fields := pl[1:]
		if n := names(fields); n[0] != "Host" || n[len(n)-1] != "Content-Length" || !slices.IsSorted(n[1:len(n)-1]) {
			t.Errorf("prepared head's header order %q", n)
		}
		slices.Sort(pl[1:])
		slices.Sort(bl[1:])
		if !slices.Equal(pl, bl) {
			t.Errorf("prepared head\n%q\nbuilt\n%q", pl, bl)
		}
		if !slices.Contains(pl, "User-Agent: "+ua) {
			t.Errorf("no User-Agent in %q", pl)
		}
	}
}

// TestDelivererSendsPostersPrepared: a route whose provider is a Poster
// goes out prepared over the HTTP/1.1 pool; a template route, an HTTP/2
// route and a route without the pool go through Build.
func TestDelivererSendsPostersPrepared(t *testing.T) {
	cfg, err := config.Load("t.toml", []byte(`
[[route]]
name = "one"
match_path = "/one"
inbound = "clickatell-http"
provider = "clickatell-one"
endpoint = "https://one.invalid/v1/message"
token = "k"

[[route]]
name = "h2"
match_path = "/h2"
inbound = "clickatell-http"
provider = "clickatell-one"
endpoint = "https://one.invalid/v1/message"
token = "k"
upstream_http2 = true

[[route]]
name = "tpl"
match_path = "/tpl"
inbound = "clickatell-http"
provider = "template"
endpoint = "https://gw.invalid/send"
token = "k"
auth = "bearer"
id_pointer = "/id"
body = { to = "{{.To}}", text = "{{.Text}}" }
`), config.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	prepared := func(d *Deliverer) map[string]bool {
		out := map[string]bool{}
		for r, s := range d.senders {
			out[r.Name] = s.(*httpSender).post != nil
		}
		return out
	}
	roots, err := trust.LoadRoots(nil)
	if err != nil {
		t.Fatal(err)
	}
	withPool := New(cfg, Options{Client: NewFastClient(trust.NewDialer(roots), nil), UserAgent: "postern/test"})
	if got := prepared(withPool); !got["one"] || got["h2"] || got["tpl"] {
		t.Errorf("prepared with the pool: %v, want only route one", got)
	}
	without := New(cfg, Options{})
	if got := prepared(without); got["one"] || got["h2"] || got["tpl"] {
		t.Errorf("prepared without the pool: %v, want none", got)
	}
}

// TestReplyTookIsTheExchange: Reply.Took, the upstream latency postern
// reports, spans the provider's time to answer, on a new connection and on
// a pooled one, and no more than the call itself.
func TestReplyTookIsTheExchange(t *testing.T) {
	const answerAfter = 60 * time.Millisecond
	p := newRawProvider(t, func(int) string {
		time.Sleep(answerAfter)
		return "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}"
	})
	c := NewFastClient(trust.NewDialer(p.roots), nil)
	for _, conn := range []string{"dialled", "pooled"} {
		req, _ := http.NewRequest(http.MethodPost, p.url+"/v1/message", strings.NewReader(`{}`))
		start := time.Now()
		rep, err := c.Exchange(context.Background(), req)
		call := time.Since(start)
		if err != nil || rep.Status != http.StatusOK {
			t.Fatalf("%s: status %d, err %v", conn, rep.Status, err)
		}
		if rep.Took < answerAfter || rep.Took > call {
			t.Errorf("%s: took %v; want at least the provider's %v and at most the call's %v", conn, rep.Took, answerAfter, call)
		}
	}
	if n := p.accepts.Load(); n != 1 {
		t.Errorf("%d connections, want the second exchange on the first's", n)
	}
}

// TestCutOffInterruptsABlockedExchange: a request the provider never
// answers is interrupted at once when the client's cut-off ends before the
// request's deadline (the shutdown cut-off, from which a send's context
// descends), and is reported as written, the context's end named; the
// connection is not reused. A request after the cut-off writes nothing.
func TestCutOffInterruptsABlockedExchange(t *testing.T) {
	p := newRawProvider(t, func(int) string {
		time.Sleep(3 * time.Second) // never in time
		return ""
	})
	cutoff, cut := context.WithCancel(context.Background())
	c := NewFastClient(trust.NewDialer(p.roots), cutoff)
	ctx, cancel := context.WithTimeout(cutoff, time.Hour)
	defer cancel()
	time.AfterFunc(100*time.Millisecond, cut)
	start := time.Now()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.url+"/v1/message", strings.NewReader(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	rep, err := c.Exchange(ctx, req)
	if err == nil || !errors.Is(err, context.Canceled) || !rep.Wrote {
		t.Errorf("err %v, wrote %v; want the cancellation after writing", err, rep.Wrote)
	}
	if took := time.Since(start); took > 2*time.Second { // the cut-off comes after 0.1 s, the reply after 3 s
		t.Errorf("interrupted after %v, not at the cut-off", took)
	}
	// A connection of the client's, dialled with a context of its own
	// (not the cut-off's child), is cut off as well: the watch is the
	// client's, per connection.
	req2, _ := http.NewRequest(http.MethodPost, p.url+"/v1/message", strings.NewReader(`{}`))
	rep, err = c.Exchange(context.Background(), req2)
	if err == nil || rep.Wrote {
		t.Errorf("after the cut-off: err %v, wrote %v; want nothing written", err, rep.Wrote)
	}
}

// TestDeadlineInterruptsABlockedExchange: without a cut-off, a request the
// provider never answers ends at its context's deadline, as a timeout
// after writing.
func TestDeadlineInterruptsABlockedExchange(t *testing.T) {
	p := newRawProvider(t, func(int) string {
		time.Sleep(3 * time.Second) // never in time
		return ""
	})
	c := NewFastClient(trust.NewDialer(p.roots), nil)
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Millisecond)
	defer cancel()
	start := time.Now()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, p.url+"/v1/message", strings.NewReader(`{}`))
	rep, err := c.Exchange(ctx, req)
	var te interface{ Timeout() bool }
	if err == nil || !errors.As(err, &te) || !te.Timeout() || !rep.Wrote {
		t.Errorf("err %v, wrote %v; want a timeout after writing", err, rep.Wrote)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("interrupted after %v, not at the deadline", took)
	}
}

// TestBusyConnectionDeadlineStillBoundsAStall: messages back to back on
// one connection keep its deadlines (deadline.Keep), and a message the
// provider then never answers still ends at its own deadline, as a timeout
// after writing on the same connection: not later than it (the stall
// lasts 3 s), and not before three quarters of it.
func TestBusyConnectionDeadlineStillBoundsAStall(t *testing.T) {
	const timeout = 800 * time.Millisecond
	const quick = 20
	p := newRawProvider(t, func(n int) string {
		if n == quick {
			time.Sleep(3 * time.Second)
			return ""
		}
		return "HTTP/1.1 202 Accepted\r\nContent-Length: 2\r\n\r\n{}"
	})
	c := NewFastClient(trust.NewDialer(p.roots), nil)
	send := func() (Reply, time.Duration, error) {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		start := time.Now()
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, p.url+"/v1/message", strings.NewReader(`{}`))
		rep, err := c.Exchange(ctx, req)
		return rep, time.Since(start), err
	}
	for i := range quick {
		if rep, _, err := send(); err != nil || rep.Status != http.StatusAccepted {
			t.Fatalf("message %d: %d %v", i, rep.Status, err)
		}
		time.Sleep(10 * time.Millisecond) // within the slack of the deadline before
	}
	rep, took, err := send()
	var te interface{ Timeout() bool }
	if err == nil || !errors.As(err, &te) || !te.Timeout() || !rep.Wrote {
		t.Fatalf("stalled message: err %v, wrote %v; want a timeout after writing", err, rep.Wrote)
	}
	if took < timeout*3/4 || took > 2500*time.Millisecond {
		t.Errorf("stalled message ended after %v; its deadline was %v away", took, timeout)
	}
	if n := p.accepts.Load(); n != 1 {
		t.Errorf("%d connections; want every message on the one", n)
	}
}
