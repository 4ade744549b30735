package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/postern/postern/internal/testtool"
	"github.com/postern/postern/trust/trusttest"
)

// The tests in this file run the real binary, one test per command, and
// check its exit codes.

// runBin runs the postern binary in dir with env and returns its exit
// code, stdout and stderr.
func runBin(t *testing.T, dir string, env []string, args ...string) (int, string, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, buildDockerBinary(t), args...)
	cmd.Dir = dir
	cmd.Env = env
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		t.Fatalf("postern %v: %v", args, err)
	}
	return cmd.ProcessState.ExitCode(), stdout.String(), stderr.String()
}

func skipShort(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("builds the binary")
	}
}

// expect checks an exit code and that out holds every one of want.
func expect(t *testing.T, what string, code, wantCode int, out string, want ...string) {
	t.Helper()
	if code != wantCode {
		t.Errorf("%s: exit %d, want %d; output:\n%s", what, code, wantCode, out)
		return
	}
	for _, w := range want {
		if !strings.Contains(out, w) {
			t.Errorf("%s: output lacks %q:\n%s", what, w, out)
		}
	}
}

// TestCLIHelpAndVersion: --help, -h, -help and help list every command, one
// line each, on stdout with exit 0; COMMAND -h, COMMAND --help and help
// COMMAND print that command's usage; --version and -version print what
// version prints; unknown commands and flags are usage errors (exit 2).
func TestCLIHelpAndVersion(t *testing.T) {
	skipShort(t)
	dir := t.TempDir()
	var list string
	for _, arg := range []string{"--help", "-h", "-help", "help"} {
		code, stdout, stderr := runBin(t, dir, nil, arg)
		if code != 0 || stderr != "" {
			t.Errorf("postern %s: exit %d, stderr %q", arg, code, stderr)
		}
		for _, c := range commands() {
			if n := len(regexp.MustCompile(`(?m)^  `+c.name+` +\S.*$`).FindAllString(stdout, -1)); n != 1 {
				t.Errorf("postern %s lists %s on %d lines, want 1:\n%s", arg, c.name, n, stdout)
			}
		}
		if list != "" && stdout != list {
			t.Errorf("postern %s differs from postern --help", arg)
		}
		list = stdout
	}
	for _, c := range commands() {
		for _, args := range [][]string{{c.name, "-h"}, {c.name, "--help"}, {"help", c.name}} {
			code, stdout, _ := runBin(t, dir, nil, args...)
			expect(t, strings.Join(args, " "), code, 0, stdout, "Usage: postern "+c.name, "Exit codes: ")
		}
	}
	code, _, stderr := runBin(t, dir, nil, "sendsms")
	expect(t, "unknown command", code, 2, stderr, `postern: unknown command "sendsms"`, "  check ")
	code, _, stderr = runBin(t, dir, nil, "help", "sendsms")
	expect(t, "help of an unknown command", code, 2, stderr, `unknown command "sendsms"`)
	code, _, stderr = runBin(t, dir, nil, "check", "-verbose")
	expect(t, "unknown flag", code, 2, stderr, "flag provided but not defined: -verbose", "usage: postern check [-config FILE] [-skip-secrets] [FILE]")

	_, want, _ := runBin(t, dir, nil, "version")
	if !regexp.MustCompile(`^postern \S+ \(commit \S+, go1\.[^)]+\)\n$`).MatchString(want) {
		t.Errorf("postern version: %q", want)
	}
	for _, arg := range []string{"--version", "-version"} {
		if code, stdout, _ := runBin(t, dir, nil, arg); code != 0 || stdout != want {
			t.Errorf("postern %s: exit %d %q, want %q", arg, code, stdout, want)
		}
	}
	code, _, stderr = runBin(t, dir, nil, "version", "extra")
	expect(t, "version with an argument", code, 2, stderr, "takes no arguments")
}

