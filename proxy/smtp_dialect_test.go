package proxy_test

import (
	"fmt"
	"strings"
	"testing"
)

// TestSMTP_ClickatellSMTPAPI: a mail in Clickatell's SMTP API format to
// sms@messaging.clickatell.com is sent to the numbers on its to: line with
// the text after text:, its legacy credentials checked against the
// route's and never forwarded; wrong credentials are refused with 554
// 5.7.1 and nothing is sent.
func TestSMTP_ClickatellSMTPAPI(t *testing.T) {
	fp := newFakeProvider(t, oneAPIReply())
	cfg := fmt.Sprintf(`
[trust]
ca_files = [%q]

[limits]
per_number = "off"

[smtp]
listen = "127.0.0.1:0"

[[route]]
name = "clickatell-smtp-api"
inbound = "clickatell-smtp"
match_domain = "messaging.clickatell.com"
provider = "clickatell-one"
endpoint = %q
token = "env:TEST_TOKEN"
legacy_user = %q
legacy_password = "env:LEGACY_PASS"
legacy_api_id = %q
`, fp.CAFile(t), fp.URL("/messages"), legacyUser, legacyAPIID)
	env := map[string]string{"TEST_TOKEN": testToken, "LEGACY_PASS": legacyPass}
	p := startSMTP(t, cfg, env, nil)
	body := func(pass string) string {
		return "user:" + legacyUser + "\r\npassword:" + pass + "\r\napi_id:" + legacyAPIID +
			"\r\nto:15551234567,447700900123\r\ntext:" + strings.ReplaceAll(strings.ReplaceAll(mailHostileText, "\n", "\r\n"), "\r\n.", "\r\n..")
	}
	code, msg := sendOne(t, p.SMTPAddr, body(legacyPass), "sms@messaging.clickatell.com")
	if code != 250 {
		t.Fatalf("reply: %d %s", code, msg)
	}
	texts, to := oneContents(t, fp)
	if len(texts) != 2 || texts[0] != mailHostileText || to[0] != "15551234567" || to[1] != "447700900123" {
		t.Fatalf("provider received %q to %q", texts, to)
	}
	mustNotContain(t, "provider request", fp.Requests()[0].Raw(), legacyPass, legacyUser, legacyAPIID)

	code, msg = sendOne(t, p.SMTPAddr, body("wrong-password"), "sms@messaging.clickatell.com")
	if code != 554 || !strings.HasPrefix(msg, "5.7.1") {
		t.Fatalf("wrong credentials: %d %s, want 554 5.7.1", code, msg)
	}
	if n := len(fp.Requests()); n != 1 {
		t.Fatalf("provider received %d requests, want 1", n)
	}
	lines := smtpAuditLines(t, p.postern)
	if last := lines[len(lines)-1]; last["code"] != "001" || last["outcome"] != "refused" {
		t.Errorf("audit %v", last)
	}
}

// TestSMTP_TextFromSubjectAndHTML: text_from = "subject" takes the decoded
// Subject; an HTML-only mail is sent as its text without tags.
func TestSMTP_TextFromSubjectAndHTML(t *testing.T) {
	fp := newFakeProvider(t, oneAPIReply())
	p := startSMTP(t, smtpConfig(fp.CAFile(t), fp.URL("/messages"), "", "", "")+`
[[route]]
name = "by-subject"
inbound = "smtp"
match_domain = "subject.example.org"
text_from = "subject"
provider = "clickatell-one"
endpoint = "`+fp.URL("/messages")+`"
token = "env:TEST_TOKEN"
`, smtpEnv, nil)
	c := dialSMTP(t, p.SMTPAddr)
	c.greet()
	c.expect("MAIL FROM:<"+iseSender+">", 250, "")
	c.expect("RCPT TO:<"+smtpNumber+"@subject.example.org>", 250, "")
	if code, msg := c.data("Subject: =?UTF-8?B?8J+YgCBjb2RlICYgbW9yZQ==?=\r\n\r\nbody ignored\r\n"); code != 250 {
		t.Fatalf("subject: %d %s", code, msg)
	}
	c.expect("MAIL FROM:<"+iseSender+">", 250, "")
	c.expect("RCPT TO:<"+smtpNumber+"@"+smsDomain+">", 250, "")
	if code, msg := c.data("Content-Type: text/html; charset=utf-8\r\n\r\n<p>Code: <b>a&amp;b</b></p>\r\n"); code != 250 {
		t.Fatalf("html: %d %s", code, msg)
	}
	texts, _ := oneContents(t, fp)
	if len(texts) != 2 || texts[0] != "😀 code & more" || texts[1] != "Code: a&b" {
		t.Fatalf("provider received %q", texts)
	}
}

// TestSMTP_ReloadTakesSMTPSettings: a reload applies [smtp] relay and
// routes to the next transaction; a new listen waits for a restart.
func TestSMTP_ReloadTakesSMTPSettings(t *testing.T) {
	fp := newFakeProvider(t, oneAPIReply())
	ca := fp.CAFile(t)
	p := startSMTP(t, smtpConfig(ca, fp.URL("/messages"), "", "", ""), smtpEnv, nil)
	c := dialSMTP(t, p.SMTPAddr)
	c.greet()
	c.expect("MAIL FROM:<"+iseSender+">", 250, "")
	c.expect("RCPT TO:<"+smtpNumber+"@other.example.org>", 550, "5.7.1")
	next := strings.Replace(smtpConfig(ca, fp.URL("/messages"), "", "", ""), smsDomain, "other.example.org", 1)
	next = strings.Replace(next, `listen = "127.0.0.1:0"`, `listen = "127.0.0.1:2525"`, 1)
	res, err := p.Srv.ReloadAndReport(func() (*configT, error) { return loadT(t, next), nil })
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(strings.Join(res.RestartNeeded, ";"), "[smtp] listen changed") {
		t.Errorf("restart needed: %q, want [smtp] listen", res.RestartNeeded)
	}
	c.expect("MAIL FROM:<"+iseSender+">", 250, "")
	c.expect("RCPT TO:<"+smtpNumber+"@"+smsDomain+">", 550, "5.7.1")
	c.expect("RCPT TO:<"+smtpNumber+"@other.example.org>", 250, "")
	if code, msg := c.data(mailData("after reload")); code != 250 {
		t.Fatalf("after reload: %d %s", code, msg)
	}
}
