package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/postern/postern/proxy/proxytest"
	"github.com/postern/postern/trust"
)

const (
	icText = "Your password is Kp4-BINARY"
	icPass = "isepass-BINARY-pw"
)

// interceptConfig writes a config with data_dir, [intercept] hosts and one
// route for api.clickatell.com to provider, guarded by icPass.
func interceptConfig(t *testing.T, dir, dataDir, hosts string, provider *proxytest.Provider) string {
	t.Helper()
	ca := provider.CAFile(t)
	return writeFile(t, dir, "postern.toml", fmt.Sprintf(`
[server]
data_dir = %q

[intercept]
hosts = [%s]

[trust]
ca_files = [%q]

[[route]]
name = "clickatell"
match_host = "api.clickatell.com"
match_path = "/http/sendmsg"
inbound = "clickatell-http"
legacy_user = "ise"
legacy_password = "env:LEGACY_PW"
provider = "clickatell-one"
endpoint = "%s/v1/message"
token = "env:CLICKATELL_API_KEY"
`, dataDir, hosts, ca, provider.URL("")))
}

// countingProvider accepts every request (proxytest's fake provider keeps
// the count).
func countingProvider(t *testing.T) *proxytest.Provider {
	var n atomic.Int64
	return proxytest.NewProvider(t, func(w http.ResponseWriter, _ proxytest.Received) {
		w.WriteHeader(http.StatusAccepted)
		fmt.Fprintf(w, `{"messages":[{"apiMessageId":"bin%d","accepted":true,"to":"15551234567","error":null}],"error":null}`, n.Add(1))
	})
}

var icEnv = []string{"CLICKATELL_API_KEY=key-SECRET-bin", "LEGACY_PW=" + icPass}

// TestInterceptThroughBinary: the real binary creates data_dir 0700 and an
// interception CA constrained to the [intercept] hosts; inside a tunnel, a
// request with unencoded spaces is answered 400 "ERR: 101" and audited as
// refused in mode intercept, and a good one is delivered; an absolute-form
// ftp:// request is refused with nothing sent. Neither stderr nor stdout
// holds the text, the query or the legacy password.
func TestInterceptThroughBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	provider := countingProvider(t)
	dir := t.TempDir()
	dataDir := filepath.Join(dir, "state", "postern")
	d := startDaemon(t, buildDockerBinary(t), dir, icEnv, "serve", "-config", interceptConfig(t, dir, dataDir, `"api.clickatell.com"`, provider))

	if fi, err := os.Stat(dataDir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("data_dir: %v, mode %v, want 0700", err, fi.Mode().Perm())
	}
	caPEM, err := os.ReadFile(filepath.Join(dataDir, "intercept-ca.crt"))
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(caPEM)
	ca, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if !ca.PermittedDNSDomainsCritical || strings.Join(ca.PermittedDNSDomains, ",") != "api.clickatell.com" {
		t.Errorf("interception CA constraints: critical %v, permitted %v", ca.PermittedDNSDomainsCritical, ca.PermittedDNSDomains)
	}

	query := "user=ise&password=" + icPass + "&to=15551234567&text="
	tunnelGet := func(requestLine string) (int, string) {
		raw, err := net.Dial("tcp", d.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer raw.Close()
		raw.SetDeadline(time.Now().Add(30 * time.Second))
		fmt.Fprint(raw, "CONNECT api.clickatell.com:443 HTTP/1.1\r\nHost: api.clickatell.com:443\r\n\r\n")
		br := bufio.NewReader(raw)
		resp, err := http.ReadResponse(br, &http.Request{Method: http.MethodConnect})
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("CONNECT: %v %v", resp, err)
		}
		roots := x509.NewCertPool()
		roots.AddCert(ca)
		tc := tls.Client(raw, &tls.Config{RootCAs: roots, ServerName: "api.clickatell.com"})
		fmt.Fprintf(tc, "%s\r\nHost: api.clickatell.com\r\n\r\n", requestLine)
		resp, err = http.ReadResponse(bufio.NewReader(tc), nil)
		if err != nil {
			t.Fatalf("no reply inside the tunnel: %v", err)
		}
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if status, body := tunnelGet("GET /http/sendmsg?" + query + icText + " HTTP/1.1"); status != http.StatusBadRequest ||
		body != "ERR: 101, Invalid or missing parameters\n" {
		t.Errorf("malformed request in the tunnel: %d %q, want 400 ERR: 101", status, body)
	}
	if len(provider.Requests()) != 0 {
		t.Fatal("the provider received the malformed request")
	}
	if status, body := tunnelGet("GET /http/sendmsg?" + query + strings.ReplaceAll(icText, " ", "+") + " HTTP/1.1"); status != http.StatusOK {
		t.Errorf("good request in the tunnel: %d %q", status, body)
	}

	conn, err := net.Dial("tcp", d.addr)
	if err != nil {
		t.Fatal(err)
	}
	conn.SetDeadline(time.Now().Add(30 * time.Second))
	fmt.Fprintf(conn, "GET ftp://api.clickatell.com/http/sendmsg?%sftp HTTP/1.1\r\nHost: api.clickatell.com\r\n\r\n", query)
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	conn.Close()
	if err != nil || resp.StatusCode != http.StatusBadRequest {
		t.Errorf("ftp:// absolute-form: %v %v, want 400", resp, err)
	}
	if n := len(provider.Requests()); n != 1 {
		t.Errorf("provider received %d requests, want 1 (the good one)", n)
	}

	waitFor(t, "three audit lines", func() bool { return strings.Count(d.stdout.String(), `"msg":"message"`) >= 3 })
	audit := d.stdout.String()
	if !strings.Contains(audit, `"mode":"intercept","method":"","outcome":"refused","status":400`) ||
		!strings.Contains(audit, `"mode":"intercept","method":"GET","outcome":"delivered"`) ||
		!strings.Contains(audit, `"mode":"proxy","method":"GET","outcome":"refused","status":400`) {
		t.Errorf("audit lacks the refused intercept, delivered intercept or refused ftp line:\n%s", audit)
	}
	for where, out := range map[string]string{"stderr": d.stderr.String(), "stdout": audit} {
		for _, leak := range []string{icText, "Kp4", icPass, query, "password is", "malformed HTTP version"} {
			if strings.Contains(out, leak) {
				t.Errorf("%s holds %q:\n%s", where, leak, out)
			}
		}
	}
}

