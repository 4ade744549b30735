package main

import (
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// runBinary runs the built postern and returns its exit code and output.
func runBinary(t *testing.T, bin, dir string, env []string, args ...string) (int, string, string) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Dir, cmd.Env = dir, env
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		return exit.ExitCode(), out.String(), errOut.String()
	}
	if err != nil {
		t.Fatal(err)
	}
	return 0, out.String(), errOut.String()
}

// TestAuditChainThroughBinary: the real binary chains its audit file and
// stdout across a restart, a rotation with SIGHUP and a chain_key change;
// `postern report -verify` passes with the old and new keys, fails naming
// the key's fingerprint with only the new one, and names an edited line by
// file and line; `report -html` writes the page; `check` says how the
// trail is chained. No key is ever printed.
func TestAuditChainThroughBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	const key1, key2 = "first-chain-key-aaaaaaaaaaaa", "second-chain-key-bbbbbbbbbbb"
	g := newGatedProvider(t)
	g.open()
	dir := t.TempDir()
	auditPath := filepath.Join(dir, "audit.log")
	keyFile := writeFile(t, dir, "chain.key", key1+"\n")
	base, _ := os.ReadFile(opsConfig(t, dir, g, "/v1/message", ""))
	withKey := func(name, file string) string {
		return writeFile(t, dir, name, string(base)+fmt.Sprintf("\n[audit]\nfile = %q\nchain_key = %q\n", auditPath, "file:"+file))
	}
	cfg := withKey("postern.toml", keyFile)
	bin := buildDockerBinary(t)
	env := append([]string{}, opsEnv...)
	send := func(d *daemon, text string) {
		t.Helper()
		if r := <-sendAsync(d, text); r.status != 200 {
			t.Fatalf("%s: %+v", text, r)
		}
	}
	messages := func(path string) int { b, _ := os.ReadFile(path); return strings.Count(string(b), `"msg":"message"`) }
	stop := func(d *daemon) {
		t.Helper()
		if err := d.cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		if code := waitExit(t, d); code != 0 {
			t.Fatalf("exit %d", code)
		}
	}

	d := startDaemon(t, bin, dir, env, "serve", "-config", cfg)
	send(d, "one")
	send(d, "two")
	waitFor(t, "two audit lines", func() bool { return messages(auditPath) == 2 })
	stop(d)
	stdout1 := d.stdout.String()

	d = startDaemon(t, bin, dir, env, "serve", "-config", cfg) // restart: appends, linked
	send(d, "three")
	waitFor(t, "three audit lines", func() bool { return messages(auditPath) == 3 })
	// Rotation and a new key in one SIGHUP, as an operator might do.
	if err := os.Rename(auditPath, auditPath+".1"); err != nil {
		t.Fatal(err)
	}
	oldKeyFile := writeFile(t, dir, "old.key", key1+"\n")
	writeFile(t, dir, "chain.key", key2+"\n")
	if err := d.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the SIGHUP reload", func() bool { return strings.Contains(d.stderr.String(), `"msg":"config reloaded"`) })
	send(d, "four")
	waitFor(t, "the audit line in the new file", func() bool { return messages(auditPath) == 1 })
	stop(d)
	oldCfg := withKey("old.toml", oldKeyFile)
	files := []string{auditPath + ".1", auditPath}

	all := []string{}
	check := func(what string, code int, stdout, stderr string, want int) {
		t.Helper()
		all = append(all, stdout, stderr)
		if code != want {
			t.Errorf("%s: exit %d, want %d\n%s%s", what, code, want, stdout, stderr)
		}
	}
	code, out, errOut := runBinary(t, bin, dir, env, append([]string{"report", "-verify", "-config", oldCfg, "-config", cfg}, files...)...)
	check("verify with both keys", code, out, errOut, 0)
	if !strings.Contains(out, "chain:     intact") || !strings.Contains(out, "HMAC-SHA256 of") || strings.Contains(out, "NOT verified") {
		t.Errorf("verify with both keys:\n%s", out)
	}
	code, out, errOut = runBinary(t, bin, dir, env, append([]string{"report", "-verify", "-config", cfg}, files...)...)
	check("verify with the new key only", code, out, errOut, 1)
	if !strings.Contains(out, "wrong key") {
		t.Errorf("the new key alone does not say wrong key:\n%s", out)
	}
	// No key at all: structure only, said plainly.
	code, out, errOut = runBinary(t, bin, t.TempDir(), env, append([]string{"report", "-verify"}, files...)...)
	check("verify without key", code, out, errOut, 0)
	if !strings.Contains(out, "NOT verified because no chain_key was given") {
		t.Errorf("without key:\n%s", out)
	}
	// The console's copy is a chain of its own.
	stdoutFile := writeFile(t, dir, "stdout1.log", stdout1)
	code, out, errOut = runBinary(t, bin, dir, env, "report", "-verify", "-config", cfg, "-config", oldCfg, stdoutFile)
	check("verify stdout", code, out, errOut, 0)

	// gzip the rotated file; then edit a line of it.
	raw, _ := os.ReadFile(auditPath + ".1")
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(raw)
	zw.Close()
	writeFile(t, dir, "audit.log.1.gz", gz.String())
	code, out, errOut = runBinary(t, bin, dir, env, "report", "-verify", "-config", oldCfg, "-config", cfg, auditPath+".1.gz", auditPath)
	check("verify gzipped", code, out, errOut, 0)
	lines := strings.SplitAfter(string(raw), "\n")
	lines[2] = strings.Replace(lines[2], `"status":200`, `"status":202`, 1)
	writeFile(t, dir, "audit.log.1", strings.Join(lines, ""))
	code, out, errOut = runBinary(t, bin, dir, env, append([]string{"report", "-verify", "-config", oldCfg, "-config", cfg}, files...)...)
	check("verify an edited file", code, out, errOut, 1)
	if !strings.Contains(out, auditPath+".1:3: edited line") {
		t.Errorf("the edit is not named by file and line:\n%s", out)
	}

	page := filepath.Join(dir, "report.html")
	code, out, errOut = runBinary(t, bin, dir, env, "report", "-html", page, "-config", oldCfg, "-config", cfg, auditPath+".1.gz", auditPath)
	check("report -html", code, out, errOut, 0)
	html, _ := os.ReadFile(page)
	if !strings.Contains(out, "4 messages from ") || !strings.Contains(string(html), "every one left over TLS ≥ 1.2 to a verified host; chain intact.") {
		t.Errorf("report -html: %s", out)
	}
	code, out, errOut = runBinary(t, bin, dir, env, "check", "-config", cfg)
	check("check", code, out, errOut, 0)
	if !strings.Contains(out, "Audit chain: HMAC-SHA256 keyed with [audit] chain_key from file "+keyFile) {
		t.Errorf("check does not say how the trail is chained:\n%s", out)
	}
	code, out, errOut = runBinary(t, bin, dir, env, "check", "-config", opsConfig(t, dir, g, "/v1/message", ""))
	check("check without key", code, out, errOut, 0)
	if !strings.Contains(out, "Audit chain: plain SHA-256 (no [audit] chain_key)") {
		t.Errorf("check without chain_key:\n%s", out)
	}
	all = append(all, string(html), d.stderr.String(), d.stdout.String(), stdout1)
	for _, f := range files {
		b, _ := os.ReadFile(f)
		all = append(all, string(b))
	}
	for _, s := range all {
		if strings.Contains(s, key1) || strings.Contains(s, key2) {
			t.Fatalf("a chain key was printed:\n%s", s)
		}
	}
}