// TestCLICheck: check reads -config, the file as its only argument (flags
// may follow it), else ./config.toml; -skip-secrets resolves no secret; a
// file with many mistakes is reported whole, sorted by line.
func TestCLICheck(t *testing.T) {
	skipShort(t)
	dir := t.TempDir()
	env := []string{"POSTERN_TEST_KEY=k-SECRET-123"}
	good := writeFile(t, dir, "good.toml", goodRoute)

	code, _, stderr := runBin(t, dir, env, "check")
	expect(t, "no config anywhere", code, 1, stderr, "postern check: no -config FILE given and no ./config.toml in the working directory")
	for _, args := range [][]string{{"check", "-config", good}, {"check", good}, {"check", good, "-skip-secrets"}} {
		code, stdout, stderr := runBin(t, dir, env, args...)
		expect(t, strings.Join(args, " "), code, 0, stdout+stderr, good+": OK.", `"clickatell" takes clickatell-http requests`)
	}
	writeFile(t, dir, "config.toml", goodRoute)
	code, stdout, stderr := runBin(t, dir, env, "check")
	expect(t, "./config.toml", code, 0, stdout+stderr, "config.toml: OK.")
	code, _, stderr = runBin(t, dir, env, "check", "-config", good, good)
	expect(t, "file twice", code, 2, stderr, "either as -config FILE or as the argument, not both")
	code, _, stderr = runBin(t, dir, env, "check", good, good)
	expect(t, "two files", code, 2, stderr, "takes one config file, got 2 arguments")
	code, _, stderr = runBin(t, dir, env, "check", filepath.Join(dir, "missing.toml"))
	expect(t, "missing file", code, 1, stderr, "missing.toml: no such file or directory")

	// Secrets: without -skip-secrets each is resolved and its absence is an
	// error; with it, only the form of each reference is checked.
	secrets := writeFile(t, dir, "secrets.toml", `[server]
proxy_user = "ise"
proxy_password = "file:/nonexistent/postern-proxy-password"
`+strings.Replace(goodRoute, "POSTERN_TEST_KEY", "POSTERN_CI_HAS_NO_SUCH_KEY", 1))
	code, stdout, stderr = runBin(t, dir, env, "check", secrets)
	expect(t, "unresolvable secrets", code, 1, stdout+stderr,
		"secrets.toml:3:1: proxy_password: reading secret file: open /nonexistent/postern-proxy-password",
		`secrets.toml:12:1: route "clickatell": token: environment variable POSTERN_CI_HAS_NO_SUCH_KEY is not set`)
	code, stdout, stderr = runBin(t, dir, env, "check", "-skip-secrets", secrets)
	expect(t, "-skip-secrets", code, 0, stdout+stderr, "secrets.toml: OK.", "token from env POSTERN_CI_HAS_NO_SUCH_KEY",
		"Secrets were not resolved (-skip-secrets)")
	bad := writeFile(t, dir, "bad-secret.toml", strings.Replace(goodRoute, "env:POSTERN_TEST_KEY", "env:", 1))
	code, stdout, stderr = runBin(t, dir, env, "check", "-skip-secrets", bad)
	expect(t, "-skip-secrets, malformed reference", code, 1, stdout+stderr, `bad-secret.toml:9:1: route "clickatell": token: "env:" needs a variable name`)

	// Five wrong types and two other mistakes: one run, sorted by line.
	writeFile(t, dir, "many.toml", `[server]
listen = 8080
max_body_bytes = "1MB"

[trust]
aia = "yes"

[limits]
daily_max = 1.5
allow_countries = "US"
`+goodRoute+`max_recipients = 700
tokne = "x"
`)
	code, stdout, stderr = runBin(t, dir, env, "check", "many.toml")
	if code != 1 || stdout != "" {
		t.Fatalf("many mistakes: exit %d, stdout %q", code, stdout)
	}
	want := []string{
		`many.toml:2:1: server.listen: wrong type: the value is an integer, want a string`,
		`many.toml:3:1: server.max_body_bytes: wrong type: the value is a string, want an integer`,
		`many.toml:6:1: trust.aia: wrong type: the value is a string, want a boolean`,
		`many.toml:9:1: limits.daily_max: wrong type: the value is a float, want an integer`,
		`many.toml:10:1: limits.allow_countries: wrong type: the value is a string, want an array`,
		`many.toml:20:1: route "clickatell": max_recipients must be between 1 and 600`,
		`many.toml:21:1: unknown key "route.tokne" (did you mean "token"?)`,
	}
	if got := strings.Split(strings.TrimSpace(stderr), "\n"); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("many mistakes:\n%s\nwant:\n%s", stderr, strings.Join(want, "\n"))
	}
	if strings.Contains(stdout+stderr, "k-SECRET-123") {
		t.Error("check output reveals a secret")
	}
}

