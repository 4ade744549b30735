package proxy_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/postern/postern/proxy"
	"github.com/postern/postern/proxy/proxytest"
	"github.com/postern/postern/trust/trusttest"
)

// tlsPostern is a real postern with its plain and HTTPS listeners on
// loopback.
type tlsPostern struct {
	*postern
	tlsAddr string
	inbound *proxy.InboundTLS
}

// listenLoopback reserves a loopback port for a listener.
func listenLoopback(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

// startPosternTLS serves configTOML on a plain loopback listener and on
// tlsLn, whose address the config's listen_tls names (see
// tlsServerConfig).
func startPosternTLS(t *testing.T, tlsLn net.Listener, configTOML string, env map[string]string) *tlsPostern {
	t.Helper()
	cfg := proxytest.Load(t, configTOML, env)
	p := &tlsPostern{postern: &postern{Log: &syncBuffer{}, Audit: &syncBuffer{}}, tlsAddr: tlsLn.Addr().String()}
	log := slog.New(slog.NewJSONHandler(p.Log, nil))
	p.Srv = proxy.New(cfg, proxy.Options{Log: log, Audit: slog.New(slog.NewJSONHandler(p.Audit, nil))})
	var err error
	p.inbound, err = proxy.OpenInboundTLS(cfg, log)
	if err != nil {
		t.Fatalf("OpenInboundTLS: %v", err)
	}
	ln := listenLoopback(t)
	p.Addr = ln.Addr().String()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Srv.ServeBoth(ctx, ln, tlsLn, p.inbound, 5*time.Second) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("postern ServeBoth: %v", err)
		}
		mustNotContain(t, "postern log", p.Log.String(), legacyPass, testToken)
		mustNotContain(t, "postern audit", p.Audit.String(), legacyPass, testToken)
	})
	return p
}

// tlsServerConfig is listen_tls, data_dir and the [tls] table plus a route
// for ISE's SMS URL naming postern (any host) to the fake provider.
func tlsServerConfig(fp *fakeProvider, caFile, tlsAddr, dataDir, tlsTable string) string {
	return fmt.Sprintf(`
[server]
listen_tls = %q
data_dir = %q

[tls]
%s

[trust]
ca_files = [%q]

[[route]]
name = "direct"
match_path = "/http/sendmsg"
inbound = "clickatell-http"
provider = "clickatell-one"
endpoint = %q
token = "env:TEST_TOKEN"
`, tlsAddr, dataDir, tlsTable, caFile, fp.URL("/v1/message"))
}

