package proxy_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"mime/quotedprintable"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/postern/postern/internal/testtool"
)

// smtpClient sends one mail of text, its body in cte, from iseSender to
// to, through a real client, and returns the reply to DATA.
type smtpClient struct {
	name string
	send func(t *testing.T, addr, to, text, cte string) (code int, msg string)
}

var smtpClients = []smtpClient{
	{"python smtplib", sendPython},
	{"swaks", sendSwaks},
	{"jakarta mail", sendJava},
}

func splitAddr(t *testing.T, addr string) (string, string) {
	t.Helper()
	host, port, ok := strings.Cut(addr, ":")
	if !ok {
		t.Fatalf("address %q", addr)
	}
	return host, port
}

func writeText(t *testing.T, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "text.txt")
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func sendPython(t *testing.T, addr, to, text, cte string) (int, string) {
	t.Helper()
	return runPython(t, addr, to, text, cte)
}

// runPython runs testdata/smtp/send.py with extra arguments (CA file,
// user, password) and returns the reply to DATA (or to a refused RCPT).
func runPython(t *testing.T, addr, to, text, cte string, extra ...string) (int, string) {
	t.Helper()
	py := testtool.Require(t, "python3")
	host, port := splitAddr(t, addr)
	args := append([]string{filepath.Join("testdata", "smtp", "send.py"), host, port, iseSender, to, writeText(t, text), cte}, extra...)
	out, err := exec.Command(py, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("send.py: %v\n%s", err, out)
	}
	var r struct {
		Code    int
		Message string
	}
	if err := json.Unmarshal(bytes.TrimSpace(out), &r); err != nil {
		t.Fatalf("send.py output %q: %v", out, err)
	}
	return r.Code, r.Message
}

// encodeBody returns text (LF line ends) as a body in cte, CRLF lines.
func encodeBody(t *testing.T, text, cte string) string {
	t.Helper()
	crlf := strings.ReplaceAll(text, "\n", "\r\n")
	var b bytes.Buffer
	switch cte {
	case "quoted-printable":
		w := quotedprintable.NewWriter(&b)
		w.Write([]byte(crlf))
		w.Close()
	case "base64":
		enc := base64.StdEncoding.EncodeToString([]byte(crlf))
		for len(enc) > 76 {
			b.WriteString(enc[:76] + "\r\n")
			enc = enc[76:]
		}
		b.WriteString(enc)
	default:
		t.Fatalf("cte %q", cte)
	}
	return b.String()
}

var swaksReply = regexp.MustCompile(`(?m)^ *<[-~*]+ +(\d{3})[ -](.*)$`)