// TestCLITranslate: translate reads -config, else ./config.toml.
func TestCLITranslate(t *testing.T) {
	skipShort(t)
	dir := t.TempDir()
	env := []string{"POSTERN_TEST_KEY=k-SECRET-123"}
	const u = "http://api.clickatell.com/http/sendmsg?to=15551234567&text=hi"
	code, _, stderr := runBin(t, dir, env, "translate", u)
	expect(t, "no config", code, 1, stderr, "no -config FILE given and no ./config.toml")
	path := writeFile(t, dir, "c.toml", goodRoute)
	code, stdout, _ := runBin(t, dir, env, "translate", "-config", path, u)
	expect(t, "-config", code, 0, stdout, "POST https://127.0.0.1:9/v1/message", "Authorization: <redacted>")
	writeFile(t, dir, "config.toml", goodRoute)
	code, stdout2, _ := runBin(t, dir, env, "translate", u)
	expect(t, "./config.toml", code, 0, stdout2, "POST https://127.0.0.1:9/v1/message")
	if stdout2 != stdout {
		t.Errorf("./config.toml and -config translate differently:\n%s\n%s", stdout2, stdout)
	}
	code, _, stderr = runBin(t, dir, env, "translate", "http://elsewhere.example/x?to=1")
	expect(t, "no route", code, 1, stderr, "no route matches")
	code, _, stderr = runBin(t, dir, env, "translate")
	expect(t, "no URL", code, 2, stderr, "takes one URL, got 0 arguments")
	if strings.Contains(stdout, "k-SECRET-123") {
		t.Error("translate reveals the token")
	}
}

// TestCLITrust: trust works with a config that has only [trust], from
// -config or ./config.toml, and without it falls back to the defaults
// (which do not know the test CA).
func TestCLITrust(t *testing.T) {
	skipShort(t)
	root := trusttest.NewCA(t)
	dir := t.TempDir()
	srv := trusttest.NewTLSServer(t, http.NotFoundHandler(), root.Intermediate(t).Leaf(t, trusttest.LeafOptions{}))
	u, _ := url.Parse(srv.URL)
	trustOnly := fmt.Sprintf("[trust]\nca_files = [%q]\n", root.WritePEM(t, dir))
	path := writeFile(t, dir, "trust-only.toml", trustOnly)

	code, stdout, stderr := runBin(t, dir, nil, "trust", "-config", path, u.Host)
	expect(t, "trust-only config", code, 0, stdout+stderr, "Verdict: TRUSTED: postern would send to 127.0.0.1")
	code, stdout, stderr = runBin(t, dir, nil, "trust", u.Host)
	expect(t, "defaults", code, 1, stdout+stderr, "Verdict: NOT TRUSTED")
	writeFile(t, dir, "config.toml", trustOnly)
	code, stdout, stderr = runBin(t, dir, nil, "trust", u.Host)
	expect(t, "./config.toml", code, 0, stdout+stderr, "Verdict: TRUSTED")
	// A config with routes whose tokens are not at hand works too.
	withRoute := writeFile(t, dir, "with-route.toml", trustOnly+goodRoute)
	code, stdout, stderr = runBin(t, dir, nil, "trust", "-config", withRoute, u.Host)
	expect(t, "route tokens not set", code, 0, stdout+stderr, "Verdict: TRUSTED")

	code, _, stderr = runBin(t, dir, nil, "trust")
	expect(t, "no host", code, 2, stderr, "takes one HOST[:PORT], got 0 arguments")
	code, _, stderr = runBin(t, dir, nil, "trust", "-config", filepath.Join(dir, "missing.toml"), u.Host)
	expect(t, "missing config", code, 1, stderr, "missing.toml")
}

