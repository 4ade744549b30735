package main

import (
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
)

// TestServeSMTP: `postern serve` with [smtp] listens for mail beside HTTP,
// sends a mail to <number>@<domain> as the provider POST, writes the
// message's audit line with mode smtp, reloads on SIGHUP, and `postern
// report` counts the SMTP message with the rest.
func TestServeSMTP(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := buildDockerBinary(t)
	var mu sync.Mutex
	var got []string
	provider := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		got = append(got, string(b))
		mu.Unlock()
		w.WriteHeader(http.StatusAccepted)
		io.WriteString(w, `{"messages":[{"apiMessageId":"smtp0001","accepted":true,"to":"15551234567","error":null}],"error":null}`)
	}))
	defer provider.Close()
	dir := t.TempDir()
	ca := writeFile(t, dir, "ca.pem", string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: provider.Certificate().Raw})))
	auditFile := filepath.Join(dir, "audit.log")
	cfg := writeFile(t, dir, "postern.toml", fmt.Sprintf(`
[trust]
ca_files = [%q]

[audit]
file = %q

[smtp]
listen = "127.0.0.1:0"
hostname = "postern.test"

[[route]]
name = "ise-mail"
inbound = "smtp"
match_domain = "sms.example.org"
provider = "clickatell-one"
endpoint = "%s/v1/message"
token = "env:CLICKATELL_API_KEY"
`, ca, auditFile, provider.URL))
	env := []string{"CLICKATELL_API_KEY=key-SECRET-7"}
	d := startDaemon(t, bin, dir, env, "serve", "-config", cfg)
	if d.smtp == "" || d.smtp == "off" {
		t.Fatalf("no SMTP listener in the start-up line:\n%s", d.stderr)
	}
	msg := "From: ise@example.org\r\nSubject: x\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nYour code: 4711 & more\r\n"
	sendTo := func(rcpt string) error {
		c, err := smtp.Dial(d.smtp) // ISE's mail is plaintext: no STARTTLS here
		if err != nil {
			return err
		}
		defer c.Close()
		return c.SendMail("ise@example.org", []string{rcpt}, strings.NewReader(msg))
	}
	send := func() error { return sendTo("15551234567@sms.example.org") }
	if err := send(); err != nil {
		t.Fatalf("sending: %v", err)
	}
	mu.Lock()
	if len(got) != 1 || !strings.Contains(got[0], `"content":"Your code: 4711 & more"`) {
		t.Errorf("provider got %q", got)
	}
	mu.Unlock()
	// A reload keeps the SMTP listener serving.
	if err := d.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(d.stderr.String(), "config reloaded") && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if err := send(); err != nil {
		t.Fatalf("sending after reload: %v", err)
	}
	if err := sendTo("victim@evil.example"); err == nil ||
		!strings.Contains(err.Error(), "Relaying denied") {
		t.Errorf("relay attempt: %v, want 550 5.7.1 Relaying denied", err)
	}
	// The audit file is written by a queue: wait for the three lines.
	var out, errOut strings.Builder
	for time.Now().Before(deadline) {
		out.Reset()
		if code := run([]string{"report", auditFile}, &out, &errOut); code != 0 {
			t.Fatalf("report: exit %d: %s", code, errOut.String())
		}
		if strings.Contains(out.String(), "lines:     3") {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	for _, want := range []string{"lines:     3", "2  delivered", "2  ise-mail", "1  relaying denied"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, out.String())
		}
	}
	logs := d.stderr.String() + d.stdout.String()
	for _, secret := range []string{"key-SECRET-7", "4711", "15551234567"} {
		if strings.Contains(logs, secret) {
			t.Errorf("logs reveal %q:\n%s", secret, logs)
		}
	}
}