// TestDataDirPermissionsThroughBinary: an existing data_dir open to others
// (0755) is tightened to 0700 at start-up; one postern cannot chmod stops
// start-up with an error saying what to do. As root every ordinary
// directory can be chmod-ed; procfs refuses any mode change on /proc/sys to
// everyone, and its 0555 is open to others, so it stands in for a
// directory owned by another user.
func TestDataDirPermissionsThroughBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := buildDockerBinary(t)
	provider := countingProvider(t)
	dir := t.TempDir()
	open := filepath.Join(dir, "open")
	if err := os.Mkdir(open, 0o755); err != nil {
		t.Fatal(err)
	}
	os.Chmod(open, 0o755) // whatever the umask
	startDaemon(t, bin, dir, icEnv, "serve", "-config", interceptConfig(t, dir, open, `"api.clickatell.com"`, provider))
	if fi, _ := os.Stat(open); fi.Mode().Perm() != 0o700 {
		t.Errorf("0755 data_dir is %o after start-up, want 700", fi.Mode().Perm())
	}

	if _, err := os.Stat("/proc/sys"); err != nil {
		t.Skip("no /proc/sys: no directory here refuses chmod")
	}
	cfg := interceptConfig(t, t.TempDir(), "/proc/sys", `"api.clickatell.com"`, provider)
	var stderr strings.Builder
	cmd := exec.Command(bin, "serve", "-config", cfg, "-listen", "127.0.0.1:0", "-admin-listen", "off")
	cmd.Dir, cmd.Env, cmd.Stderr = dir, icEnv, &stderr
	err := cmd.Run()
	if err == nil || cmd.ProcessState.ExitCode() != 1 {
		t.Fatalf("serve with an unfixable data_dir: %v, want exit 1; stderr:\n%s", err, &stderr)
	}
	for _, want := range []string{"/proc/sys", "0555", "cannot tighten", "chmod 700 /proc/sys"} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("stderr lacks %q:\n%s", want, &stderr)
		}
	}
}