// TestCLIReport: report's exit codes through the binary.
func TestCLIReport(t *testing.T) {
	skipShort(t)
	dir := t.TempDir()
	audit := writeFile(t, dir, "audit.log", `{"time":"2025-03-02T10:00:00Z","level":"INFO","msg":"message","client":"10.0.0.1","outcome":"delivered","status":200,"route":"r","provider":"clickatell-one","tls":"TLS 1.3","leaf_sha256":"abcd"}`+"\n")
	code, stdout, _ := runBin(t, dir, nil, "report", audit, "-since", "2025-03-01")
	expect(t, "report", code, 0, stdout, "lines:     1", "1  delivered")
	code, stdout, _ = runBin(t, dir, nil, "report", "-json", audit)
	expect(t, "report -json", code, 0, stdout, `"lines": 1`)
	code, _, stderr := runBin(t, dir, nil, "report", filepath.Join(dir, "missing.log"))
	expect(t, "missing file", code, 1, stderr, "missing.log")
	code, _, stderr = runBin(t, dir, nil, "report")
	expect(t, "no file", code, 2, stderr, "needs at least one audit file")
	code, _, stderr = runBin(t, dir, nil, "report", "-since", "yesterday", audit)
	expect(t, "bad -since", code, 2, stderr, "postern report:")
}

