package main

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/postern/postern/proxy/proxytest"
)

// gatedProvider is a TLS fake One API (proxytest's fake provider) whose
// replies wait until the test opens the gate; arrived receives one value
// per request it holds.
type gatedProvider struct {
	*proxytest.Provider
	arrived chan string
	gate    chan struct{}
	n       atomic.Int64
}

func newGatedProvider(t *testing.T) *gatedProvider {
	t.Helper()
	g := &gatedProvider{arrived: make(chan string, 16), gate: make(chan struct{})}
	g.Provider = proxytest.NewProvider(t, func(w http.ResponseWriter, r proxytest.Received) {
		g.arrived <- r.Path
		<-g.gate
		w.WriteHeader(http.StatusAccepted)
		fmt.Fprintf(w, `{"messages":[{"apiMessageId":"gated%d","accepted":true,"to":"15551234567","error":null}],"error":null}`, g.n.Add(1))
	})
	// Registered after the fake's own cleanup, so it runs first: held
	// replies are let go before the server waits for them to end.
	t.Cleanup(g.open)
	return g
}

func (g *gatedProvider) open() {
	select {
	case <-g.gate:
	default:
		close(g.gate)
	}
}

// opsConfig writes a config whose one route sends to g at path.
func opsConfig(t *testing.T, dir string, g *gatedProvider, path, extra string) string {
	t.Helper()
	ca := g.CAFile(t)
	return writeFile(t, dir, "postern.toml", fmt.Sprintf(`
[server]
request_timeout = "30s"
%s

[trust]
ca_files = [%q]

[[route]]
name = "one"
match_path = "/http/sendmsg"
inbound = "clickatell-http"
provider = "clickatell-one"
endpoint = "%s%s"
token = "env:CLICKATELL_API_KEY"
`, extra, ca, g.URL(""), path))
}

var opsEnv = []string{"CLICKATELL_API_KEY=key-SECRET-ops"}

type reply struct {
	status int
	body   string
	err    error
}

// sendAsync sends one ISE-style GET to d and delivers the reply on a channel.
func sendAsync(d *daemon, text string) chan reply {
	c := make(chan reply, 1)
	go func() {
		client := &http.Client{Timeout: 60 * time.Second}
		resp, err := client.Get("http://" + d.addr + "/http/sendmsg?to=15551234567&text=" + text)
		if err != nil {
			c <- reply{err: err}
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		c <- reply{status: resp.StatusCode, body: string(b)}
	}()
	return c
}

// waitFor polls cond every 10ms for at most 20s; it fails the test with what
// when cond never holds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("timed out waiting for %s", what)
}

func waitExit(t *testing.T, d *daemon) int {
	t.Helper()
	select {
	case <-d.exited:
	case <-time.After(30 * time.Second):
		t.Fatalf("postern did not exit; stderr:\n%s", d.stderr)
	}
	return d.cmd.ProcessState.ExitCode()
}

func httpStatus(u string) int {
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Get(u)
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestSIGTERMLetsInFlightMessageFinish: a message in flight at SIGTERM is
// delivered and answered, new connections are refused from then on, readiness
// goes to 503 while draining, and postern exits 0.
func TestSIGTERMLetsInFlightMessageFinish(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	g := newGatedProvider(t)
	dir := t.TempDir()
	d := startDaemon(t, buildDockerBinary(t), dir, opsEnv, "serve", "-config", opsConfig(t, dir, g, "/v1/message", ""))
	inFlight := sendAsync(d, "in+flight")
	<-g.arrived

	if err := d.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the listener to close", func() bool {
		c, err := net.DialTimeout("tcp", d.addr, time.Second)
		if err == nil {
			c.Close()
		}
		return err != nil
	})
	if s := httpStatus("http://" + d.admin + "/readyz"); s != http.StatusServiceUnavailable {
		t.Errorf("/readyz while draining: %d, want 503", s)
	}
	if s := httpStatus("http://" + d.admin + "/healthz"); s != http.StatusOK {
		t.Errorf("/healthz while draining: %d, want 200", s)
	}
	g.open()
	r := <-inFlight
	if r.err != nil || r.status != http.StatusOK || r.body != "ID: gated1\n" {
		t.Fatalf("in-flight message: %d %q %v, want 200 ID: gated1", r.status, r.body, r.err)
	}
	if code := waitExit(t, d); code != 0 {
		t.Errorf("exit code %d, want 0; stderr:\n%s", code, d.stderr)
	}
	if !strings.Contains(d.stdout.String(), `"outcome":"delivered"`) || !strings.Contains(d.stderr.String(), "postern stopped") {
		t.Errorf("want a delivered audit line and a clean stop:\n%s\n%s", d.stdout, d.stderr)
	}
}

