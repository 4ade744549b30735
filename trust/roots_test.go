package trust

import (
	"crypto/x509"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/postern/postern/internal/testtool"
	"github.com/postern/postern/trust/trusttest"
	"golang.org/x/crypto/x509roots/fallback/bundle"
)

func TestLoadRootsCAFiles(t *testing.T) {
	a, b := trusttest.NewCA(t), trusttest.NewCA(t)
	dir := t.TempDir()
	two := filepath.Join(dir, "two.pem")
	if err := os.WriteFile(two, append(a.CertPEM(), b.CertPEM()...), 0o600); err != nil {
		t.Fatal(err)
	}
	r, err := LoadRoots([]string{two, a.WritePEM(t, dir)})
	if err != nil {
		t.Fatalf("LoadRoots: %v", err)
	}
	if got := r.Report().CAFiles; got != 3 {
		t.Errorf("CAFiles = %d, want 3", got)
	}
	for _, ca := range []*trusttest.CA{a, b} {
		if _, err := ca.Cert().Verify(x509.VerifyOptions{Roots: r.Pool()}); err != nil {
			t.Errorf("ca_files root does not verify: %v", err)
		}
	}
	// Pool returns a copy.
	p := r.Pool()
	p.AddCert(trusttest.NewCA(t).Cert())
	if p.Equal(r.Pool()) {
		t.Error("changing Pool() result changed the Roots")
	}
}

func TestLoadRootsBadFiles(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	empty := write("empty.pem", "")
	text := write("text.pem", "not a certificate\n")
	key := write("key.pem", "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")
	bad := write("bad.pem", "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")
	missing := filepath.Join(dir, "missing.pem")
	good := trusttest.NewCA(t).WritePEM(t, dir)

	tests := []struct {
		file string
		want string
	}{
		{empty, `ca_files "` + empty + `": no certificates found`},
		{text, `ca_files "` + text + `": no certificates found`},
		{key, `ca_files "` + key + `": PEM block 1: unexpected type "PRIVATE KEY"`},
		{bad, `ca_files "` + bad + `": PEM block 1: x509:`},
		{missing, `ca_files "` + missing + `": open: `},
	}
	for _, tc := range tests {
		_, err := LoadRoots([]string{good, tc.file})
		if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
			t.Errorf("LoadRoots(%s) error = %v, want prefix %q", filepath.Base(tc.file), err, tc.want)
		}
	}
	_, err := LoadRoots([]string{missing})
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing file error %v does not wrap fs.ErrNotExist", err)
	}
	// Every bad file is reported at once.
	_, err = LoadRoots([]string{empty, good, key})
	if err == nil || !strings.Contains(err.Error(), empty) || !strings.Contains(err.Error(), key) {
		t.Errorf("error %v does not name both bad files", err)
	}
}

func TestLoadRootsSystem(t *testing.T) {
	if os.Getenv(subprocessEnv) != "" {
		t.Skip("running as the embedded-roots subprocess")
	}
	sys, err := x509.SystemCertPool()
	if err != nil || systemPoolEmpty(sys) {
		testtool.Missing(t, "this host has no system roots (ca-certificates)")
	}
	r, err := LoadRoots(nil)
	if err != nil {
		t.Fatal(err)
	}
	rep := r.Report()
	if rep.Source != SourceSystem || rep.Embedded != 0 || rep.CAFiles != 0 {
		t.Errorf("report = %+v, want system only", rep)
	}
	if got, want := rep.String(), "system trust store"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
}

const subprocessEnv = "POSTERN_TRUST_EMBEDDED_SUBPROCESS"

// TestLoadRootsEmbedded checks the fallback to the embedded Mozilla roots
// when the system has none. x509.SystemCertPool is loaded once per process,
// so the check runs in a re-executed test binary with the system locations
// pointed at nothing.
func TestLoadRootsEmbedded(t *testing.T) {
	if os.Getenv(subprocessEnv) != "" {
		embeddedSubprocess(t)
		return
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, "-test.run=^TestLoadRootsEmbedded$", "-test.v", "-test.count=1")
	cmd.Env = append(os.Environ(),
		subprocessEnv+"=1",
		"SSL_CERT_FILE=/nonexistent",
		"SSL_CERT_DIR=/nonexistent",
	)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("subprocess failed: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "embedded-ok") {
		t.Fatalf("subprocess did not run the embedded check:\n%s", out)
	}
	t.Logf("subprocess: %s", grepLine(string(out), "upstream roots:"))
}

func embeddedSubprocess(t *testing.T) {
	sys, err := x509.SystemCertPool()
	if err == nil && !systemPoolEmpty(sys) {
		t.Fatal("system pool is not empty with SSL_CERT_FILE/SSL_CERT_DIR at /nonexistent")
	}
	want := 0
	for range bundle.Roots() {
		want++
	}
	if want < 100 {
		t.Fatalf("embedded bundle has only %d roots", want)
	}
	ca := trusttest.NewCA(t)
	r, err := LoadRoots([]string{ca.WritePEM(t, t.TempDir())})
	if err != nil {
		t.Fatal(err)
	}
	rep := r.Report()
	if rep.Source != SourceEmbedded || rep.Embedded != want || rep.CAFiles != 1 {
		t.Fatalf("report = %+v, want embedded with %d roots + 1 from ca_files", rep, want)
	}
	wantStr := "embedded Mozilla set (" + itoa(want) + " roots) + 1 from ca_files"
	if rep.String() != wantStr {
		t.Fatalf("String() = %q, want %q", rep.String(), wantStr)
	}
	// The embedded roots and the ca_files root are both anchors.
	if _, err := ca.Cert().Verify(x509.VerifyOptions{Roots: r.Pool()}); err != nil {
		t.Fatalf("ca_files root does not verify: %v", err)
	}
	t.Logf("upstream roots: %s", rep)
	t.Log("embedded-ok")
}

func itoa(n int) string {
	b := []byte{}
	for ; n > 0 || len(b) == 0; n /= 10 {
		b = append([]byte{byte('0' + n%10)}, b...)
	}
	return string(b)
}

func grepLine(s, sub string) string {
	for l := range strings.Lines(s) {
		if strings.Contains(l, sub) {
			return strings.TrimSpace(l)
		}
	}
	return ""
}
