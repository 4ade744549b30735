package proxy_test

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/letsencrypt/pebble/v2/ca"
	"github.com/letsencrypt/pebble/v2/db"
	"github.com/letsencrypt/pebble/v2/va"
	"github.com/letsencrypt/pebble/v2/wfe"
)

// pebbleCA runs Let's Encrypt's test ACME server in process on loopback.
// Its validation authority connects to tlsALPNPort (and httpPort) on
// 127.0.0.1 to check challenges for real. It returns the directory URL, a
// PEM file trusting the ACME server's own HTTPS endpoint, and the root
// that issued certificates chain to.
func pebbleCA(t *testing.T, httpPort, tlsALPNPort int) (directory, caFile string, issuingRoot *x509.Certificate) {
	t.Helper()
	t.Setenv("PEBBLE_VA_NOSLEEP", "1")
	t.Setenv("PEBBLE_WFE_NONCEREJECT", "0")
	t.Setenv("PEBBLE_AUTHZREUSE", "0")
	quiet := log.New(io.Discard, "", 0)
	store := db.NewMemoryStore()
	authority := ca.New(quiet, store, "", "ecdsa", 0, 1, map[string]ca.Profile{"default": {}})
	validator := va.New(quiet, httpPort, tlsALPNPort, false, "", store)
	front := wfe.New(quiet, store, validator, authority, nil, false, false, 0, 0)
	srv := httptest.NewUnstartedServer(front.Handler())
	srv.Config.ErrorLog = quiet
	srv.StartTLS()
	t.Cleanup(srv.Close)
	caFile = filepath.Join(t.TempDir(), "pebble-https.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	return srv.URL + wfe.DirectoryPath, caFile, authority.GetRootCert(0).Cert
}

// waitForCertificate polls postern's HTTPS listener until it serves a
// certificate for name that verifies against root, for at most a bounded
// number of attempts.
func waitForCertificate(t *testing.T, addr, name string, root *x509.Certificate) {
	t.Helper()
	pool := x509.NewCertPool()
	pool.AddCert(root)
	var err error
	for range 300 {
		var conn *tls.Conn
		conn, err = tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, &tls.Config{ServerName: name, RootCAs: pool})
		if err == nil {
			conn.Close()
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("no ACME certificate for %s after 30s: %v", name, err)
}

// TestTLSListenerACME: postern obtains its HTTPS certificate from a real
// ACME server on loopback, answering the TLS-ALPN-01 challenge on its own
// HTTPS listener, then serves ISE's request over it. Nothing leaves the
// machine.
func TestTLSListenerACME(t *testing.T) {
	if testing.Short() {
		t.Skip("ACME issuance takes a few seconds")
	}
	fp := newFakeProvider(t, oneAPIReply())
	tlsLn := listenLoopback(t)
	port := tlsLn.Addr().(*net.TCPAddr).Port
	directory, acmeCA, root := pebbleCA(t, 0, port)
	dataDir := t.TempDir()
	p := startPosternTLS(t, tlsLn, tlsServerConfig(fp, fp.CAFile(t), tlsLn.Addr().String(), dataDir, fmt.Sprintf(`
mode = "acme"
names = ["localhost"]
acme_directory = %q
acme_ca_files = [%q]
acme_email = "noc@example.org"
`, directory, acmeCA)), env())

	waitForCertificate(t, p.tlsAddr, "localhost", root)
	pool := x509.NewCertPool()
	pool.AddCert(root)
	status, body, served := p.getTLS(t, pool, "localhost", "/http/sendmsg?"+legacyQuery("15551234567", "acme issued"))
	if status != http.StatusOK || !strings.HasPrefix(body, "ID: ") {
		t.Fatalf("got %d %q", status, body)
	}
	if served.VerifyHostname("localhost") != nil {
		t.Errorf("served certificate is for %v", served.DNSNames)
	}
	texts, _, err := oneAPIBody(fp.Requests()[0].Body)
	if err != nil || len(texts) != 1 || texts[0] != "acme issued" {
		t.Errorf("provider got %q, %v", texts, err)
	}
	if !strings.Contains(p.Log.String(), "acme: cert_obtained") {
		t.Errorf("log does not report the issuance:\n%s", p.Log.String())
	}
	// The certificate is kept under data_dir for the next start.
	found := false
	filepath.WalkDir(dataDir, func(path string, d os.DirEntry, err error) error {
		if err == nil && strings.HasSuffix(path, "localhost.crt") {
			found = true
		}
		return nil
	})
	if !found {
		t.Errorf("no certificate stored under %s", dataDir)
	}
}
