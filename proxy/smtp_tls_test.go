package proxy_test

import (
	"bytes"
	"crypto/tls"
	"encoding/base64"
	"fmt"
	"io"
	"log"
	"net"
	"strings"
	"sync"
	"testing"

	"github.com/emersion/go-smtp"

	"github.com/postern/postern/trust/trusttest"
)

// TestSMTP_StarttlsAndAuth: with a [tls] certificate postern offers
// STARTTLS; AUTH is offered and accepted only after it; with auth_user set
// MAIL needs AUTH, and with require_tls it needs STARTTLS. A real client
// (Python smtplib) verifies the certificate, logs in and sends.
func TestSMTP_StarttlsAndAuth(t *testing.T) {
	fp := newFakeProvider(t, oneAPIReply())
	cert := newStarttlsCert(t)
	const user, pass = "ise", "smtp-PASS-9d3f"
	env := map[string]string{"TEST_TOKEN": testToken, "SMTP_PASS": pass}
	cfg := smtpConfig(fp.CAFile(t), fp.URL("/messages"), cert.serverKeys(t.TempDir()),
		"require_tls = true\nauth_user = \""+user+"\"\nauth_password = \"env:SMTP_PASS\"", "")
	p := startSMTP(t, cfg, env, cert.Config)

	c := dialSMTP(t, p.SMTPAddr)
	ehlo := c.greet()
	if !strings.Contains(ehlo, "STARTTLS") || strings.Contains(ehlo, "AUTH") {
		t.Fatalf("EHLO before TLS: %q, want STARTTLS and no AUTH", ehlo)
	}
	c.expect("AUTH PLAIN "+base64.StdEncoding.EncodeToString([]byte("\x00"+user+"\x00"+pass)), 523, "5.7.10")
	c.expect("MAIL FROM:<"+iseSender+">", 530, "5.7.0")
	c.expect("STARTTLS", 220, "")
	tc := tls.Client(c.conn, &tls.Config{ServerName: "localhost", RootCAs: cert.CA.Pool()})
	c = &conv{t: t, conn: tc, tp: c.tp}
	c.tp = newTextproto(tc)
	ehlo = c.expect("EHLO ise.example.org", 250, "")
	if !strings.Contains(ehlo, "AUTH PLAIN LOGIN") || strings.Contains(ehlo, "STARTTLS") {
		t.Fatalf("EHLO after TLS: %q", ehlo)
	}
	c.expect("MAIL FROM:<"+iseSender+">", 530, "5.7.0") // no AUTH yet
	c.expect("AUTH PLAIN "+base64.StdEncoding.EncodeToString([]byte("\x00"+user+"\x00wrong")), 535, "5.7.8")
	c.expect("AUTH LOGIN", 334, "")
	c.expect(base64.StdEncoding.EncodeToString([]byte(user)), 334, "")
	c.expect(base64.StdEncoding.EncodeToString([]byte(pass)), 235, "2.0.0")
	c.expect("MAIL FROM:<"+iseSender+">", 250, "")
	c.expect("RCPT TO:<"+smtpNumber+"@"+smsDomain+">", 250, "")
	if code, msg := c.data(mailData("over TLS")); code != 250 {
		t.Fatalf("DATA: %d %s", code, msg)
	}

	code, msg := runPython(t, p.SMTPAddr, smtpNumber+"@"+smsDomain, mailHostileText, "quoted-printable", cert.CAFile, user, pass)
	if code != 250 {
		t.Fatalf("smtplib over STARTTLS with AUTH: %d %s", code, msg)
	}
	texts, _ := oneContents(t, fp)
	if len(texts) != 2 || texts[0] != "over TLS" || texts[1] != mailHostileText {
		t.Fatalf("provider received %q", texts)
	}
	mustNotContain(t, "audit", p.Audit.String(), pass)
}

// relaySink is a second, real SMTP server (go-smtp's own) that keeps what
// it receives: the site's mail relay in the relay tests.
type relaySink struct {
	mu   sync.Mutex
	got  []sunkMail
	addr string
}

type sunkMail struct {
	From string
	To   []string
	Data []byte
	TLS  bool
}

type sinkSession struct {
	s    *relaySink
	conn *smtp.Conn
	m    sunkMail
}

func (s *sinkSession) Reset()        { s.m = sunkMail{} }
func (s *sinkSession) Logout() error { return nil }
func (s *sinkSession) Mail(from string, _ *smtp.MailOptions) error {
	s.m.From = from
	return nil
}
func (s *sinkSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	if strings.HasSuffix(to, "@refused.example") {
		return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "No such user here"}
	}
	s.m.To = append(s.m.To, to)
	return nil
}
func (s *sinkSession) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	s.m.Data = b
	_, s.m.TLS = s.conn.TLSConnectionState()
	s.s.mu.Lock()
	s.s.got = append(s.s.got, s.m)
	s.s.mu.Unlock()
	return &smtp.SMTPError{Code: 250, EnhancedCode: smtp.EnhancedCode{2, 0, 0}, Message: "Ok: queued as SINK42"}
}

