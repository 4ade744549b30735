package proxytest

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/postern/postern/proxy"
	"github.com/postern/postern/proxy/audit"
	"github.com/postern/postern/proxy/config"
)

// Config is a config file with one clickatell-http route (match_path
// /http/sendmsg, token from the environment variable TEST_TOKEN) to a fake
// provider, built from parts: the one config builder of the suites.
type Config struct {
	Server string // lines of [server]; "" leaves the table out
	CAFile string // [trust] ca_files: the fake provider's certificate
	Limits string // lines of [limits]
	// The route: Name (default "r"), MatchHost ("" = any host), Provider
	// (default "clickatell-one"), Endpoint, and Extra lines of route keys.
	Name, MatchHost, Provider, Endpoint, Extra string
}

// TOML renders the config file.
func (c Config) TOML() string {
	// Without server keys there is no [server] table, so that a caller may
	// put one (or [audit], [intercept]) in front of the file.
	server := ""
	if c.Server != "" {
		server = "[server]\n" + c.Server + "\n"
	}
	host := ""
	if c.MatchHost != "" {
		host = fmt.Sprintf("match_host = %q\n", c.MatchHost)
	}
	return fmt.Sprintf(`
%s[trust]
ca_files = [%q]

[limits]
%s

[[route]]
name = %q
%smatch_path = "/http/sendmsg"
inbound = "clickatell-http"
provider = %q
endpoint = %q
token = "env:TEST_TOKEN"
%s
`, server, c.CAFile, c.Limits, cmp.Or(c.Name, "r"), host, cmp.Or(c.Provider, "clickatell-one"), c.Endpoint, c.Extra)
}

// RouteConfig is the suites' usual config: a route named name for
// api.clickatell.com/http/sendmsg through provider to endpoint, trusting
// caFile, with extra route keys. Rate limits per number are off: suites
// send many messages to the same few numbers, and the limits have their
// own tests.
func RouteConfig(caFile, name, provider, endpoint, extra string) string {
	return Config{CAFile: caFile, Limits: `per_number = "off"`, Name: name, MatchHost: "api.clickatell.com",
		Provider: provider, Endpoint: endpoint, Extra: extra}.TOML()
}

// SyncBuffer collects log output written from several goroutines.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Postern is a real postern server listening on a loopback port.
type Postern struct {
	Addr  string // host:port
	Log   *SyncBuffer
	Audit *SyncBuffer  // every audit line, written synchronously
	Sinks *audit.Sinks // the config's [audit] file and syslog sinks
	Srv   *proxy.Server
}

// Load loads configTOML as test.toml; env: secrets come from env.
func Load(t testing.TB, configTOML string, env map[string]string) *config.Config {
	t.Helper()
	cfg, err := config.Load("test.toml", []byte(configTOML), config.LoadOptions{LookupEnv: func(k string) (string, bool) {
		v, ok := env[k]
		return v, ok
	}})
	if err != nil {
		t.Fatalf("loading config: %v", err)
	}
	return cfg
}

// Serve runs srv on a loopback listener (shutdown grace 5s) until stop is
// called or the test ends. stop returns what Serve returned the first
// time, nil after.
func Serve(t testing.TB, srv *proxy.Server) (addr string, stop func() error) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln, 5*time.Second) }()
	var once sync.Once
	stop = func() error {
		var err error
		once.Do(func() {
			cancel()
			err = <-done
		})
		return err
	}
	t.Cleanup(func() {
		if err := stop(); err != nil {
			t.Errorf("postern Serve: %v", err)
		}
	})
	return ln.Addr().String(), stop
}