// TestSIGTERMCutsOffAfterGrace: a message still in flight when the grace
// period ends is answered 504 "outcome unknown" and audited as unknown, the
// cut-off is logged, and postern still exits 0.
func TestSIGTERMCutsOffAfterGrace(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	g := newGatedProvider(t)
	dir := t.TempDir()
	d := startDaemon(t, buildDockerBinary(t), dir, opsEnv, "serve", "-config", opsConfig(t, dir, g, "/v1/message", `shutdown_grace = "200ms"`))
	inFlight := sendAsync(d, "never+answered")
	<-g.arrived
	if err := d.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	r := <-inFlight
	if r.err != nil || r.status != http.StatusGatewayTimeout || r.body != "ERR: 901, Upstream timeout, outcome unknown\n" {
		t.Fatalf("cut-off message: %d %q %v, want 504 outcome unknown", r.status, r.body, r.err)
	}
	if code := waitExit(t, d); code != 0 {
		t.Errorf("exit code %d, want 0; stderr:\n%s", code, d.stderr)
	}
	if !strings.Contains(d.stdout.String(), `"outcome":"unknown"`) {
		t.Errorf("audit should record the cut-off message as unknown:\n%s", d.stdout)
	}
	if !strings.Contains(d.stderr.String(), `cutting off messages still in flight`) || !strings.Contains(d.stderr.String(), `"in_flight":1`) {
		t.Errorf("log should report the cut-off:\n%s", d.stderr)
	}
}

// TestReloadBySIGHUPAndCommand: SIGHUP and `postern reload` re-read the file;
// a valid change applies to the next message, an invalid one is rejected
// with its position and the old config keeps serving.
func TestReloadBySIGHUPAndCommand(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	g := newGatedProvider(t)
	g.open()
	dir := t.TempDir()
	cfg := opsConfig(t, dir, g, "/v1/message", "")
	d := startDaemon(t, buildDockerBinary(t), dir, opsEnv, "serve", "-config", cfg)
	send := func() reply { return <-sendAsync(d, "hello") }
	if r := send(); r.status != 200 || <-g.arrived != "/v1/message" {
		t.Fatalf("before reload: %+v", r)
	}

	opsConfig(t, dir, g, "/v2/message", "")
	if err := d.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the SIGHUP reload", func() bool { return strings.Contains(d.stderr.String(), `"msg":"config reloaded"`) })
	if r := send(); r.status != 200 || <-g.arrived != "/v2/message" {
		t.Fatalf("after SIGHUP: %+v, want the new endpoint", r)
	}

	src, _ := os.ReadFile(cfg)
	writeFile(t, dir, "postern.toml", strings.Replace(string(src), "/v2/message", "/v3/message", 1)+"\nbogus = 1\n")
	code, _, stderr := runCLI(t, "reload", "-url", "http://"+d.admin+"/-/reload")
	if code != 1 || !strings.Contains(stderr, `postern.toml:17:1: unknown key "route.bogus"`) || !strings.Contains(stderr, "previous configuration still serving") {
		t.Fatalf("reload of a bad file: exit %d %q", code, stderr)
	}
	if r := send(); r.status != 200 || <-g.arrived != "/v2/message" {
		t.Fatalf("after a rejected reload: %+v, want the old endpoint", r)
	}

	writeFile(t, dir, "postern.toml", strings.Replace(string(src), "/v2/message", "/v3/message", 1))
	code, stdout, stderr := runCLI(t, "reload", "-url", "http://"+d.admin+"/-/reload")
	if code != 0 || !strings.Contains(stdout, "reloaded") {
		t.Fatalf("postern reload: exit %d %q %q", code, stdout, stderr)
	}
	if r := send(); r.status != 200 || <-g.arrived != "/v3/message" {
		t.Fatalf("after postern reload: %+v", r)
	}
	if strings.Contains(d.stderr.String()+d.stdout.String(), "key-SECRET-ops") {
		t.Errorf("logs reveal the key")
	}
}