// freeLoopbackAddr returns a loopback address nothing listens on now, for a
// config that must name its own admin_listen.
func freeLoopbackAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// TestCLIReloadAndHealth: reload and health find postern through the
// config's admin_listen (-config or ./config.toml) or -url; reload exits 0
// when everything applied, 3 when a change needs a restart (and says which,
// while the rest applies), 1 when the config was rejected or nothing
// answers.
func TestCLIReloadAndHealth(t *testing.T) {
	skipShort(t)
	g := newGatedProvider(t)
	g.open()
	dir := t.TempDir()
	admin := freeLoopbackAddr(t)
	serverTable := fmt.Sprintf("admin_listen = %q", admin)
	cfg := opsConfig(t, dir, g, "/v1/message", serverTable)
	src, _ := os.ReadFile(cfg)
	writeFile(t, dir, "config.toml", string(src))
	d := startDaemon(t, buildDockerBinary(t), dir, opsEnv, "serve", "-admin-listen", admin)
	send := func() string {
		if r := <-sendAsync(d, "hello"); r.status != 200 {
			t.Fatalf("send: %+v", r)
		}
		return <-g.arrived
	}

	for _, args := range [][]string{{"health"}, {"health", "-config", cfg}, {"health", "-url", "http://" + admin + "/readyz"}} {
		code, stdout, stderr := runBin(t, dir, nil, args...)
		expect(t, strings.Join(args, " "), code, 0, stdout+stderr)
	}

	code, stdout, stderr := runBin(t, dir, nil, "reload")
	expect(t, "reload, nothing changed", code, 0, stdout, "reloaded config.toml: 1 routes\n")
	if strings.Contains(stdout+stderr, "restart needed") {
		t.Errorf("nothing needs a restart:\n%s%s", stdout, stderr)
	}

	writeFile(t, dir, "config.toml", strings.Replace(string(src), "/v1/message", "/v2/message", 1))
	code, stdout, _ = runBin(t, dir, nil, "reload", "-config", filepath.Join(dir, "config.toml"))
	expect(t, "reload, endpoint changed", code, 0, stdout, "reloaded")
	if p := send(); p != "/v2/message" {
		t.Errorf("after reload the provider got %s, want /v2/message", p)
	}

	moved := strings.Replace(string(src), "/v1/message", "/v3/message", 1)
	moved = strings.Replace(moved, serverTable, serverTable+"\nlisten = \"127.0.0.1:1\"", 1)
	writeFile(t, dir, "config.toml", moved)
	code, stdout, _ = runBin(t, dir, nil, "reload")
	expect(t, "reload, listen changed", code, 3, stdout, "reloaded config.toml: 1 routes\nlisten changed: restart needed\n")
	if p := send(); p != "/v3/message" {
		t.Errorf("a change needing a restart must not hold back the rest: provider got %s, want /v3/message", p)
	}

	writeFile(t, dir, "config.toml", moved+"\nbogus = 1\n")
	code, _, stderr = runBin(t, dir, nil, "reload")
	expect(t, "reload, bad config", code, 1, stderr, `config.toml:18:1: unknown key "route.bogus"`, "previous configuration still serving")
	if p := send(); p != "/v3/message" {
		t.Errorf("after a rejected reload the provider got %s, want /v3/message", p)
	}

	dead := freeLoopbackAddr(t)
	code, _, stderr = runBin(t, dir, nil, "reload", "-url", "http://"+dead+"/-/reload")
	expect(t, "reload, nothing listening", code, 1, stderr, "postern reload:")
	code, _, stderr = runBin(t, dir, nil, "health", "-url", "http://"+dead+"/healthz")
	expect(t, "health, nothing listening", code, 1, stderr, "postern health:")
	off := writeFile(t, dir, "off.toml", "[server]\nadmin_listen = \"off\"\n")
	for _, cmd := range []string{"reload", "health"} {
		code, _, stderr = runBin(t, dir, nil, cmd, "-config", off)
		expect(t, cmd+" with the admin listener off", code, 1, stderr, `admin_listen = "off": the admin listener is disabled`)
		code, _, stderr = runBin(t, dir, nil, cmd, "now")
		expect(t, cmd+" with an argument", code, 2, stderr, "takes no arguments")
	}
}

// TestAdminURL: where reload and health look for postern.
func TestAdminURL(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct{ listen, want string }{
		{"", "http://127.0.0.1:9090/x"},
		{`admin_listen = "10.0.0.5:9999"`, "http://10.0.0.5:9999/x"},
		{`admin_listen = "0.0.0.0:9091"`, "http://127.0.0.1:9091/x"},
		{`admin_listen = ":9092"`, "http://127.0.0.1:9092/x"},
		{`admin_listen = "[::]:9093"`, "http://[::1]:9093/x"},
	} {
		// The rest of the file is broken: only admin_listen matters.
		path := writeFile(t, dir, "c.toml", "[server]\n"+tc.listen+"\nlisten = 5\n[[route]]\nbogus = 1\n")
		if got, err := adminURL("", path, "/x"); err != nil || got != tc.want {
			t.Errorf("%s: %q %v, want %q", tc.listen, got, err, tc.want)
		}
	}
	if got, _ := adminURL("http://h:1/y", filepath.Join(dir, "c.toml"), "/x"); got != "http://h:1/y" {
		t.Errorf("-url must win: %q", got)
	}
}

