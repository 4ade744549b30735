package trust

import (
	"context"
	"crypto/tls"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/postern/postern/trust/trusttest"
)

// rootsWith returns Roots made the way production does: LoadRoots with the
// CA written to a ca_files PEM.
func rootsWith(t *testing.T, cas ...*trusttest.CA) *Roots {
	t.Helper()
	var files []string
	for _, ca := range cas {
		files = append(files, ca.WritePEM(t, t.TempDir()))
	}
	r, err := LoadRoots(files)
	if err != nil {
		t.Fatalf("LoadRoots: %v", err)
	}
	return r
}

// countingHandler answers "ok" and counts the requests that reached it.
func countingHandler(n *atomic.Int32) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		io.WriteString(w, "ok")
	})
}

func client(tr *http.Transport) *http.Client {
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}
}

// get performs a GET and reports whether the connection was reused.
func get(t *testing.T, c *http.Client, u string) (reused bool, err error) {
	t.Helper()
	trace := &httptrace.ClientTrace{GotConn: func(i httptrace.GotConnInfo) { reused = i.Reused }}
	req, err := http.NewRequestWithContext(httptrace.WithClientTrace(context.Background(), trace), http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := c.Do(req)
	if err != nil {
		return false, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read body: %v", err)
	}
	if resp.StatusCode != http.StatusOK || string(body) != "ok" {
		t.Fatalf("got %d %q, want 200 \"ok\"", resp.StatusCode, body)
	}
	return reused, nil
}

func TestTransportTrustedServerKeepAlive(t *testing.T) {
	ca := trusttest.NewCA(t)
	var hits atomic.Int32
	srv := trusttest.NewTLSServer(t, countingHandler(&hits), ca.Leaf(t, trusttest.LeafOptions{}))
	tr := NewTransport(rootsWith(t, ca))
	defer tr.CloseIdleConnections()
	c := client(tr)

	reused, err := get(t, c, srv.URL)
	if err != nil {
		t.Fatalf("first request: %v", err)
	}
	if reused {
		t.Error("first request reported a reused connection")
	}
	reused, err = get(t, c, srv.URL)
	if err != nil {
		t.Fatalf("second request: %v", err)
	}
	if !reused {
		t.Error("second request did not reuse the keep-alive connection")
	}
	if got := hits.Load(); got != 2 {
		t.Errorf("handler hits = %d, want 2", got)
	}
}

func TestTransportIntermediateChain(t *testing.T) {
	root := trusttest.NewCA(t)
	inter := root.Intermediate(t)
	var hits atomic.Int32
	srv := trusttest.NewTLSServer(t, countingHandler(&hits), inter.Leaf(t, trusttest.LeafOptions{}))
	tr := NewTransport(rootsWith(t, root))
	defer tr.CloseIdleConnections()
	if _, err := get(t, client(tr), srv.URL); err != nil {
		t.Fatalf("leaf served with its intermediate: %v", err)
	}
}

func TestTransportRejects(t *testing.T) {
	ca := trusttest.NewCA(t)
	other := trusttest.NewCA(t)
	now := time.Now()
	tests := []struct {
		name string
		cert tls.Certificate
		want string
	}{
		{"untrusted CA", other.Leaf(t, trusttest.LeafOptions{}), ReasonUntrusted},
		{"expired", ca.Leaf(t, trusttest.LeafOptions{NotBefore: now.Add(-48 * time.Hour), NotAfter: now.Add(-24 * time.Hour)}), ReasonExpired},
		{"not yet valid", ca.Leaf(t, trusttest.LeafOptions{NotBefore: now.Add(24 * time.Hour), NotAfter: now.Add(48 * time.Hour)}), ReasonExpired},
		{"another host", ca.Leaf(t, trusttest.LeafOptions{DNSNames: []string{"sms.example.net"}}), ReasonHostname},
		{"missing intermediate", ca.Intermediate(t).Leaf(t, trusttest.LeafOptions{LeafOnly: true}), ReasonUntrusted},
	}
	tr := NewTransport(rootsWith(t, ca))
	defer tr.CloseIdleConnections()
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var hits atomic.Int32
			srv := trusttest.NewTLSServer(t, countingHandler(&hits), tc.cert)
			_, err := get(t, client(tr), srv.URL)
			if err == nil {
				t.Fatal("request succeeded, want a verification failure")
			}
			if hits.Load() != 0 {
				t.Errorf("handler reached %d times", hits.Load())
			}
			reason, ok := DescribeTLSError(err)
			if !ok || reason != tc.want {
				t.Errorf("DescribeTLSError(%v) = %q, %v; want %q, true", err, reason, ok, tc.want)
			}
		})
	}
}

