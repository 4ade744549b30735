package proxy_test

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/postern/postern/proxy"
	"github.com/postern/postern/proxy/proxytest"
	"github.com/postern/postern/trust"
)

// hostileText is the message text of the malformed requests below: it must
// appear in no log, no audit line and no reply.
const hostileText = "Your password is Zq7-HOSTILE"

// interceptPostern serves [intercept] hosts with a CA made for caHosts and
// one route for api.clickatell.com to fp.
func interceptPostern(t *testing.T, fp *fakeProvider, caHosts []string, hosts string) (*postern, *trust.InterceptCA) {
	t.Helper()
	dir := t.TempDir()
	ic, _, err := trust.LoadOrCreateInterceptCA(dir, caHosts)
	if err != nil {
		t.Fatal(err)
	}
	cfg := "[server]\ndata_dir = \"" + dir + "\"\n[intercept]\nhosts = [" + hosts + "]\n" +
		routeConfig(fp.CAFile(t), "r", "clickatell-one", fp.URL("/v1/message"), "")
	return startPosternWith(t, cfg, env(), proxy.Options{InterceptCA: ic}), ic
}

// tunnel is a raw client connection through postern's CONNECT: bytes
// written go, TLS-protected, to postern's request reader inside the tunnel.
type tunnel struct {
	*tls.Conn
	r *bufio.Reader
}

// openTunnel sends CONNECT host:443 to p over a fresh TCP connection,
// expects 200, and makes a TLS connection through it trusting only ic.
func openTunnel(t *testing.T, p *postern, ic *trust.InterceptCA, host string) *tunnel {
	t.Helper()
	raw, err := net.Dial("tcp", p.Addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { raw.Close() })
	raw.SetDeadline(time.Now().Add(30 * time.Second))
	fmt.Fprintf(raw, "CONNECT %s:443 HTTP/1.1\r\nHost: %s:443\r\n\r\n", host, host)
	br := bufio.NewReader(raw)
	resp, err := http.ReadResponse(br, &http.Request{Method: http.MethodConnect})
	if err != nil {
		t.Fatalf("reading the CONNECT reply: %v", err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("CONNECT %s: %d, want 200", host, resp.StatusCode)
	}
	roots := x509.NewCertPool()
	roots.AddCert(ic.CA().Cert())
	tc := tls.Client(&prereadConn{Conn: raw, r: br}, &tls.Config{RootCAs: roots, ServerName: host})
	if err := tc.Handshake(); err != nil {
		t.Fatalf("TLS through the tunnel: %v", err)
	}
	return &tunnel{Conn: tc, r: bufio.NewReader(tc)}
}

// prereadConn reads what a bufio.Reader already took from the connection
// first.
type prereadConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *prereadConn) Read(p []byte) (int, error) { return c.r.Read(p) }

