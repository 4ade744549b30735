package proxy_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/postern/postern/proxy"
	"github.com/postern/postern/proxy/proxytest"
)

// TestTLSListenerCutsOffAfterGrace: the HTTPS listener shuts down like the
// plain one (one serveUntilShutdown): it counts for /readyz while it
// serves, and a message still in flight when the grace period ends is cut
// off, answered 504 "outcome unknown" and audited as unknown, and ServeTLS
// returns no error.
func TestTLSListenerCutsOffAfterGrace(t *testing.T) {
	arrived, release := make(chan struct{}, 1), make(chan struct{})
	fp := newFakeProvider(t, func(w http.ResponseWriter, r received) {
		arrived <- struct{}{}
		<-release
		oneAPIReply()(w, r)
	})
	t.Cleanup(func() { close(release) }) // before the fake closes, which waits for its handler
	var auditBuf syncBuffer
	srv := proxy.New(proxytest.Load(t, routeConfig(fp.CAFile(t), "r", "clickatell-one", fp.URL("/v1/message"), ""), env()),
		proxy.Options{Audit: slog.New(slog.NewJSONHandler(&auditBuf, nil))})

	certSrc := httptest.NewTLSServer(nil) // a certificate for 127.0.0.1
	cert, roots := certSrc.TLS.Certificates[0], x509.NewCertPool()
	roots.AddCert(certSrc.Certificate())
	certSrc.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- srv.ServeTLS(ctx, ln, &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}, 100*time.Millisecond)
	}()
	admin := httptest.NewServer(srv.AdminHandler(nil))
	defer admin.Close()
	readyz := func() int {
		resp, err := http.Get(admin.URL + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	waitFor(t, "/readyz 200 while the TLS listener serves", func() bool { return readyz() == http.StatusOK })

	type result struct {
		status int
		body   string
		err    error
	}
	got := make(chan result, 1)
	go func() {
		client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}}, Timeout: 30 * time.Second}
		req, _ := http.NewRequest(http.MethodGet, "https://"+ln.Addr().String()+"/http/sendmsg?"+legacyQuery("15551234567", "in flight"), nil)
		req.Host = clickatellIn
		resp, err := client.Do(req)
		if err != nil {
			got <- result{err: err}
			return
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		got <- result{status: resp.StatusCode, body: string(b)}
	}()
	<-arrived
	cancel()
	r := <-got
	if r.err != nil || r.status != http.StatusGatewayTimeout || r.body != "ERR: 901, Upstream timeout, outcome unknown\n" {
		t.Errorf("cut-off message: %d %q %v, want 504 outcome unknown", r.status, r.body, r.err)
	}
	if err := <-done; err != nil {
		t.Errorf("ServeTLS: %v, want nil (being cut off is part of a normal shutdown)", err)
	}
	if s := readyz(); s != http.StatusServiceUnavailable {
		t.Errorf("/readyz after shutdown: %d, want 503", s)
	}
	if a := auditBuf.String(); !strings.Contains(a, `"outcome":"unknown"`) {
		t.Errorf("audit should record the cut-off message as unknown:\n%s", a)
	}
}