// TestHealthCommand: `postern health` is what the container HEALTHCHECK
// runs: exit 0 against a live postern, 1 when nothing answers.
func TestHealthCommand(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	d := startDaemon(t, buildDockerBinary(t), t.TempDir(), []string{}, "serve", "-sandbox", "-listen", "127.0.0.1:0")
	if code, stdout, stderr := runCLI(t, "health", "-url", "http://"+d.admin+"/healthz"); code != 0 || stdout != "ok\n" {
		t.Errorf("health of a live postern: exit %d %q %q", code, stdout, stderr)
	}
	if code, _, _ := runCLI(t, "health", "-url", "http://"+d.admin+"/readyz"); code != 0 {
		t.Errorf("readyz of a live postern: exit %d", code)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := ln.Addr().String()
	ln.Close()
	if code, _, stderr := runCLI(t, "health", "-url", "http://"+dead+"/healthz"); code != 1 || !strings.Contains(stderr, "postern health:") {
		t.Errorf("health with nothing listening: exit %d %q, want 1", code, stderr)
	}
}

// TestSIGHUPReopensRotatedAuditFile: logrotate moves the audit file away and
// sends SIGHUP (postern would also notice the move by itself before the next
// line); the next audit line goes to a new file at the configured path, and
// the moved file keeps what was written before — through the real binary.
func TestSIGHUPReopensRotatedAuditFile(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	g := newGatedProvider(t)
	g.open()
	dir := t.TempDir()
	auditPath := dir + "/audit.log"
	cfg := opsConfig(t, dir, g, "/v1/message", "")
	src, _ := os.ReadFile(cfg)
	writeFile(t, dir, "postern.toml", string(src)+fmt.Sprintf("\n[audit]\nconsole = \"off\"\nfile = %q\n", auditPath))
	d := startDaemon(t, buildDockerBinary(t), dir, opsEnv, "serve", "-config", cfg)
	lines := func(path string) string {
		b, _ := os.ReadFile(path)
		return string(b)
	}
	if r := <-sendAsync(d, "before-rotation"); r.status != 200 {
		t.Fatalf("first message: %+v", r)
	}
	waitFor(t, "the first audit line", func() bool { return strings.Contains(lines(auditPath), `"ids":["gated1"]`) })
	if err := os.Rename(auditPath, auditPath+".1"); err != nil {
		t.Fatal(err)
	}
	if err := d.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the SIGHUP reload", func() bool { return strings.Contains(d.stderr.String(), `"msg":"config reloaded"`) })
	if r := <-sendAsync(d, "after-rotation"); r.status != 200 {
		t.Fatalf("second message: %+v", r)
	}
	waitFor(t, "the audit line in the new file", func() bool { return strings.Contains(lines(auditPath), `"ids":["gated2"]`) })
	if old := lines(auditPath + ".1"); !strings.Contains(old, `"ids":["gated1"]`) || strings.Contains(old, "gated2") {
		t.Errorf("rotated file: %q, want only the first message", old)
	}
	if cur := lines(auditPath); strings.Contains(cur, "gated1") {
		t.Errorf("new file repeats the first message: %q", cur)
	}
	if d.stdout.String() != "" {
		t.Errorf("console = \"off\", yet stdout got: %q", d.stdout.String())
	}
}