func TestTransportRefusesTLS11(t *testing.T) {
	ca := trusttest.NewCA(t)
	var hits atomic.Int32
	srv := httptest.NewUnstartedServer(countingHandler(&hits))
	srv.TLS = &tls.Config{
		Certificates: []tls.Certificate{ca.Leaf(t, trusttest.LeafOptions{})},
		MinVersion:   tls.VersionTLS10,
		MaxVersion:   tls.VersionTLS11,
	}
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshake is expected
	srv.StartTLS()
	defer srv.Close()

	tr := NewTransport(rootsWith(t, ca))
	defer tr.CloseIdleConnections()
	_, err := get(t, client(tr), srv.URL)
	if err == nil {
		t.Fatal("TLS 1.1 server accepted")
	}
	if hits.Load() != 0 {
		t.Errorf("handler reached %d times", hits.Load())
	}
	if reason, ok := DescribeTLSError(err); !ok || reason != ReasonHandshake {
		t.Errorf("DescribeTLSError(%v) = %q, %v; want %q, true", err, reason, ok, ReasonHandshake)
	}
}

// connRecorder is a loopback listener that counts accepted connections and
// closes them at once.
func connRecorder(t *testing.T) (addr string, accepted *atomic.Int32) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	accepted = new(atomic.Int32)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted.Add(1)
			c.Close()
		}
	}()
	return ln.Addr().String(), accepted
}

func TestTransportIgnoresProxyEnvironment(t *testing.T) {
	ca := trusttest.NewCA(t)
	var hits atomic.Int32
	// A non-loopback name: proxy environment rules exempt localhost and
	// loopback IPs, which would make this test prove nothing. The dialer
	// below sends the name to the loopback server.
	const host = "sms.provider.test"
	srv := trusttest.NewTLSServer(t, countingHandler(&hits), ca.Leaf(t, trusttest.LeafOptions{DNSNames: []string{host}}))
	srvAddr := srv.Listener.Addr().String()
	u := "https://" + host + "/send"

	proxyAddr, accepted := connRecorder(t)
	proxyURL := "http://" + proxyAddr
	for _, k := range []string{"HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"} {
		t.Setenv(k, proxyURL)
	}
	t.Setenv("NO_PROXY", "")
	t.Setenv("no_proxy", "")

	loopbackDial := func(ctx context.Context, network, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, srvAddr)
	}

	tr := NewTransport(rootsWith(t, ca))
	defer tr.CloseIdleConnections()
	if tr.Proxy != nil {
		t.Fatal("transport has a Proxy func")
	}
	tr.DialContext = loopbackDial
	if _, err := get(t, client(tr), u); err != nil {
		t.Fatalf("request: %v", err)
	}
	if n := accepted.Load(); n != 0 {
		t.Errorf("proxy from the environment saw %d connections, want 0", n)
	}
	if hits.Load() != 1 {
		t.Errorf("server hits = %d, want 1", hits.Load())
	}

	// Control: the recorder does see traffic from a transport that uses a
	// proxy, so the zero above is meaningful.
	pu, _ := url.Parse(proxyURL)
	ctl := NewTransport(rootsWith(t, ca))
	defer ctl.CloseIdleConnections()
	ctl.Proxy = http.ProxyURL(pu)
	if _, err := get(t, client(ctl), u); err == nil {
		t.Error("control request through the recording proxy succeeded")
	}
	if accepted.Load() == 0 {
		t.Error("control: recording proxy saw no connection")
	}
}

