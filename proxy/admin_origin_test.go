package proxy_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/postern/postern/proxy/config"
)

// startAdminListener serves p's admin endpoints exactly as `postern serve`
// does (ServeAdmin on a real loopback listener), with a reload that re-reads
// configTOML, and returns the listener's host:port.
func startAdminListener(t *testing.T, p *postern, configTOML string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	load := func() (*config.Config, error) {
		return config.Load("test.toml", []byte(configTOML), config.LoadOptions{LookupEnv: func(k string) (string, bool) {
			v, ok := env()[k]
			return v, ok
		}})
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Srv.ServeAdmin(ctx, ln, load) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("ServeAdmin: %v", err)
		}
	})
	return ln.Addr().String()
}

// adminCall sends one admin request to addr with the given Host (""
// = addr) and extra headers, and returns the status and body.
func adminCall(t *testing.T, addr, method, path, host string, header map[string]string) (int, string) {
	t.Helper()
	var body io.Reader
	if method == http.MethodPost {
		body = strings.NewReader("reload please")
	}
	req, err := http.NewRequest(method, "http://"+addr+path, body)
	if err != nil {
		t.Fatal(err)
	}
	if host != "" {
		req.Host = host
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	client := &http.Client{Timeout: 30 * time.Second}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s (Host %q): %v", method, path, host, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

var adminPaths = []struct{ method, path string }{
	{http.MethodGet, "/metrics"},
	{http.MethodGet, "/healthz"},
	{http.MethodGet, "/readyz"},
	{http.MethodPost, "/-/reload"},
}

// TestAdminRefusesBrowserRequests: issue 10 item 6. A request carrying an
// Origin header (what a browser adds to a POST or a cross-origin fetch) and
// a request whose Host names another site (DNS rebinding) get 403 on every
// admin path, and the refused reloads never run. Requests as curl,
// `postern reload`, Prometheus and probes send them still work, with Host
// the listener's address, localhost or a loopback address.
func TestAdminRefusesBrowserRequests(t *testing.T) {
	fp := newFakeProvider(t, oneAPIReply())
	cfg := routeConfig(fp.CAFile(t), "r", "clickatell-one", fp.URL("/v1/message"), "")
	p := startPostern(t, cfg, env())
	addr := startAdminListener(t, p, cfg)
	_, port, _ := net.SplitHostPort(addr)

	for _, origin := range []string{"http://evil.example", "null", "http://" + addr, ""} {
		for _, ep := range adminPaths {
			h := map[string]string{"Origin": origin, "Content-Type": "text/plain"}
			if status, body := adminCall(t, addr, ep.method, ep.path, "", h); status != http.StatusForbidden {
				t.Errorf("%s %s with Origin %q: got %d %q, want 403", ep.method, ep.path, origin, status, body)
			}
		}
	}
	for _, host := range []string{"evil.example", "evil.example:" + port, "EVIL.example:" + port, "localhost.evil.example:" + port,
		"127.0.0.1.nip.io:" + port, "evil.example:1", "postern-admin.example:" + port} {
		for _, ep := range adminPaths {
			if status, body := adminCall(t, addr, ep.method, ep.path, host, nil); status != http.StatusForbidden {
				t.Errorf("%s %s with Host %q: got %d %q, want 403", ep.method, ep.path, host, status, body)
			}
		}
	}
	if v, _ := metricValue(scrape(t, "http://"+addr), "postern_config_reloads_total", map[string]string{"result": "success"}); v != 0 {
		t.Fatalf("refused reload requests reloaded the config %v times", v)
	}

	reloads := 0
	for _, host := range []string{"", addr, "localhost:" + port, "LOCALHOST:" + port, "localhost", "localhost.:" + port,
		"127.0.0.1:" + port, "127.0.0.1", "[::1]:" + port, "[::1]", "127.0.0.2:" + port} {
		for _, ep := range adminPaths {
			status, body := adminCall(t, addr, ep.method, ep.path, host, map[string]string{"User-Agent": "Prometheus/3.0.0"})
			if status != http.StatusOK {
				t.Errorf("%s %s with Host %q: got %d %q, want 200", ep.method, ep.path, host, status, body)
			}
			if ep.method == http.MethodPost && status == http.StatusOK {
				reloads++
			}
		}
	}
	if v, _ := metricValue(scrape(t, "http://"+addr), "postern_config_reloads_total", map[string]string{"result": "success"}); int(v) != reloads {
		t.Errorf("reloads counted %v, want %d", v, reloads)
	}

	// HTTP/1.0 without any Host, as the simplest probes send.
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprint(conn, "GET /healthz HTTP/1.0\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("HTTP/1.0 GET /healthz without Host: got %d, want 200", resp.StatusCode)
	}

	// Refusals are logged, without the caller's Host.
	log := p.Log.String()
	if !strings.Contains(log, "admin request refused") {
		t.Errorf("refusals are not logged:\n%s", log)
	}
	mustNotContain(t, "postern log", log, "evil.example", "nip.io")
}

// TestAdminAcceptsItsConfiguredName: a Host naming admin_listen's own host
// (e.g. the name a Prometheus static target uses) is accepted; other names
// still are not.
func TestAdminAcceptsItsConfiguredName(t *testing.T) {
	fp := newFakeProvider(t, oneAPIReply())
	cfg := "[server]\nadmin_listen = \"postern-admin.example:9090\"\n" + routeConfig(fp.CAFile(t), "r", "clickatell-one", fp.URL("/v1/message"), "")
	p := startPostern(t, cfg, env())
	addr := startAdminListener(t, p, cfg)
	for host, want := range map[string]int{
		"postern-admin.example:9090":  http.StatusOK,
		"Postern-Admin.Example.:9090": http.StatusOK,
		"postern-admin.example":       http.StatusOK,
		"admin.example:9090":          http.StatusForbidden,
		"postern-admin.example.evil":  http.StatusForbidden,
	} {
		if status, body := adminCall(t, addr, http.MethodGet, "/metrics", host, nil); status != want {
			t.Errorf("GET /metrics with Host %q: got %d %q, want %d", host, status, body, want)
		}
	}
}