// roundTrip writes raw request bytes into the tunnel and reads one reply.
func (tn *tunnel) roundTrip(t *testing.T, raw string) (*http.Response, string) {
	t.Helper()
	if _, err := io.WriteString(tn, raw); err != nil {
		t.Fatalf("writing into the tunnel: %v", err)
	}
	resp, err := http.ReadResponse(tn.r, nil)
	if err != nil {
		t.Fatalf("reading the reply inside the tunnel: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(body)
}

// TestInterceptUnreadableRequestIsAnswered: inside an intercepted tunnel, a
// request postern cannot read (unencoded spaces in the URL, a Host that is
// not the tunnel's, a broken header line, a header block over the limit, a
// request cut off) is answered 400 "ERR: 101, Invalid or missing
// parameters" and audited as refused in mode intercept, like the plain
// listener's bad requests. Nothing reaches the provider, and no log, audit
// line or reply holds the text, the query or the legacy password (goproxy's
// own loop logged the request line and answered nothing).
func TestInterceptUnreadableRequestIsAnswered(t *testing.T) {
	fp := newFakeProvider(t, oneAPIReply())
	p, ic := interceptPostern(t, fp, []string{clickatellIn}, `"api.clickatell.com"`)
	query := "user=" + legacyUser + "&password=" + legacyPass + "&api_id=" + legacyAPIID + "&to=15551234567&text="
	for _, tc := range []struct {
		name, raw  string
		closeWrite bool // end the client's side after writing (a cut-off request)
	}{
		{"unencoded spaces", "GET /http/sendmsg?" + query + hostileText + " HTTP/1.1\r\nHost: api.clickatell.com\r\n\r\n", false},
		{"Host with a bad escape and a quote in the query",
			"GET /http/sendmsg?" + query + "Your\"" + strings.ReplaceAll(hostileText, " ", "+") + " HTTP/1.1\r\nHost: a%zz\r\n\r\n", false},
		{"another host", "GET /http/sendmsg?" + query + "x HTTP/1.1\r\nHost: evil.example\r\n\r\n", false},
		{"header line without a colon",
			"GET /http/sendmsg?" + query + "x HTTP/1.1\r\nHost: api.clickatell.com\r\n" + hostileText + "\r\n\r\n", false},
		{"headers over the limit",
			"GET /http/sendmsg?" + query + "x HTTP/1.1\r\nHost: api.clickatell.com\r\nX-Pad: " + strings.Repeat(hostileText, 2000) + "\r\n\r\n", false},
		{"absolute URL with another scheme", "GET ftp://api.clickatell.com/http/sendmsg?" + query + "x HTTP/1.1\r\nHost: api.clickatell.com\r\n\r\n", false},
		{"cut off", "GET /http/sendmsg?" + query + hostileText, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := len(auditLines(t, p))
			tn := openTunnel(t, p, ic, clickatellIn)
			if _, err := io.WriteString(tn, tc.raw); err != nil {
				t.Fatal(err)
			}
			if tc.closeWrite {
				tn.CloseWrite()
			}
			resp, err := http.ReadResponse(tn.r, nil)
			if err != nil {
				t.Fatalf("no reply inside the tunnel: %v", err)
			}
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != http.StatusBadRequest || string(body) != "ERR: 101, Invalid or missing parameters\n" {
				t.Errorf("reply %d %q, want 400 ERR: 101", resp.StatusCode, body)
			}
			if !resp.Close {
				t.Error("the tunnel stays open after a request whose framing is lost")
			}
			lines := auditLines(t, p)
			if len(lines) != before+1 {
				t.Fatalf("%d new audit lines, want 1:\n%s", len(lines)-before, p.Audit)
			}
			a := lines[len(lines)-1]
			if a["outcome"] != "refused" || a["mode"] != "intercept" || a["status"] != float64(400) || a["code"] != "101" ||
				a["client"] != "127.0.0.1" {
				t.Errorf("audit line %v, want refused, mode intercept, 400, code 101", a)
			}
			mustNotContain(t, "reply", string(body), hostileText, "Zq7", legacyPass, query)
		})
	}
	if n := len(fp.Requests()); n != 0 {
		t.Errorf("provider received %d requests, want none", n)
	}
	for where, out := range map[string]string{"operational log": p.Log.String(), "audit": p.Audit.String()} {
		mustNotContain(t, where, out, hostileText, "Zq7", legacyPass, query, "password is")
	}
}

// TestInterceptTunnelKeepsServing: a tunnel carries several requests, in
// origin-form and absolute-form, and a malformed one after good ones is
// still answered; the good ones reach the provider, audited as intercept.
func TestInterceptTunnelKeepsServing(t *testing.T) {
	fp := newFakeProvider(t, oneAPIReply())
	p, ic := interceptPostern(t, fp, []string{clickatellIn}, `"api.clickatell.com"`)
	tn := openTunnel(t, p, ic, clickatellIn)
	for _, target := range []string{"/http/sendmsg?", "https://api.clickatell.com/http/sendmsg?", "/http/sendmsg?"} {
		resp, body := tn.roundTrip(t, "GET "+target+legacyQuery("15551234567", "kept alive")+" HTTP/1.1\r\nHost: api.clickatell.com\r\n\r\n")
		if resp.StatusCode != http.StatusOK || !strings.HasPrefix(body, "ID: ") || resp.Close {
			t.Fatalf("%s: %d %q close=%v, want 200 ID on a kept-alive tunnel", target, resp.StatusCode, body, resp.Close)
		}
	}
	resp, body := tn.roundTrip(t, "GET /http/sendmsg?"+legacyQuery("15551234567", "x")[:40]+" "+hostileText+" HTTP/1.1\r\nHost: api.clickatell.com\r\n\r\n")
	if resp.StatusCode != http.StatusBadRequest || body != "ERR: 101, Invalid or missing parameters\n" {
		t.Errorf("malformed request after good ones: %d %q", resp.StatusCode, body)
	}
	if n := len(fp.Requests()); n != 3 {
		t.Errorf("provider received %d requests, want 3", n)
	}
	intercepted := 0
	for _, a := range auditLines(t, p) {
		if a["mode"] == "intercept" && a["outcome"] == "delivered" {
			intercepted++
		}
	}
	if intercepted != 3 {
		t.Errorf("%d delivered intercept audit lines, want 3:\n%s", intercepted, p.Audit)
	}
	mustNotContain(t, "operational log", p.Log.String(), hostileText, legacyPass)
}

// earlyConn sends prefix in the same write as the first bytes the TLS
// client writes (its ClientHello), as a client that does not wait for the
// CONNECT's 200 does, and hides the CONNECT reply from the TLS client.
type earlyConn struct {
	net.Conn
	prefix string
	r      *bufio.Reader
	status chan int // receives the CONNECT reply's status
	read   bool     // the CONNECT reply has been read
}

func (c *earlyConn) Write(p []byte) (int, error) {
	if c.prefix != "" {
		b := append([]byte(c.prefix), p...)
		c.prefix = ""
		if _, err := c.Conn.Write(b); err != nil {
			return 0, err
		}
		return len(p), nil
	}
	return c.Conn.Write(p)
}

func (c *earlyConn) Read(p []byte) (int, error) {
	if !c.read {
		resp, err := http.ReadResponse(c.r, &http.Request{Method: http.MethodConnect})
		if err != nil {
			return 0, err
		}
		c.status <- resp.StatusCode
		c.read = true
	}
	return c.r.Read(p)
}

// TestInterceptClientHelloWithConnect: a ClientHello sent in the same
// packet as the CONNECT (already read by postern's HTTP server when the
// tunnel starts) is not lost: the handshake and the request succeed.
func TestInterceptClientHelloWithConnect(t *testing.T) {
	fp := newFakeProvider(t, oneAPIReply())
	p, ic := interceptPostern(t, fp, []string{clickatellIn}, `"api.clickatell.com"`)
	raw, err := net.Dial("tcp", p.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	raw.SetDeadline(time.Now().Add(30 * time.Second))
	ec := &earlyConn{Conn: raw, prefix: "CONNECT api.clickatell.com:443 HTTP/1.1\r\nHost: api.clickatell.com:443\r\n\r\n",
		r: bufio.NewReader(raw), status: make(chan int, 1)}
	roots := x509.NewCertPool()
	roots.AddCert(ic.CA().Cert())
	tc := tls.Client(ec, &tls.Config{RootCAs: roots, ServerName: clickatellIn})
	if err := tc.Handshake(); err != nil {
		t.Fatalf("handshake with the ClientHello sent along with CONNECT: %v", err)
	}
	if s := <-ec.status; s != http.StatusOK {
		t.Fatalf("CONNECT: %d", s)
	}
	tn := &tunnel{Conn: tc, r: bufio.NewReader(tc)}
	resp, body := tn.roundTrip(t, "GET /http/sendmsg?"+legacyQuery("15551234567", "early hello")+" HTTP/1.1\r\nHost: api.clickatell.com\r\n\r\n")
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(body, "ID: ") {
		t.Fatalf("%d %q, want 200 ID", resp.StatusCode, body)
	}
}

// TestInterceptHostOutsideCAConstraints: [intercept] hosts lists a host the
// interception CA (made earlier, for api.clickatell.com only) does not
// permit: CONNECT to it is refused with 403 and audited, no leaf is minted,
// the log says how to make a new CA, and the permitted host still works.
func TestInterceptHostOutsideCAConstraints(t *testing.T) {
	fp := newFakeProvider(t, oneAPIReply())
	p, ic := interceptPostern(t, fp, []string{clickatellIn}, `"api.clickatell.com", "platform.clickatell.com"`)
	raw, err := net.Dial("tcp", p.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	raw.SetDeadline(time.Now().Add(30 * time.Second))
	fmt.Fprint(raw, "CONNECT platform.clickatell.com:443 HTTP/1.1\r\nHost: platform.clickatell.com:443\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(raw), &http.Request{Method: http.MethodConnect})
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("CONNECT outside the CA's constraints: %d, want 403", resp.StatusCode)
	}
	if ic.Cached() != 0 {
		t.Errorf("%d leaves minted, want none", ic.Cached())
	}
	a := auditLines(t, p)
	if len(a) != 1 || a[0]["outcome"] != "refused" || a[0]["method"] != "CONNECT" ||
		!strings.Contains(fmt.Sprint(a[0]["reason"]), "name constraints") {
		t.Errorf("audit %v, want one refused CONNECT naming the name constraints", a)
	}
	for _, want := range []string{"platform.clickatell.com", "intercept-ca.key", "import the new certificate"} {
		if !strings.Contains(p.Log.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, p.Log)
		}
	}
	tn := openTunnel(t, p, ic, clickatellIn)
	if resp, body := tn.roundTrip(t, "GET /http/sendmsg?"+legacyQuery("15551234567", "still works")+" HTTP/1.1\r\nHost: api.clickatell.com\r\n\r\n"); resp.StatusCode != http.StatusOK {
		t.Errorf("permitted host: %d %q", resp.StatusCode, body)
	}
}

// TestAbsoluteFormSchemeMustBeHTTP: an absolute-form request whose scheme
// is not http (ftp://, https://, anything) is refused 400 "ERR: 101" on
// the plain listener and nothing is sent; http:// still works.
func TestAbsoluteFormSchemeMustBeHTTP(t *testing.T) {
	fp := newFakeProvider(t, oneAPIReply())
	p := startPostern(t, routeConfig(fp.CAFile(t), "r", "clickatell-one", fp.URL("/v1/message"), ""), env())
	send := func(scheme string) (int, string) {
		conn, err := net.Dial("tcp", p.Addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		conn.SetDeadline(time.Now().Add(30 * time.Second))
		fmt.Fprintf(conn, "GET %s://api.clickatell.com/http/sendmsg?%s HTTP/1.1\r\nHost: api.clickatell.com\r\n\r\n",
			scheme, legacyQuery("15551234567", "scheme test"))
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Fatalf("%s: %v", scheme, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	for _, scheme := range []string{"ftp", "https", "FTP", "gopher"} {
		if status, body := send(scheme); status != http.StatusBadRequest || body != "ERR: 101, Invalid or missing parameters\n" {
			t.Errorf("%s://: %d %q, want 400 ERR: 101", scheme, status, body)
		}
	}
	if n := len(fp.Requests()); n != 0 {
		t.Fatalf("provider received %d requests for non-http schemes", n)
	}
	for _, a := range auditLines(t, p) {
		if a["outcome"] != "refused" || a["mode"] != "proxy" || a["code"] != "101" || a["status"] != float64(400) {
			t.Errorf("audit %v, want refused proxy 400 code 101", a)
		}
	}
	if status, body := send("http"); status != http.StatusOK {
		t.Errorf("http://: %d %q, want 200", status, body)
	}
}

// TestShutdownClosesIdleTunnels: a shutdown closes intercepted tunnels
// waiting for their next request (net/http does not track hijacked
// connections), rather than leaving them to the idle timeout.
func TestShutdownClosesIdleTunnels(t *testing.T) {
	fp := newFakeProvider(t, oneAPIReply())
	dir := t.TempDir()
	ic, _, err := trust.LoadOrCreateInterceptCA(dir, []string{clickatellIn})
	if err != nil {
		t.Fatal(err)
	}
	cfg := proxytest.Load(t, "[server]\ndata_dir = \""+dir+"\"\n[intercept]\nhosts = [\"api.clickatell.com\"]\n"+
		routeConfig(fp.CAFile(t), "r", "clickatell-one", fp.URL("/v1/message"), ""), env())
	addr, stop := proxytest.Serve(t, proxy.New(cfg, proxy.Options{InterceptCA: ic}))
	p := &postern{Addr: addr}
	tn := openTunnel(t, p, ic, clickatellIn)
	if resp, body := tn.roundTrip(t, "GET /http/sendmsg?"+legacyQuery("15551234567", "before shutdown")+" HTTP/1.1\r\nHost: api.clickatell.com\r\n\r\n"); resp.StatusCode != http.StatusOK {
		t.Fatalf("%d %q", resp.StatusCode, body)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	// The tunnel's idle timeout is two minutes; the read deadline set by
	// openTunnel (30 s) fails this test if the shutdown left it open.
	if _, err := tn.r.ReadByte(); err != io.EOF {
		t.Errorf("idle tunnel after shutdown: read %v, want EOF", err)
	}
}

// TestInterceptPostWithExpectContinue: a form POST inside the tunnel that
// announces its body with "Expect: 100-continue" gets its 100 Continue
// (postern reads the tunnel itself, without net/http's server to send it),
// is delivered, and the tunnel carries the next request.
func TestInterceptPostWithExpectContinue(t *testing.T) {
	fp := newFakeProvider(t, oneAPIReply())
	p, ic := interceptPostern(t, fp, []string{clickatellIn}, `"api.clickatell.com"`)
	tn := openTunnel(t, p, ic, clickatellIn)
	form := legacyQuery("15551234567", "posted through the tunnel")
	fmt.Fprintf(tn, "POST /http/sendmsg HTTP/1.1\r\nHost: api.clickatell.com\r\nContent-Type: application/x-www-form-urlencoded\r\n"+
		"Content-Length: %d\r\nExpect: 100-continue\r\n\r\n", len(form))
	cont, err := http.ReadResponse(tn.r, nil)
	if err != nil || cont.StatusCode != http.StatusContinue {
		t.Fatalf("waiting for 100 Continue: %v %v", cont, err)
	}
	resp, body := tn.roundTrip(t, form)
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(body, "ID: ") || resp.Close {
		t.Fatalf("POST: %d %q close=%v, want 200 ID, kept alive", resp.StatusCode, body, resp.Close)
	}
	texts, _, err := oneAPIBody(fp.Requests()[0].Body)
	if err != nil || len(texts) != 1 || texts[0] != "posted through the tunnel" {
		t.Errorf("provider got texts %q (%v)", texts, err)
	}
	if resp, body := tn.roundTrip(t, "GET /http/sendmsg?"+legacyQuery("15551234567", "after the post")+" HTTP/1.1\r\nHost: api.clickatell.com\r\n\r\n"); resp.StatusCode != http.StatusOK {
		t.Errorf("next request on the tunnel: %d %q", resp.StatusCode, body)
	}
}