func TestTransportSettings(t *testing.T) {
	r := rootsWith(t, trusttest.NewCA(t))
	tr := NewTransport(r, WithResponseHeaderTimeout(3*time.Second))
	cfg := tr.TLSClientConfig
	switch {
	case tr.Proxy != nil:
		t.Error("Proxy is set")
	case cfg == nil:
		t.Fatal("no TLSClientConfig")
	case cfg.InsecureSkipVerify && cfg.VerifyConnection == nil:
		t.Error("InsecureSkipVerify is set without a VerifyConnection doing the verification")
	case tr.DialTLSContext == nil:
		t.Error("no DialTLSContext binding verification to the dialled host")
	case cfg.RootCAs == nil:
		t.Error("RootCAs is nil")
	case cfg.MinVersion != tls.VersionTLS12:
		t.Errorf("MinVersion = %x, want TLS 1.2", cfg.MinVersion)
	case cfg.ClientSessionCache == nil:
		t.Error("no ClientSessionCache")
	case !tr.ForceAttemptHTTP2:
		t.Error("ForceAttemptHTTP2 is false")
	case tr.ResponseHeaderTimeout != 3*time.Second:
		t.Errorf("ResponseHeaderTimeout = %v, want 3s", tr.ResponseHeaderTimeout)
	case tr.MaxIdleConnsPerHost < 2:
		t.Errorf("MaxIdleConnsPerHost = %d", tr.MaxIdleConnsPerHost)
	}
	if d := NewTransport(r, WithResponseHeaderTimeout(0)).ResponseHeaderTimeout; d != DefaultResponseHeaderTimeout {
		t.Errorf("WithResponseHeaderTimeout(0) gave %v, want the default", d)
	}
	if a, b := r.ClientTLSConfig(), r.ClientTLSConfig(); a == b || a.ClientSessionCache == b.ClientSessionCache {
		t.Error("ClientTLSConfig shares state between calls")
	}
}

// TestDialerVerifiesLikeTheTransport: the Dialer (proxy/deliver's HTTP/1.1
// pool) refuses what NewTransport refuses, for the same reasons, accepts
// a good chain, and offers only HTTP/1.1 even to a server that offers h2.
func TestDialerVerifiesLikeTheTransport(t *testing.T) {
	ca := trusttest.NewCA(t)
	other := trusttest.NewCA(t)
	d := NewDialer(rootsWith(t, ca))
	for _, tc := range []struct {
		name string
		cert tls.Certificate
		want string // "" = accepted
	}{
		{"trusted", ca.Leaf(t, trusttest.LeafOptions{}), ""},
		{"untrusted CA", other.Leaf(t, trusttest.LeafOptions{}), ReasonUntrusted},
		{"another host", ca.Leaf(t, trusttest.LeafOptions{DNSNames: []string{"sms.example.net"}}), ReasonHostname},
		{"missing intermediate", ca.Intermediate(t).Leaf(t, trusttest.LeafOptions{LeafOnly: true}), ReasonUntrusted},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// A server offering h2, as providers do.
			srv := httptest.NewUnstartedServer(http.NotFoundHandler())
			srv.EnableHTTP2 = true
			srv.TLS = &tls.Config{Certificates: []tls.Certificate{tc.cert}, MinVersion: tls.VersionTLS12, NextProtos: []string{"h2", "http/1.1"}}
			srv.Config.ErrorLog = log.New(io.Discard, "", 0)
			srv.StartTLS()
			defer srv.Close()
			conn, err := d.DialTLSContext(context.Background(), "tcp", strings.TrimPrefix(srv.URL, "https://"))
			if tc.want == "" {
				if err != nil {
					t.Fatalf("dial: %v", err)
				}
				defer conn.Close()
				if p := conn.ConnectionState().NegotiatedProtocol; p != "http/1.1" {
					t.Errorf("negotiated %q, want HTTP/1.1 only", p)
				}
				return
			}
			if err == nil {
				conn.Close()
				t.Fatal("dial succeeded, want a verification failure")
			}
			if reason, ok := DescribeTLSError(err); !ok || reason != tc.want {
				t.Errorf("DescribeTLSError(%v) = %q, %v; want %q, true", err, reason, ok, tc.want)
			}
		})
	}
}
