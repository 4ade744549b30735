package proxy_test

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/postern/postern/proxy"
	"github.com/postern/postern/trust/trusttest"
)

// TestRefusedRequestsNeverReachUpstream: deny by default. Every request that
// no route serves gets 403 and a plain-text reason, and the provider sees
// nothing.
func TestRefusedRequestsNeverReachUpstream(t *testing.T) {
	fp := newFakeProvider(t, oneAPIReply())
	p := startPostern(t, routeConfig(fp.CAFile(t), "clickatell", "clickatell-one", fp.URL("/v1/message"), ""), env())
	q := "/http/sendmsg?" + legacyQuery("15551234567", "hello there")
	for _, tc := range []struct {
		name, mode, host, path string
		wantBody               string
	}{
		{"unmatched path", "proxy", clickatellIn, "/http/querymsg?apimsgid=1", "Forbidden: no route matches this request\n"},
		{"unmatched host (proxy)", "proxy", "evil.example.com", q, "Forbidden: no route matches this request\n"},
		{"unmatched host (dns)", "dns", "evil.example.com", q, "Forbidden: no route matches this request\n"},
		{"direct to postern's address, route pinned to a host", "direct", "", q, "Forbidden: no route matches this request\n"},
		{"open proxy attempt", "proxy", "example.org", "/", "Forbidden: no route matches this request\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, body := p.Get(t, tc.mode, tc.host, tc.path)
			if status != http.StatusForbidden || body != tc.wantBody {
				t.Errorf("got %d %q, want 403 %q", status, body, tc.wantBody)
			}
		})
	}

	t.Run("CONNECT", func(t *testing.T) {
		conn, err := net.Dial("tcp", p.Addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		conn.SetDeadline(time.Now().Add(10 * time.Second))
		fmt.Fprintf(conn, "CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n", strings.TrimPrefix(fp.Srv.URL, "https://"), strings.TrimPrefix(fp.Srv.URL, "https://"))
		resp, err := http.ReadResponse(bufio.NewReader(conn), &http.Request{Method: http.MethodConnect})
		if err != nil {
			t.Fatalf("reading CONNECT reply: %v", err)
		}
		if resp.StatusCode != http.StatusForbidden {
			t.Errorf("CONNECT: got %d, want 403", resp.StatusCode)
		}
	})

	t.Run("HTTPS through the proxy (CONNECT by a real client)", func(t *testing.T) {
		resp, err := p.ProxyClient().Get(fp.URL("/v1/message"))
		if err == nil {
			resp.Body.Close()
			t.Fatalf("HTTPS via postern: got %d, want the tunnel refused", resp.StatusCode)
		}
	})

	if n := len(fp.Requests()); n != 0 {
		t.Errorf("provider received %d requests, want none", n)
	}
	if n := fp.Connections(); n != 0 {
		t.Errorf("provider saw %d connections, want none", n)
	}
	audit := p.Audit.String()
	if got := strings.Count(audit, `"outcome":"refused"`); got < 7 {
		t.Errorf("audit has %d refusals, want one per refused request (7):\n%s", got, audit)
	}
}

// TestClientOutsideAllowClients: a client that is not listed gets 403 and an
// audit line, even for a request a route would serve.
func TestClientOutsideAllowClients(t *testing.T) {
	fp := newFakeProvider(t, oneAPIReply())
	cfg := "[server]\nallow_clients = [\"192.0.2.0/24\", \"2001:db8::1\"]\n" +
		routeConfig(fp.CAFile(t), "clickatell", "clickatell-one", fp.URL("/v1/message"), "")
	p := startPostern(t, cfg, env())
	for _, mode := range []string{"proxy", "direct", "dns"} {
		status, body := p.Get(t, mode, clickatellIn, "/http/sendmsg?"+legacyQuery("15551234567", "hello there"))
		if status != http.StatusForbidden || body != "Forbidden: client not allowed\n" {
			t.Errorf("%s: got %d %q, want 403 client not allowed", mode, status, body)
		}
	}
	if n := len(fp.Requests()); n != 0 {
		t.Errorf("provider received %d requests, want none", n)
	}
	if !strings.Contains(p.Audit.String(), `"reason":"client not in allow_clients"`) {
		t.Errorf("audit lacks the refusal reason:\n%s", p.Audit)
	}
}