// TestCLIServeLogFlags: -log-format text and -log-level shape the
// operational log on stderr; the audit line stays JSON either way.
func TestCLIServeLogFlags(t *testing.T) {
	skipShort(t)
	dir := t.TempDir()
	d := startDaemon(t, buildDockerBinary(t), dir, nil, "serve", "-sandbox", "-log-format", "text", "-log-level", "debug")
	if r := <-sendAsync(d, "hello"); r.status != 200 || r.body != "ID: sandbox-1\n" {
		t.Fatalf("sandbox send: %+v", r)
	}
	waitFor(t, "the audit line", func() bool { return strings.Contains(d.stdout.String(), `"outcome"`) })
	if !regexp.MustCompile(`(?m)^\{"time":"[^"]+","level":"INFO","msg":"message",.*"route":"sandbox"`).MatchString(d.stdout.String()) {
		t.Errorf("the audit line must stay JSON with -log-format text:\n%s", d.stdout)
	}
	logs := d.stderr.String()
	for _, w := range []string{`level=INFO msg="postern listening"`, `level=WARN msg="sandbox mode:`, `level=DEBUG msg=route route=sandbox inbound=clickatell-http`} {
		if !strings.Contains(logs, w) {
			t.Errorf("text log lacks %q:\n%s", w, logs)
		}
	}
	if strings.Contains(logs, `{"time"`) {
		t.Errorf("-log-format text, yet JSON on stderr:\n%s", logs)
	}

	// Levels, on a serve that cannot listen: warn keeps the sandbox
	// warnings and the error, error keeps only the error, info (the
	// default) hides debug.
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	for _, tc := range []struct {
		level      string
		want, hide []string
	}{
		{"", []string{`"level":"WARN"`, `"level":"ERROR","msg":"cannot listen"`}, []string{`"level":"DEBUG"`}},
		{"warn", []string{`"level":"WARN"`, `"level":"ERROR","msg":"cannot listen"`}, []string{`"level":"INFO"`, `"level":"DEBUG"`}},
		{"error", []string{`"level":"ERROR","msg":"cannot listen"`}, []string{`"level":"WARN"`, `"level":"INFO"`}},
	} {
		args := []string{"serve", "-sandbox", "-listen", busy.Addr().String(), "-admin-listen", "off"}
		if tc.level != "" {
			args = append(args, "-log-level", tc.level)
		}
		code, _, stderr := runBin(t, dir, nil, args...)
		expect(t, "-log-level "+tc.level, code, 1, stderr, tc.want...)
		for _, h := range tc.hide {
			if strings.Contains(stderr, h) {
				t.Errorf("-log-level %s: stderr has %s:\n%s", tc.level, h, stderr)
			}
		}
	}

	code, _, stderr := runBin(t, dir, nil, "serve", "-sandbox", "-log-format", "yaml")
	expect(t, "bad -log-format", code, 2, stderr, `-log-format "yaml": want json or text`)
	code, _, stderr = runBin(t, dir, nil, "serve", "-sandbox", "-log-level", "verbose")
	expect(t, "bad -log-level", code, 2, stderr, `-log-level "verbose": want debug, info, warn or error`)
	code, _, stderr = runBin(t, dir, nil, "serve", "extra")
	expect(t, "serve with an argument", code, 2, stderr, `takes no arguments, got "extra"`)
}

// TestCLIServeReadsDefaultConfig: without -config, serve reads
// ./config.toml when there is one (TestServeWithoutConfigRunsSandbox covers
// the sandbox when there is not).
func TestCLIServeReadsDefaultConfig(t *testing.T) {
	skipShort(t)
	dir := t.TempDir()
	writeFile(t, dir, "config.toml", `
[[route]]
name = "one"
match_path = "/http/sendmsg"
inbound = "clickatell-http"
provider = "sandbox"

[[route]]
name = "two"
match_path = "/two"
inbound = "clickatell-http"
provider = "sandbox"
`)
	d := startDaemon(t, buildDockerBinary(t), dir, nil, "serve")
	if !strings.Contains(d.stderr.String(), `"config":"config.toml","routes":2`) {
		t.Errorf("serve should read ./config.toml:\n%s", d.stderr)
	}
	if strings.Contains(d.stderr.String(), "embedded sandbox") {
		t.Errorf("serve ran the embedded sandbox although ./config.toml exists:\n%s", d.stderr)
	}
}

