package proxy_test

import (
	"encoding/base64"
	"fmt"
	"strings"
	"testing"
)

// TestSMTP_NeverAnOpenRelay: without relay, every recipient no route takes
// — another domain, the percent hack, a source route to another domain, a
// quoted local part smuggling an address — is refused at RCPT, and the
// provider gets nothing.
func TestSMTP_NeverAnOpenRelay(t *testing.T) {
	fp := newFakeProvider(t, oneAPIReply())
	p := startSMTP(t, smtpConfig(fp.CAFile(t), fp.URL("/messages"), "", "", ""), smtpEnv, nil)
	c := dialSMTP(t, p.SMTPAddr)
	c.greet()
	c.expect("MAIL FROM:<"+iseSender+">", 250, "")
	for _, tc := range []struct {
		rcpt     string
		code     int
		enhanced string
	}{
		{"<victim@evil.example>", 550, "5.7.1"},
		{"<" + smtpNumber + "@evil.example>", 550, "5.7.1"},
		{"<" + smtpNumber + "@sms.example.org.evil.example>", 550, "5.7.1"},
		{"<victim%evil.example@" + smsDomain + ">", 550, "5.1.1"},
		{"<" + smtpNumber + "%evil.example@" + smsDomain + ">", 550, "5.1.1"},
		{"<@" + smsDomain + ":victim@evil.example>", 550, "5.7.1"},
		{"<\"victim@evil.example\"@" + smsDomain + ">", 550, "5.1.1"},
		{"<\"victim\"@evil.example>", 550, "5.7.1"},
		{"<postmaster>", 550, "5.7.1"},
		{"<guest@" + smsDomain + ">", 550, "5.1.1"},
	} {
		c.expect("RCPT TO:"+tc.rcpt, tc.code, tc.enhanced)
	}
	if code, _ := c.cmd("DATA"); code/100 != 5 {
		t.Errorf("DATA without an accepted recipient: %d, want 5xx", code)
	}
	c.expect("QUIT", 221, "")
	if n := len(fp.Requests()); n != 0 {
		t.Fatalf("provider received %d requests", n)
	}
	lines := smtpAuditLines(t, p.postern)
	if len(lines) != 10 {
		t.Fatalf("%d smtp audit lines, want one per refused RCPT", len(lines))
	}
	for _, l := range lines {
		if l["outcome"] != "refused" || l["method"] != "RCPT" || l["status"] == 250.0 {
			t.Errorf("audit line %v", l)
		}
	}
	mustNotContain(t, "audit", p.Audit.String(), "victim")
}

// TestSMTP_ClientNotAllowed: a client outside allow_clients is refused
// with 554 5.7.1 before the greeting.
func TestSMTP_ClientNotAllowed(t *testing.T) {
	fp := newFakeProvider(t, oneAPIReply())
	p := startSMTP(t, smtpConfig(fp.CAFile(t), fp.URL("/messages"), `allow_clients = ["192.0.2.0/24"]`, "", ""), smtpEnv, nil)
	c := dialSMTP(t, p.SMTPAddr)
	if code, msg := c.read(); code != 554 || !strings.HasPrefix(msg, "5.7.1") {
		t.Fatalf("greeting: %d %s, want 554 5.7.1", code, msg)
	}
	if _, err := c.tp.ReadLine(); err == nil {
		t.Error("connection still open after the refusal")
	}
	lines := smtpAuditLines(t, p.postern)
	if len(lines) != 1 || lines[0]["method"] != "CONN" || lines[0]["status"] != 554.0 {
		t.Fatalf("audit: %v", lines)
	}
	if len(fp.Requests()) != 0 {
		t.Fatal("provider received a request")
	}
}