// TestInterceptCAConstraintsReported: `postern check` and start-up say when
// [intercept] hosts lists a name the interception CA on disk does not
// permit (check exits 1) and when that CA has no name constraints at all
// (made by an earlier postern; check exits 0), each with how to make a new
// CA; neither replaces the CA.
func TestInterceptCAConstraintsReported(t *testing.T) {
	provider := countingProvider(t)
	for _, v := range icEnv {
		k, val, _ := strings.Cut(v, "=")
		t.Setenv(k, val)
	}
	two := `"api.clickatell.com", "platform.clickatell.com"`

	constrained := t.TempDir()
	if _, _, err := trust.LoadOrCreateInterceptCA(constrained, []string{"api.clickatell.com"}); err != nil {
		t.Fatal(err)
	}
	cfgDir := t.TempDir()
	code, stdout, stderr := runCLI(t, "check", "-config", interceptConfig(t, cfgDir, constrained, two, provider))
	if code != 1 {
		t.Errorf("check with a host outside the CA: exit %d, want 1\n%s%s", code, stdout, stderr)
	}
	for _, want := range []string{"platform.clickatell.com", "permits only api.clickatell.com", "intercept-ca.key", "import the new certificate"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("check stderr lacks %q:\n%s", want, stderr)
		}
	}
	if code, stdout, stderr := runCLI(t, "check", "-config", interceptConfig(t, cfgDir, constrained, `"api.clickatell.com"`, provider)); code != 0 ||
		strings.Contains(stdout+stderr, "name constraints") {
		t.Errorf("check with the CA's own hosts: exit %d\n%s%s", code, stdout, stderr)
	}

	legacy := t.TempDir()
	if _, _, err := trust.LoadOrCreateCA(legacy, "intercept", "postern interception CA"); err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(filepath.Join(legacy, "intercept-ca.crt"))
	code, stdout, stderr = runCLI(t, "check", "-config", interceptConfig(t, cfgDir, legacy, two, provider))
	if code != 0 || !strings.Contains(stdout, "no name constraints") || !strings.Contains(stdout, "intercept-ca.key") {
		t.Errorf("check with an unconstrained CA: exit %d, want 0 and a note\n%s%s", code, stdout, stderr)
	}

	if testing.Short() {
		return
	}
	bin := buildDockerBinary(t)
	d := startDaemon(t, bin, cfgDir, icEnv, "serve", "-config", interceptConfig(t, cfgDir, constrained, two, provider))
	for _, want := range []string{`"level":"ERROR"`, "does not permit every [intercept] host", `"outside":["platform.clickatell.com"]`, "intercept-ca.key"} {
		if !strings.Contains(d.stderr.String(), want) {
			t.Errorf("start-up log lacks %q:\n%s", want, d.stderr)
		}
	}
	d = startDaemon(t, bin, cfgDir, icEnv, "serve", "-config", interceptConfig(t, cfgDir, legacy, two, provider))
	for _, want := range []string{`"level":"WARN"`, "has no name constraints", "intercept-ca.key"} {
		if !strings.Contains(d.stderr.String(), want) {
			t.Errorf("start-up log lacks %q:\n%s", want, d.stderr)
		}
	}
	if after, _ := os.ReadFile(filepath.Join(legacy, "intercept-ca.crt")); string(after) != string(before) {
		t.Error("the unconstrained CA was replaced")
	}
}

// TestPlantedInterceptCARefused: an interception CA in data_dir that
// another user could have planted or replaced (a key owned by another
// user, or writable by group or others) stops start-up with an error that
// says what to do: whoever knows that key could read every tunnel. A key
// that others may only read is tightened to 0600 and used.
func TestPlantedInterceptCARefused(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	if os.Getuid() != 0 {
		t.Skip("needs root to give a file to another user")
	}
	bin := buildDockerBinary(t)
	provider := countingProvider(t)
	dir := t.TempDir()
	dataDir := filepath.Join(dir, "data")
	// A first start makes the CA, as postern's own.
	cfg := interceptConfig(t, dir, dataDir, `"api.clickatell.com"`, provider)
	stop := func(d *daemon) {
		t.Helper()
		d.cmd.Process.Signal(syscall.SIGTERM)
		waitExit(t, d)
	}
	stop(startDaemon(t, bin, dir, icEnv, "serve", "-config", cfg))
	key := filepath.Join(dataDir, "intercept-ca.key")

	serveFails := func(what string, wants ...string) {
		t.Helper()
		var stderr strings.Builder
		// Bounded: a postern that wrongly accepts the CA serves until killed.
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, bin, "serve", "-config", cfg, "-listen", "127.0.0.1:0", "-admin-listen", "off")
		cmd.Dir, cmd.Env, cmd.Stderr = dir, icEnv, &stderr
		if err := cmd.Run(); err == nil || cmd.ProcessState.ExitCode() != 1 {
			t.Fatalf("%s: serve: %v, want exit 1; stderr:\n%s", what, err, &stderr)
		}
		for _, want := range wants {
			if !strings.Contains(stderr.String(), want) {
				t.Errorf("%s: stderr lacks %q:\n%s", what, want, &stderr)
			}
		}
	}

	if err := os.Chown(key, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	serveFails("key owned by another user", key, "belongs to uid 65534", "make a new CA")
	if err := os.Chown(key, 0, 0); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(key, 0o666); err != nil {
		t.Fatal(err)
	}
	serveFails("world-writable key", key, "mode 0666", "make a new CA")

	if err := os.Chmod(key, 0o644); err != nil {
		t.Fatal(err)
	}
	stop(startDaemon(t, bin, dir, icEnv, "serve", "-config", cfg))
	if fi, err := os.Stat(key); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("a 0644 key should be tightened to 0600 and used: %v %v", fi.Mode().Perm(), err)
	}
}
