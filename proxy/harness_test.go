package proxy_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/postern/postern/proxy"
	"github.com/postern/postern/proxy/audit"
	"github.com/postern/postern/proxy/config"
)

// received is one request as the fake provider saw it.
type received struct {
	Method string
	Path   string
	Query  string
	Host   string
	Header http.Header
	Body   []byte
}

// raw renders everything the provider received, for "appears nowhere" checks.
func (r received) raw() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s?%s\nHost: %s\n", r.Method, r.Path, r.Query, r.Host)
	for k, vs := range r.Header {
		for _, v := range vs {
			fmt.Fprintf(&b, "%s: %s\n", k, v)
		}
	}
	b.Write(r.Body)
	return b.String()
}

// fakeProvider is a real TLS server on loopback that records every request
// (the ledger) and answers with a scripted reply.
type fakeProvider struct {
	srv *httptest.Server

	mu      sync.Mutex
	ledger  []received
	conns   int
	respond func(w http.ResponseWriter, r received)
}

func newFakeProvider(t testing.TB, respond func(w http.ResponseWriter, r received)) *fakeProvider {
	t.Helper()
	f := &fakeProvider{respond: respond}
	f.srv = httptest.NewUnstartedServer(http.HandlerFunc(f.serve))
	f.srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			f.mu.Lock()
			f.conns++
			f.mu.Unlock()
		}
	}
	f.srv.StartTLS()
	t.Cleanup(f.srv.Close)
	return f
}

// newFakeProviderTLS serves with a given certificate (see trusttest).
func newFakeProviderTLS(t *testing.T, cert tls.Certificate, respond func(w http.ResponseWriter, r received)) *fakeProvider {
	t.Helper()
	f := &fakeProvider{respond: respond}
	f.srv = httptest.NewUnstartedServer(http.HandlerFunc(f.serve))
	f.srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	// Refused handshakes are what several tests are about; keep them quiet.
	f.srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	f.srv.StartTLS()
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeProvider) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	rec := received{Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery, Host: r.Host, Header: r.Header.Clone(), Body: body}
	f.mu.Lock()
	f.ledger = append(f.ledger, rec)
	respond := f.respond
	f.mu.Unlock()
	respond(w, rec)
}

func (f *fakeProvider) requests() []received {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]received(nil), f.ledger...)
}

func (f *fakeProvider) connections() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.conns
}

// url returns the fake's base URL plus path, e.g. https://127.0.0.1:4431/v1/message.
func (f *fakeProvider) url(path string) string { return f.srv.URL + path }

// caFile writes the fake's certificate as a PEM file for ca_files.
func (f *fakeProvider) caFile(t testing.TB) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "provider-ca.pem")
	b := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: f.srv.Certificate().Raw})
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// syncBuffer collects log output written from several goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// postern is a real postern server listening on a loopback port.
type postern struct {
	addr  string // host:port
	log   *syncBuffer
	audit *syncBuffer  // every audit line, written synchronously
	sinks *audit.Sinks // the config's [audit] file and syslog sinks
	srv   *proxy.Server
}

// startPostern loads configTOML (env: secrets come from env) and serves it
// on 127.0.0.1:0 until the test ends.
func startPostern(t testing.TB, configTOML string, env map[string]string) *postern {
	t.Helper()
	return startPosternWith(t, configTOML, env, proxy.Options{})
}

// startPosternWith is startPostern with extra server options; Log and Audit
// are always captured.
func startPosternWith(t testing.TB, configTOML string, env map[string]string, opts proxy.Options) *postern {
	t.Helper()
	cfg, err := config.Load("test.toml", []byte(configTOML), config.LoadOptions{LookupEnv: func(k string) (string, bool) {
		v, ok := env[k]
		return v, ok
	}})
	if err != nil {
		t.Fatalf("loading config: %v", err)
	}
	p := &postern{log: &syncBuffer{}, audit: &syncBuffer{}}
	opts.Log = slog.New(slog.NewJSONHandler(p.log, nil))
	// The [audit] sinks run as configured, except that the console sink is
	// replaced by p.audit, which tests can read without waiting.
	sinkCfg := cfg.Audit
	sinkCfg.Console = "off"
	if p.sinks, err = audit.OpenSinks(sinkCfg, io.Discard, io.Discard, opts.Log); err != nil {
		t.Fatalf("opening audit sinks: %v", err)
	}
	opts.Audit = slog.New(slog.NewJSONHandler(io.MultiWriter(p.audit, p.sinks), nil))
	p.srv = proxy.New(cfg, opts)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p.addr = ln.Addr().String()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.srv.Serve(ctx, ln, 5*time.Second) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("postern Serve: %v", err)
		}
		if err := p.sinks.Close(); err != nil {
			t.Errorf("closing audit sinks: %v", err)
		}
		// Whatever a test did, no secret may have reached a log.
		secrets := []string{legacyPass}
		for _, v := range env {
			secrets = append(secrets, v)
		}
		mustNotContain(t, "postern log", p.log.String(), secrets...)
		mustNotContain(t, "postern audit", p.audit.String(), secrets...)
	})
	return p
}

// proxyClient talks to postern as ISE does when postern is its HTTP proxy:
// requests go out in absolute-form and nothing is resolved locally.
func (p *postern) proxyClient() *http.Client {
	u, _ := url.Parse("http://" + p.addr)
	return &http.Client{Transport: &http.Transport{Proxy: http.ProxyURL(u)}, Timeout: 30 * time.Second}
}

// get sends an ISE-style GET in one of the three ways in and returns status
// and body.
func (p *postern) get(t *testing.T, mode, host, pathAndQuery string) (int, string) {
	t.Helper()
	var req *http.Request
	var err error
	client := &http.Client{Timeout: 30 * time.Second}
	switch mode {
	case "proxy": // absolute-form through postern as HTTP proxy
		req, err = http.NewRequest(http.MethodGet, "http://"+host+pathAndQuery, nil)
		client = p.proxyClient()
	case "direct": // origin-form to postern's own address
		req, err = http.NewRequest(http.MethodGet, "http://"+p.addr+pathAndQuery, nil)
	case "dns": // origin-form, Host: the provider's name (DNS points at postern)
		req, err = http.NewRequest(http.MethodGet, "http://"+p.addr+pathAndQuery, nil)
		if req != nil {
			req.Host = host
		}
	default:
		t.Fatalf("unknown mode %q", mode)
	}
	if err != nil {
		t.Fatal(err)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s GET %s: %v", mode, pathAndQuery, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(body)
}

// mustNotContain fails if any of the logs or the given extra strings
// contains a secret or a message text.
func mustNotContain(t testing.TB, where string, haystack string, needles ...string) {
	t.Helper()
	for _, n := range needles {
		if n != "" && strings.Contains(haystack, n) {
			t.Errorf("%s contains %q:\n%s", where, n, haystack)
		}
	}
}

// auditLines decodes every audit line written so far.
func auditLines(t *testing.T, p *postern) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(p.audit.String()), "\n") {
		if l == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("audit line is not JSON: %v\n%s", err, l)
		}
		out = append(out, m)
	}
	return out
}