// TestSMTP_BadInput: commands out of order, unknown commands, oversize
// messages, too many recipients, bare LF, over-long lines, a bad number
// and a guardrail refusal get their standard codes, and nothing is sent.
func TestSMTP_BadInput(t *testing.T) {
	fp := newFakeProvider(t, oneAPIReply())
	p := startSMTP(t, smtpConfig(fp.CAFile(t), fp.URL("/messages"), "", "max_message_bytes = 2048",
		"max_recipients = 100"), smtpEnv, nil)
	t.Run("sequence and syntax", func(t *testing.T) {
		c := dialSMTP(t, p.SMTPAddr)
		c.read()
		c.expect("MAIL FROM:<"+iseSender+">", 502, "5.5.1") // before EHLO
		c.expect("EHLO ise.example.org", 250, "")
		c.expect("RCPT TO:<"+smtpNumber+"@"+smsDomain+">", 502, "5.5.1") // before MAIL
		c.expect("DATA", 502, "5.5.1")
		c.expect("XYZZ", 500, "5.5.2")
		c.expect("XYZZY", 501, "5.5.2")
		c.expect("AUTH PLAIN "+base64.StdEncoding.EncodeToString([]byte("\x00u\x00p")), 523, "5.7.10") // no TLS
		c.expect("MAIL FROM:<"+iseSender+"> SIZE=4096", 552, "5.3.4")
		c.expect("QUIT", 221, "")
	})
	t.Run("oversize data", func(t *testing.T) {
		c := dialSMTP(t, p.SMTPAddr)
		c.greet()
		c.expect("MAIL FROM:<"+iseSender+">", 250, "")
		c.expect("RCPT TO:<"+smtpNumber+"@"+smsDomain+">", 250, "")
		big := strings.Repeat(strings.Repeat("x", 70)+"\r\n", 60)
		if code, msg := c.data(mailData(big)); code != 552 || !strings.HasPrefix(msg, "5.3.4") {
			t.Fatalf("oversize: %d %s, want 552 5.3.4", code, msg)
		}
	})
	t.Run("101 recipients", func(t *testing.T) {
		c := dialSMTP(t, p.SMTPAddr)
		c.greet()
		c.expect("MAIL FROM:<"+iseSender+">", 250, "")
		for i := range 100 {
			c.expect(fmt.Sprintf("RCPT TO:<1555123%04d@%s>", i, smsDomain), 250, "")
		}
		c.expect("RCPT TO:<15551239999@"+smsDomain+">", 452, "4.5.3")
		c.expect("RSET", 250, "")
		c.expect("QUIT", 221, "")
	})
	t.Run("bare LF", func(t *testing.T) {
		c := dialSMTP(t, p.SMTPAddr)
		c.greet()
		c.expect("MAIL FROM:<"+iseSender+">", 250, "")
		c.expect("RCPT TO:<"+smtpNumber+"@"+smsDomain+">", 250, "")
		if code, msg := c.data("Subject: x\r\n\r\nline\nsmuggled\r\n"); code != 550 || !strings.HasPrefix(msg, "5.6.0") {
			t.Fatalf("bare LF: %d %s, want 550 5.6.0", code, msg)
		}
	})
	t.Run("over-long line", func(t *testing.T) {
		c := dialSMTP(t, p.SMTPAddr)
		c.greet()
		c.expect("NOOP "+strings.Repeat("a", 2100), 500, "5.4.0")
	})
	t.Run("empty text", func(t *testing.T) {
		c := dialSMTP(t, p.SMTPAddr)
		c.greet()
		c.expect("MAIL FROM:<"+iseSender+">", 250, "")
		c.expect("RCPT TO:<"+smtpNumber+"@"+smsDomain+">", 250, "")
		if code, msg := c.data(mailData("   ")); code != 550 || !strings.HasPrefix(msg, "5.6.0") {
			t.Fatalf("empty: %d %s, want 550 5.6.0", code, msg)
		}
		lines := smtpAuditLines(t, p.postern)
		if last := lines[len(lines)-1]; last["code"] != "107" || last["status"] != 550.0 {
			t.Errorf("audit line %v, want legacy code 107", last)
		}
	})
	t.Run("premium number at RCPT", func(t *testing.T) {
		c := dialSMTP(t, p.SMTPAddr)
		c.greet()
		c.expect("MAIL FROM:<"+iseSender+">", 250, "")
		c.expect("RCPT TO:<+19005550123@"+smsDomain+">", 550, "5.7.1")
		c.expect("RCPT TO:<12@"+smsDomain+">", 550, "5.1.1")
	})
	if n := len(fp.Requests()); n != 0 {
		t.Fatalf("provider received %d requests", n)
	}
}

// TestSMTP_RateLimitAtRCPT: per_number is checked when the recipient is
// named, so the refused one costs no DATA transfer.
func TestSMTP_RateLimitAtRCPT(t *testing.T) {
	fp := newFakeProvider(t, oneAPIReply())
	cfg := strings.Replace(smtpConfig(fp.CAFile(t), fp.URL("/messages"), "", "", ""), `per_number = "off"`, `per_number = "1/1h"`, 1)
	p := startSMTP(t, cfg, smtpEnv, nil)
	c := dialSMTP(t, p.SMTPAddr)
	c.greet()
	c.expect("MAIL FROM:<"+iseSender+">", 250, "")
	c.expect("RCPT TO:<"+smtpNumber+"@"+smsDomain+">", 250, "")
	if code, msg := c.data(mailData("first")); code != 250 {
		t.Fatalf("first: %d %s", code, msg)
	}
	c.expect("MAIL FROM:<"+iseSender+">", 250, "")
	c.expect("RCPT TO:<"+smtpNumber+"@"+smsDomain+">", 550, "5.7.1")
	if n := len(fp.Requests()); n != 1 {
		t.Fatalf("provider received %d requests, want 1", n)
	}
}