func sendSwaks(t *testing.T, addr, to, text, cte string) (int, string) {
	t.Helper()
	swaks := testtool.Require(t, "swaks")
	host, port := splitAddr(t, addr)
	data := "From: " + iseSender + "\r\nTo: " + to + "\r\nSubject: Guest access\r\nMIME-Version: 1.0\r\n" +
		"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: " + cte + "\r\n\r\n" + encodeBody(t, text, cte) + "\r\n"
	file := filepath.Join(t.TempDir(), "data.eml")
	if err := os.WriteFile(file, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	out, _ := exec.Command(swaks, "--server", host, "--port", port, "--helo", "ise.example.org",
		"--from", iseSender, "--to", to, "--data", "@"+file, "--timeout", "60").CombinedOutput()
	// The reply to DATA is the last server reply before QUIT's 221.
	replies := swaksReply.FindAllStringSubmatch(string(out), -1)
	for i := len(replies) - 1; i >= 0; i-- {
		if replies[i][1] != "221" {
			code, _ := strconv.Atoi(replies[i][1])
			return code, strings.TrimSpace(replies[i][2])
		}
	}
	t.Fatalf("swaks printed no reply:\n%s", out)
	return 0, ""
}

func sendJava(t *testing.T, addr, to, text, cte string) (int, string) {
	t.Helper()
	java := testtool.Require(t, "java")
	var cp []string
	for _, jar := range []string{"jakarta-mail.jar", "jakarta-activation.jar"} {
		p := filepath.Join("/usr/share/java", jar)
		if _, err := os.Stat(p); err != nil {
			testtool.Missing(t, p+" is not installed (Debian: libjakarta-mail-java)")
		}
		cp = append(cp, p)
	}
	host, port := splitAddr(t, addr)
	out, err := exec.Command(java, "-cp", strings.Join(cp, ":"), filepath.Join("testdata", "smtp", "Send.java"),
		host, port, iseSender, to, writeText(t, text), cte).CombinedOutput()
	if err != nil {
		t.Fatalf("Send.java: %v\n%s", err, out)
	}
	line := strings.TrimSpace(string(out))
	if i := strings.LastIndexByte(line, '\n'); i >= 0 {
		line = line[i+1:]
	}
	code, err := strconv.Atoi(line[:min(3, len(line))])
	if err != nil {
		t.Fatalf("Send.java output %q", out)
	}
	return code, strings.TrimSpace(line[3:])
}

// TestSMTP_RealClients: Python's smtplib, swaks and Jakarta Mail each mail
// a hostile UTF-8 text, quoted-printable and base64, to
// <number>@sms.example.org; the provider receives the text byte for byte,
// the client is told 250 with the provider's id, and the audit line says
// mode smtp with the envelope sender and the masked number, never the
// text.
func TestSMTP_RealClients(t *testing.T) {
	fp := newFakeProvider(t, oneAPIReply())
	p := startSMTP(t, smtpConfig(fp.CAFile(t), fp.URL("/messages"), "", "", ""), smtpEnv, nil)
	sent := 0
	for _, c := range smtpClients {
		for _, cte := range []string{"quoted-printable", "base64"} {
			t.Run(c.name+"/"+cte, func(t *testing.T) {
				code, msg := c.send(t, p.SMTPAddr, smtpNumber+"@"+smsDomain, mailHostileText, cte)
				if code != 250 || !regexp.MustCompile(`^(2\.0\.0 )?Ok: one\d{29}$`).MatchString(msg) {
					t.Fatalf("reply to DATA: %d %q, want 250 2.0.0 Ok: <provider id>", code, msg)
				}
				sent++
				texts, to := oneContents(t, fp)
				if len(texts) != sent {
					t.Fatalf("provider received %d messages, want %d", len(texts), sent)
				}
				if got := texts[sent-1]; got != mailHostileText {
					t.Errorf("provider received text %q, want %q", got, mailHostileText)
				}
				if to[sent-1] != smtpNumber {
					t.Errorf("provider received to %q", to[sent-1])
				}
				lines := smtpAuditLines(t, p.postern)
				last := lines[len(lines)-1]
				if last["outcome"] != "delivered" || last["status"] != 250.0 || last["mail_from"] != iseSender ||
					last["route"] != "ise-mail" || last["method"] != "DATA" {
					t.Errorf("audit line: %v", last)
				}
				if tos, _ := last["to"].([]any); len(tos) != 1 || strings.Contains(tos[0].(string), smtpNumber) {
					t.Errorf("audit to: %v, want one masked number", last["to"])
				}
			})
		}
	}
	// What each client put on the wire, recorded by a plain SMTP sink: the
	// text really was quoted-printable or base64 (with a dot-stuffed "."
	// line for quoted-printable).
	sink := startRelaySink(t, nil)
	for _, c := range smtpClients {
		for _, cte := range []string{"quoted-printable", "base64"} {
			before := len(sink.mails())
			if code, msg := c.send(t, sink.addr, smtpNumber+"@"+smsDomain, mailHostileText, cte); code != 250 {
				t.Fatalf("%s to the sink: %d %s", c.name, code, msg)
			}
			got := sink.mails()
			if len(got) != before+1 {
				t.Fatalf("%s: the sink received %d mails", c.name, len(got)-before)
			}
			if data := strings.ToLower(string(got[before].Data)); !strings.Contains(data, "content-transfer-encoding: "+cte) {
				t.Errorf("%s sent no %s body:\n%s", c.name, cte, got[before].Data)
			}
		}
	}
	mustNotContain(t, "audit", p.Audit.String(), "مرحبا", "a&b", "Guest pass")
	mustNotContain(t, "log", p.Log.String(), "مرحبا", "a&b", "Guest pass", smtpNumber)
}