// TestUntrustedUpstreamIs502: a provider whose certificate is not trusted,
// expired or for another host gets no message: the TLS handshake fails
// before any byte of the request is written, ISE gets 502.
func TestUntrustedUpstreamIs502(t *testing.T) {
	ca := trusttest.NewCA(t)
	other := trusttest.NewCA(t)
	caFile := ca.WritePEM(t, t.TempDir())
	for _, tc := range []struct {
		name string
		want string
	}{
		{"untrusted CA", "ERR: 901, Upstream TLS verification failed: certificate not trusted\n"},
		{"expired", "ERR: 901, Upstream TLS verification failed: certificate expired or not yet valid\n"},
		{"wrong host", "ERR: 901, Upstream TLS verification failed: certificate is for another host\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var opts trusttest.LeafOptions
			signer := ca
			switch tc.name {
			case "untrusted CA":
				signer = other
			case "expired":
				opts.NotBefore, opts.NotAfter = time.Now().Add(-48*time.Hour), time.Now().Add(-24*time.Hour)
			case "wrong host":
				opts.DNSNames = []string{"not-the-provider.example"}
			}
			fp := newFakeProviderTLS(t, signer.Leaf(t, opts), oneAPIReply())
			p := startPostern(t, routeConfig(caFile, "r", "clickatell-one", fp.URL("/v1/message"), ""), env())
			status, body := p.Get(t, "proxy", clickatellIn, "/http/sendmsg?"+legacyQuery("15551234567", "secret text here"))
			if status != http.StatusBadGateway || body != tc.want {
				t.Errorf("got %d %q, want 502 %q", status, body, tc.want)
			}
			if n := len(fp.Requests()); n != 0 {
				t.Errorf("provider handler reached %d times, want never", n)
			}
			if !strings.Contains(p.Audit.String(), `"outcome":"refused"`) {
				t.Errorf("audit should say refused (not sent):\n%s", p.Audit)
			}
		})
	}
	t.Run("trusted leaf from the same CA works", func(t *testing.T) {
		fp := newFakeProviderTLS(t, ca.Leaf(t, trusttest.LeafOptions{}), oneAPIReply())
		p := startPostern(t, routeConfig(caFile, "r", "clickatell-one", fp.URL("/v1/message"), ""), env())
		if status, body := p.Get(t, "proxy", clickatellIn, "/http/sendmsg?"+legacyQuery("15551234567", "hi")); status != http.StatusOK {
			t.Errorf("got %d %q, want 200", status, body)
		}
	})
}

// TestEnvironmentProxyIsIgnored: HTTPS_PROXY in postern's environment must
// not reroute provider traffic (goproxy's default transport would honour
// it). net/http reads the proxy environment once per process and never
// proxies loopback addresses, so the check runs in a child process and the
// provider is reached under a non-loopback name that a test dialer maps to
// the loopback fake.
func TestEnvironmentProxyIsIgnored(t *testing.T) {
	if os.Getenv("POSTERN_TEST_ENV_PROXY_CHILD") == "" {
		trap, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer trap.Close()
		var trapped atomic.Int32
		go func() {
			for {
				c, err := trap.Accept()
				if err != nil {
					return
				}
				trapped.Add(1)
				c.Close()
			}
		}()
		cmd := exec.Command(os.Args[0], "-test.run=^TestEnvironmentProxyIsIgnored$", "-test.count=1")
		trapURL := "http://" + trap.Addr().String()
		cmd.Env = append(os.Environ(), "POSTERN_TEST_ENV_PROXY_CHILD=1",
			"HTTPS_PROXY="+trapURL, "https_proxy="+trapURL, "HTTP_PROXY="+trapURL, "http_proxy="+trapURL, "NO_PROXY=", "no_proxy=")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("child: %v\n%s", err, out)
		}
		if !strings.Contains(string(out), "PASS") {
			t.Fatalf("child did not run the test:\n%s", out)
		}
		if n := trapped.Load(); n != 0 {
			t.Fatalf("the environment's proxy received %d connections, want none", n)
		}
		return
	}

	ca := trusttest.NewCA(t)
	const name = "sms.provider.test"
	fp := newFakeProviderTLS(t, ca.Leaf(t, trusttest.LeafOptions{DNSNames: []string{name}}), oneAPIReply())
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(fp.Srv.URL, "https://"))
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		if addr != net.JoinHostPort(name, port) {
			return nil, fmt.Errorf("test dialer: unexpected address %q", addr)
		}
		var d net.Dialer
		return d.DialContext(ctx, network, fp.Srv.Listener.Addr().String())
	}
	cfg := routeConfig(ca.WritePEM(t, t.TempDir()), "r", "clickatell-one", "https://"+net.JoinHostPort(name, port)+"/v1/message", "")
	p := startPosternWith(t, cfg, env(), proxy.Options{DialContext: dial})
	if status, body := p.Get(t, "dns", clickatellIn, "/http/sendmsg?"+legacyQuery("15551234567", "hi")); status != http.StatusOK {
		t.Fatalf("got %d %q, want 200 (delivered directly)", status, body)
	}
	if len(fp.Requests()) != 1 {
		t.Fatalf("provider got %d requests, want 1", len(fp.Requests()))
	}
}