// TestCLICompletion: each script is valid for its shell and completes
// commands, a command's flags and their values in that shell. bash is
// always there; zsh and fish are tested where installed (.ci/run installs
// them).
func TestCLICompletion(t *testing.T) {
	skipShort(t)
	dir := t.TempDir()
	writeFile(t, dir, "postern-test.toml", "")
	script := func(shell string) string {
		code, stdout, stderr := runBin(t, dir, nil, "completion", shell)
		if code != 0 || stderr != "" {
			t.Fatalf("completion %s: exit %d %s", shell, code, stderr)
		}
		return writeFile(t, dir, "postern."+shell, stdout)
	}
	shell := func(name string, args ...string) string {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, name, args...)
		cmd.Dir = dir
		cmd.Env = []string{"HOME=" + dir, "PATH=" + os.Getenv("PATH"), "TERM=dumb"}
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s %v: %v\n%s", name, args, err, out)
		}
		return string(out)
	}

	bash := script("bash")
	shell("bash", "-n", bash)
	got := shell("bash", "-c", `source `+strconv.Quote(bash)+`
comp() { COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); COMPREPLY=(); _postern; echo "${COMPREPLY[*]}"; }
comp postern ch
comp postern check -
comp postern check -config postern-test.t
comp postern serve -log-level w
comp postern -log-f
comp postern completion ""
comp postern help rel
comp postern reload -url ""
`)
	want := "check\n-config -skip-secrets -h\npostern-test.toml\nwarn\n-log-format\nbash zsh fish\nreload\n\n"
	if got != want {
		t.Errorf("bash completions:\n%q\nwant:\n%q", got, want)
	}

	if _, err := exec.LookPath("fish"); err != nil {
		missingShell(t, "fish")
	} else {
		fish := script("fish")
		shell("fish", "--no-execute", fish)
		got := shell("fish", "-c", `source `+strconv.Quote(fish)+`
complete -C"postern ch"; complete -C"postern check -s"; complete -C"postern serve -log-format "; complete -C"postern completion z"`)
		for _, w := range []string{"check\tvalidate a config and summarise its routes\n", "-skip-secrets\t", "json\t", "text\t", "zsh\n"} {
			if !strings.Contains(got, w) {
				t.Errorf("fish completions lack %q:\n%s", w, got)
			}
		}
	}

	if _, err := exec.LookPath("zsh"); err != nil {
		missingShell(t, "zsh")
	} else {
		zsh := script("zsh")
		shell("zsh", "-n", zsh)
		// Real completion needs an interactive zsh: drive one through a
		// pseudo-terminal and wait (bounded by the context) for the
		// listing of check's flags.
		got := shell("zsh", "-f", "-c", `zmodload zsh/zpty
zpty z zsh -f -i
zpty -w z 'PS1="> "; autoload -U compinit; compinit -u -D; source `+zsh+`'
zpty -w -n z $'postern check -\t'
zpty -r z out '*skip-secrets*'
print -r -- $out
zpty -d z`)
		for _, w := range []string{"-config", "-skip-secrets"} {
			if !strings.Contains(got, w) {
				t.Errorf("zsh completion of 'postern check -' lacks %s:\n%s", w, got)
			}
		}
	}

	code, _, stderr := runBin(t, dir, nil, "completion", "tcsh")
	expect(t, "unknown shell", code, 2, stderr, "name one shell: bash, zsh, fish")
	code, _, stderr = runBin(t, dir, nil, "completion")
	expect(t, "no shell", code, 2, stderr, "name one shell")
}

// missingShell notes that a shell's completion is not tested here; in CI
// (which installs zsh and fish) that is a failure, not a pass by omission.
func missingShell(t *testing.T, name string) {
	t.Helper()
	if testtool.InCI() {
		t.Errorf("%s is not installed; in CI (CI=true) its completion must be tested: .ci/run installs it", name)
		return
	}
	t.Logf("%s not installed: its completion is not tested", name)
}