// getTLS sends an ISE-style GET over HTTPS to postern's TLS listener,
// trusting roots, with serverName as SNI, and returns status, body and the
// certificate postern served.
func (p *tlsPostern) getTLS(t *testing.T, roots *x509.CertPool, serverName, pathAndQuery string) (int, string, *x509.Certificate) {
	t.Helper()
	tr := &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: roots, ServerName: serverName},
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, network, p.tlsAddr)
		},
	}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	resp, err := c.Get("https://" + net.JoinHostPort(serverName, "443") + pathAndQuery)
	if err != nil {
		t.Fatalf("HTTPS GET: %v", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.ProtoMajor != 1 {
		t.Errorf("served %s, want HTTP/1.1 only", resp.Proto)
	}
	return resp.StatusCode, string(body), resp.TLS.PeerCertificates[0]
}

func writeKeyPair(t *testing.T, dir string, cert tls.Certificate) (certFile, keyFile string) {
	t.Helper()
	certPEM, keyPEM := trusttest.PEM(t, cert)
	// Replace atomically, as an operator's deploy (or certbot) would.
	certFile, keyFile = filepath.Join(dir, "postern.crt"), filepath.Join(dir, "postern.key")
	for name, data := range map[string][]byte{certFile: certPEM, keyFile: keyPEM} {
		tmp := name + ".new"
		if err := os.WriteFile(tmp, data, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, name); err != nil {
			t.Fatal(err)
		}
	}
	return certFile, keyFile
}

// TestTLSListenerFilesModeReloads: in files mode ISE's HTTPS request is
// served with the certificate on disk, and replacing the files changes the
// certificate served, without a restart.
func TestTLSListenerFilesModeReloads(t *testing.T) {
	fp := newFakeProvider(t, oneAPIReply())
	ca := trusttest.NewCA(t)
	dir := t.TempDir()
	first := ca.Leaf(t, trusttest.LeafOptions{DNSNames: []string{"postern.test"}})
	certFile, keyFile := writeKeyPair(t, dir, first)
	tlsLn := listenLoopback(t)
	p := startPosternTLS(t, tlsLn, tlsServerConfig(fp, fp.CAFile(t), tlsLn.Addr().String(), dir,
		fmt.Sprintf("mode = \"files\"\ncert_file = %q\nkey_file = %q", certFile, keyFile)), env())

	status, body, served := p.getTLS(t, ca.Pool(), "postern.test", "/http/sendmsg?"+legacyQuery("15551234567", "over https"))
	if status != http.StatusOK || !strings.HasPrefix(body, "ID: ") {
		t.Fatalf("got %d %q", status, body)
	}
	if !served.Equal(first.Leaf) {
		t.Errorf("served %s, want the first certificate", served.SerialNumber)
	}
	texts, _, err := oneAPIBody(fp.Requests()[0].Body)
	if err != nil || len(texts) != 1 || texts[0] != "over https" {
		t.Errorf("provider got %q, %v", texts, err)
	}

	second := ca.Leaf(t, trusttest.LeafOptions{DNSNames: []string{"postern.test"}})
	writeKeyPair(t, dir, second)
	_, _, served = p.getTLS(t, ca.Pool(), "postern.test", "/http/sendmsg?"+legacyQuery("15551234567", "after reload"))
	if !served.Equal(second.Leaf) {
		t.Errorf("after replacing the files, served serial %s, want the new %s", served.SerialNumber, second.Leaf.SerialNumber)
	}

	// A broken replacement keeps the last good certificate in service.
	if err := os.WriteFile(certFile, []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, _, served = p.getTLS(t, ca.Pool(), "postern.test", "/http/sendmsg?"+legacyQuery("15551234567", "bad files"))
	if !served.Equal(second.Leaf) {
		t.Errorf("after a broken replacement, served serial %s, want the previous %s", served.SerialNumber, second.Leaf.SerialNumber)
	}
	if !strings.Contains(p.Log.String(), "do not load") {
		t.Errorf("no warning about the broken files:\n%s", p.Log.String())
	}
}

// TestTLSListenerSelfSigned: self-signed mode creates a CA once in
// data_dir, logs it for import, and serves ISE with a leaf it signed; a
// restart reuses the same CA.
func TestTLSListenerSelfSigned(t *testing.T) {
	fp := newFakeProvider(t, oneAPIReply())
	dir := t.TempDir()
	start := func() *tlsPostern {
		tlsLn := listenLoopback(t)
		return startPosternTLS(t, tlsLn, tlsServerConfig(fp, fp.CAFile(t), tlsLn.Addr().String(), dir,
			`mode = "self-signed"
names = ["postern.test", "127.0.0.1"]`), env())
	}
	p := start()
	ca := p.inbound.SelfSignedCA
	if ca == nil || !strings.Contains(p.Log.String(), "import it once") || !strings.Contains(p.Log.String(), "BEGIN CERTIFICATE") {
		t.Fatalf("self-signed CA not reported for import:\n%s", p.Log.String())
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert())
	status, body, served := p.getTLS(t, pool, "postern.test", "/http/sendmsg?"+legacyQuery("15551234567", "self signed"))
	if status != http.StatusOK || !strings.HasPrefix(body, "ID: ") {
		t.Fatalf("got %d %q", status, body)
	}
	if served.CheckSignatureFrom(ca.Cert()) != nil {
		t.Error("leaf not signed by the self-signed CA")
	}
	again := start()
	if !again.inbound.SelfSignedCA.Cert().Equal(ca.Cert()) {
		t.Error("a restart made a new CA: ISE would have to import it again")
	}
	if strings.Contains(again.Log.String(), "import it once") {
		t.Error("restart reported the CA as newly created")
	}
}

// TestTLSListenerRefusesOldTLS: the HTTPS listener does not speak TLS 1.1.
func TestTLSListenerRefusesOldTLS(t *testing.T) {
	fp := newFakeProvider(t, oneAPIReply())
	tlsLn := listenLoopback(t)
	p := startPosternTLS(t, tlsLn, tlsServerConfig(fp, fp.CAFile(t), tlsLn.Addr().String(), t.TempDir(), `mode = "self-signed"`), env())
	conn, err := tls.Dial("tcp", p.tlsAddr, &tls.Config{InsecureSkipVerify: true, MaxVersion: tls.VersionTLS11})
	if err == nil {
		conn.Close()
		t.Fatal("TLS 1.1 handshake succeeded")
	}
	conn, err = tls.Dial("tcp", p.tlsAddr, &tls.Config{InsecureSkipVerify: true, MaxVersion: tls.VersionTLS12,
		CipherSuites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA}})
	if err == nil {
		conn.Close()
		t.Fatal("a CBC suite was accepted")
	}
}
