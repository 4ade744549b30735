package proxy_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net"
	"net/textproto"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/postern/postern/proxy"
	"github.com/postern/postern/proxy/config"
	"github.com/postern/postern/proxy/proxytest"
	"github.com/postern/postern/trust"
	"github.com/postern/postern/trust/trusttest"
)

// The SMTP suites' kit: a postern serving [smtp] on loopback beside its
// HTTP listener, a config builder for mail routes, a certificate for
// STARTTLS and a raw conversation for checking exact reply codes.

const (
	smsDomain  = "sms.example.org"
	iseSender  = "ise@example.org"
	smtpNumber = "15551234567"
)

// mailHostileText is what every real client sends: quotes, &, angle brackets,
// emoji, Arabic and a line of only ".", which SMTP's dot-stuffing must
// carry through.
const mailHostileText = "Guest pass: \"a&b\" <c> 'd' 😀 مرحبا بك\n.\nend & done"

type smtpPostern struct {
	*postern
	SMTPAddr string
}

// startSMTP starts postern with configTOML (which must have [smtp] listen)
// and serves its SMTP listener on 127.0.0.1:0 with STARTTLS from tlsCfg
// (nil: none) until the test ends.
func startSMTP(t *testing.T, configTOML string, env map[string]string, tlsCfg *tls.Config) *smtpPostern {
	t.Helper()
	p := startPostern(t, configTOML, env)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Srv.ServeSMTP(ctx, ln, tlsCfg, 5*time.Second) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("ServeSMTP: %v", err)
		}
	})
	return &smtpPostern{postern: p, SMTPAddr: ln.Addr().String()}
}

// smtpConfig is a config with [smtp] (plus smtpKeys) and one "smtp" route
// for sms.example.org to a clickatell-one fake at endpoint (plus
// routeKeys), trusting caFile; server holds extra [server] lines.
func smtpConfig(caFile, endpoint, server, smtpKeys, routeKeys string) string {
	return fmt.Sprintf(`
[server]
upstream_retries = 0
%s

[trust]
ca_files = [%q]

[limits]
per_number = "off"

[smtp]
listen = "127.0.0.1:0"
hostname = "postern.test"
%s

[[route]]
name = "ise-mail"
inbound = "smtp"
match_domain = %q
provider = "clickatell-one"
endpoint = %q
token = "env:TEST_TOKEN"
%s
`, server, caFile, smtpKeys, smsDomain, endpoint, routeKeys)
}

var smtpEnv = map[string]string{"TEST_TOKEN": testToken}

// starttlsCert is a certificate for localhost from a fresh CA, written
// as [tls] mode "files" wants it, with the CA's file for clients.
type starttlsCert struct {
	Config            *tls.Config
	CAFile            string
	CertFile, KeyFile string
	CA                *trusttest.CA
}

func newStarttlsCert(t *testing.T) starttlsCert {
	t.Helper()
	ca := trusttest.NewCA(t)
	leaf := ca.Leaf(t, trusttest.LeafOptions{})
	dir := t.TempDir()
	var chain []byte
	for _, der := range leaf.Certificate {
		chain = append(chain, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})...)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(leaf.PrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	c := starttlsCert{CA: ca, CAFile: ca.WritePEM(t, dir),
		CertFile: filepath.Join(dir, "smtp.crt"), KeyFile: filepath.Join(dir, "smtp.key")}
	if err := os.WriteFile(c.CertFile, chain, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(c.KeyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	c.Config = trust.ServerTLSConfig(func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return &leaf, nil })
	return c
}

// tlsServerKeys are the [server] and [tls] lines that give postern c as
// its certificate (what STARTTLS, require_tls and AUTH need).
func (c starttlsCert) serverKeys(dataDir string) string {
	return fmt.Sprintf("listen_tls = \"127.0.0.1:0\"\ndata_dir = %q\n\n[tls]\nmode = \"files\"\ncert_file = %q\nkey_file = %q\n", dataDir, c.CertFile, c.KeyFile)
}

// conv is a raw SMTP conversation, for asserting exact reply codes.
type conv struct {
	t    *testing.T
	conn net.Conn
	tp   *textproto.Conn
}

func dialSMTP(t *testing.T, addr string) *conv {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	conn.SetDeadline(time.Now().Add(30 * time.Second))
	t.Cleanup(func() { conn.Close() })
	return &conv{t: t, conn: conn, tp: textproto.NewConn(conn)}
}

// read returns the next reply's code and text (lines joined by "\n").
func (c *conv) read() (int, string) {
	c.t.Helper()
	code, msg, err := c.tp.ReadResponse(0)
	if err != nil && code == 0 {
		c.t.Fatalf("reading reply: %v", err)
	}
	return code, msg
}

// cmd sends one line and returns the reply.
func (c *conv) cmd(line string) (int, string) {
	c.t.Helper()
	if err := c.tp.PrintfLine("%s", line); err != nil {
		c.t.Fatalf("sending %q: %v", line, err)
	}
	return c.read()
}

// expect sends line and fails unless the reply has code and starts with
// enhanced (when not "").
func (c *conv) expect(line string, code int, enhanced string) string {
	c.t.Helper()
	got, msg := c.cmd(line)
	if got != code || !strings.HasPrefix(msg, enhanced) {
		c.t.Fatalf("%q: got %d %s; want %d %s", line, got, msg, code, enhanced)
	}
	return msg
}

// greet reads the greeting and says EHLO.
func (c *conv) greet() string {
	c.t.Helper()
	if code, msg := c.read(); code != 220 {
		c.t.Fatalf("greeting: %d %s", code, msg)
	}
	return c.expect("EHLO ise.example.org", 250, "")
}

// data sends DATA and then raw (already CRLF and dot-stuffed, ending in
// CRLF), the end marker, and returns the reply.
func (c *conv) data(raw string) (int, string) {
	c.t.Helper()
	c.expect("DATA", 354, "")
	w := bufio.NewWriter(c.conn)
	w.WriteString(raw)
	w.WriteString(".\r\n")
	if err := w.Flush(); err != nil {
		c.t.Fatal(err)
	}
	return c.read()
}

// mailData is a small message for raw conversations.
func mailData(body string) string {
	return "From: ISE <" + iseSender + ">\r\nSubject: SMS\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n" + body + "\r\n"
}

// smtpAuditLines are the audit lines of mode "smtp".
func smtpAuditLines(t *testing.T, p *postern) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, l := range auditLines(t, p) {
		if l["mode"] == "smtp" {
			out = append(out, l)
		}
	}
	return out
}

// oneContents returns the texts and recipients a clickatell-one fake
// received, request by request.
func oneContents(t *testing.T, fp *fakeProvider) (texts, to []string) {
	t.Helper()
	for _, r := range fp.Requests() {
		var body struct {
			Messages []struct{ To, Content string }
		}
		if err := json.Unmarshal(r.Body, &body); err != nil {
			t.Fatalf("provider body: %v", err)
		}
		for _, m := range body.Messages {
			texts, to = append(texts, m.Content), append(to, m.To)
		}
	}
	return texts, to
}

var _ = proxy.Options{}

func newTextproto(c net.Conn) *textproto.Conn { return textproto.NewConn(c) }

type configT = config.Config

func loadT(t *testing.T, toml string) *config.Config {
	t.Helper()
	return proxytest.Load(t, toml, smtpEnv)
}