// Start loads configTOML (env: secrets come from env) and serves it on
// 127.0.0.1:0 with opts until the test ends; Log and Audit are always
// captured. When the test ends, no value of env may be in the log or the
// audit trail.
func Start(t testing.TB, configTOML string, env map[string]string, opts proxy.Options) *Postern {
	t.Helper()
	cfg := Load(t, configTOML, env)
	p := &Postern{Log: &SyncBuffer{}, Audit: &SyncBuffer{}}
	opts.Log = slog.New(slog.NewJSONHandler(p.Log, nil))
	// The [audit] sinks run as configured, except that the console sink is
	// replaced by p.Audit, which tests can read without waiting.
	sinkCfg := cfg.Audit
	sinkCfg.Console = "off"
	var err error
	if p.Sinks, err = audit.OpenSinks(sinkCfg, io.Discard, io.Discard, opts.Log); err != nil {
		t.Fatalf("opening audit sinks: %v", err)
	}
	opts.Audit = audit.NewLogger(io.MultiWriter(p.Audit, p.Sinks))
	opts.AuditSinks = p.Sinks
	p.Srv = proxy.New(cfg, opts)
	// Cleanups run last-registered first: the checks below run after the
	// server (registered by Serve) has stopped.
	t.Cleanup(func() {
		if err := p.Sinks.Close(); err != nil {
			t.Errorf("closing audit sinks: %v", err)
		}
		// Whatever a test did, no secret may have reached a log.
		var secrets []string
		for _, v := range env {
			secrets = append(secrets, v)
		}
		MustNotContain(t, "postern log", p.Log.String(), secrets...)
		MustNotContain(t, "postern audit", p.Audit.String(), secrets...)
	})
	p.Addr, _ = Serve(t, p.Srv)
	return p
}

// ProxyClient talks to postern as ISE does when postern is its HTTP proxy:
// requests go out in absolute-form and nothing is resolved locally.
func (p *Postern) ProxyClient() *http.Client {
	u, _ := url.Parse("http://" + p.Addr)
	return &http.Client{Transport: &http.Transport{Proxy: http.ProxyURL(u)}, Timeout: 30 * time.Second}
}

// Get sends an ISE-style GET in one of the three ways in — "proxy"
// (absolute-form through postern as HTTP proxy), "direct" (origin-form to
// postern's address) or "dns" (origin-form with Host: host, as when DNS
// points the provider's name at postern) — and returns status and body.
func (p *Postern) Get(t testing.TB, mode, host, pathAndQuery string) (int, string) {
	t.Helper()
	var req *http.Request
	var err error
	client := &http.Client{Timeout: 30 * time.Second}
	switch mode {
	case "proxy":
		req, err = http.NewRequest(http.MethodGet, "http://"+host+pathAndQuery, nil)
		client = p.ProxyClient()
	case "direct":
		req, err = http.NewRequest(http.MethodGet, "http://"+p.Addr+pathAndQuery, nil)
	case "dns":
		req, err = http.NewRequest(http.MethodGet, "http://"+p.Addr+pathAndQuery, nil)
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

// Post sends a form POST the way ISE does with "Use HTTP POST method for
// data portion", as a proxy request.
func (p *Postern) Post(t testing.TB, host, pathAndQuery, contentType, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, "http://"+host+pathAndQuery, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", contentType)
	resp, err := p.ProxyClient().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// Do sends req to postern (as its proxy when viaProxy) and returns status,
// headers and body.
func (p *Postern) Do(t testing.TB, req *http.Request, viaProxy *url.URL) (int, http.Header, string) {
	t.Helper()
	client := &http.Client{Timeout: 30 * time.Second}
	if viaProxy != nil {
		client.Transport = &http.Transport{Proxy: http.ProxyURL(viaProxy)}
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

// RawConnect sends a CONNECT with an optional Proxy-Authorization value.
func (p *Postern) RawConnect(t testing.TB, target, auth string) int {
	t.Helper()
	conn, err := net.Dial("tcp", p.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(conn, "CONNECT %s HTTP/1.1\r\nHost: %s\r\n", target, target)
	if auth != "" {
		fmt.Fprintf(conn, "Proxy-Authorization: %s\r\n", auth)
	}
	fmt.Fprint(conn, "\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(conn), &http.Request{Method: http.MethodConnect})
	if err != nil {
		t.Fatalf("reading CONNECT reply: %v", err)
	}
	return resp.StatusCode
}

// MustNotContain fails the test if haystack contains any of needles (a
// secret or a message text).
func MustNotContain(t testing.TB, where string, haystack string, needles ...string) {
	t.Helper()
	for _, n := range needles {
		if n != "" && strings.Contains(haystack, n) {
			t.Errorf("%s contains %q:\n%s", where, n, haystack)
		}
	}
}