func startRelaySink(t *testing.T, tlsCfg *tls.Config) *relaySink {
	t.Helper()
	rs := &relaySink{}
	srv := smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) { return &sinkSession{s: rs, conn: c}, nil }))
	srv.Domain = "relay.test"
	srv.TLSConfig = tlsCfg
	srv.ErrorLog = log.New(io.Discard, "", 0) // postern's probe connection ends abruptly
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	rs.addr = "localhost:" + port
	return rs
}

func (rs *relaySink) mails() []sunkMail {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	return append([]sunkMail(nil), rs.got...)
}

// TestSMTP_Relay: with relay set, mail for recipients no route takes (ISE's
// guest notifications) is passed to the site's relay within the same
// transaction — over STARTTLS, the relay's certificate verified like a
// provider's — and the client gets the relay's own answers; SMS mail still
// goes to the provider. A relay whose certificate does not verify is not
// used.
func TestSMTP_Relay(t *testing.T) {
	fp := newFakeProvider(t, oneAPIReply())
	relayCA := trusttest.NewCA(t)
	leaf := relayCA.Leaf(t, trusttest.LeafOptions{})
	sink := startRelaySink(t, &tls.Config{Certificates: []tls.Certificate{leaf}})
	providerCA := fp.CAFile(t)
	cfg := smtpConfig(providerCA, fp.URL("/messages"), "", fmt.Sprintf("relay = %q", sink.addr), "")
	cfg = strings.Replace(cfg, fmt.Sprintf("ca_files = [%q]", providerCA), fmt.Sprintf("ca_files = [%q, %q]", providerCA, relayCA.WritePEM(t, t.TempDir())), 1)
	p := startSMTP(t, cfg, smtpEnv, nil)

	msg := "From: ISE <" + iseSender + ">\r\nTo: guest@corp.example\r\nSubject: Your guest account\r\n\r\nUser: g1\r\n..leading dot line\r\n"
	c := dialSMTP(t, p.SMTPAddr)
	c.greet()
	c.expect("MAIL FROM:<"+iseSender+">", 250, "")
	c.expect("RCPT TO:<guest@corp.example>", 250, "")
	c.expect("RCPT TO:<nobody@refused.example>", 550, "5.1.1") // the relay's own answer
	c.expect("RCPT TO:<"+smtpNumber+"@"+smsDomain+">", 452, "4.5.3")
	code, reply := c.data(msg)
	if code != 250 || !strings.Contains(reply, "SINK42") {
		t.Fatalf("DATA: %d %s, want the relay's 250", code, reply)
	}
	got := sink.mails()
	if len(got) != 1 || !got[0].TLS || got[0].From != iseSender || len(got[0].To) != 1 || got[0].To[0] != "guest@corp.example" {
		t.Fatalf("relay received %+v", got)
	}
	// Unchanged: the relay reads what ISE wrote, dot-stuffing undone.
	if want := strings.Replace(msg, "\r\n..leading", "\r\n.leading", 1); !bytes.Equal(got[0].Data, []byte(want)) {
		t.Errorf("relay received %q, want %q", got[0].Data, want)
	}
	// SMS mail in the next transaction of the same session.
	c.expect("MAIL FROM:<"+iseSender+">", 250, "")
	c.expect("RCPT TO:<"+smtpNumber+"@"+smsDomain+">", 250, "")
	c.expect("RCPT TO:<guest@corp.example>", 452, "4.5.3")
	if code, reply := c.data(mailData("sms beside relay")); code != 250 {
		t.Fatalf("SMS DATA: %d %s", code, reply)
	}
	if texts, _ := oneContents(t, fp); len(texts) != 1 {
		t.Fatalf("provider received %q", texts)
	}
	if len(sink.mails()) != 1 {
		t.Fatal("the SMS mail reached the relay")
	}
	lines := smtpAuditLines(t, p.postern)
	var relayed int
	for _, l := range lines {
		if l["outcome"] == "relayed" {
			relayed++
		}
	}
	if relayed != 1 {
		t.Errorf("%d relayed audit lines, want 1", relayed)
	}
}

// TestSMTP_RelayCertificateNotTrusted: a relay offering STARTTLS with a
// certificate postern does not trust gets nothing; the client is told 451.
func TestSMTP_RelayCertificateNotTrusted(t *testing.T) {
	fp := newFakeProvider(t, oneAPIReply())
	leaf := trusttest.NewCA(t).Leaf(t, trusttest.LeafOptions{})
	sink := startRelaySink(t, &tls.Config{Certificates: []tls.Certificate{leaf}})
	p := startSMTP(t, smtpConfig(fp.CAFile(t), fp.URL("/messages"), "", fmt.Sprintf("relay = %q", sink.addr), ""), smtpEnv, nil)
	c := dialSMTP(t, p.SMTPAddr)
	c.greet()
	c.expect("MAIL FROM:<"+iseSender+">", 250, "")
	c.expect("RCPT TO:<guest@corp.example>", 451, "4.4.1")
	if len(sink.mails()) != 0 {
		t.Fatal("relay received mail over an unverified connection")
	}
}
