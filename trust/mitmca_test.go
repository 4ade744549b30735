package trust

import (
	"bytes"
	"crypto/x509"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"
)

// verifyLeaf runs Go's verifier on a leaf for host signed by ca, as a client
// that trusts ca would.
func verifyLeaf(t *testing.T, ca *LocalCA, host string) error {
	t.Helper()
	now := time.Now()
	leaf, err := ca.Issue([]string{host}, now.Add(-time.Hour), now.Add(time.Hour))
	if err != nil {
		t.Fatalf("forcing a leaf for %s: %v", host, err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca.Cert())
	_, err = leaf.Leaf.Verify(x509.VerifyOptions{Roots: roots, DNSName: host, CurrentTime: now})
	return err
}

// TestInterceptCANameConstraints: a new interception CA permits exactly the
// [intercept] hosts it was made for. Leaf never mints for anything else,
// and a leaf forced past it (signed with the CA key directly) is rejected by
// Go's verifier, which is what ISE's TLS client does too.
func TestInterceptCANameConstraints(t *testing.T) {
	hosts := []string{"API.clickatell.com", "rest.example", "192.0.2.7"}
	ic, created, err := LoadOrCreateInterceptCA(t.TempDir(), hosts)
	if err != nil || !created {
		t.Fatalf("LoadOrCreateInterceptCA: %v, created %v", err, created)
	}
	ca := ic.CA().Cert()
	if !ca.PermittedDNSDomainsCritical {
		t.Error("name constraints extension is not critical")
	}
	if got := strings.Join(ca.PermittedDNSDomains, ","); got != "api.clickatell.com,rest.example" {
		t.Errorf("permitted DNS names %q", got)
	}
	if len(ca.PermittedIPRanges) != 1 || ca.PermittedIPRanges[0].String() != "192.0.2.7/32" {
		t.Errorf("permitted IP ranges %v, want [192.0.2.7/32]", ca.PermittedIPRanges)
	}

	for _, host := range []string{"api.clickatell.com", "rest.example", "192.0.2.7"} {
		leaf, err := ic.Leaf(host)
		if err != nil {
			t.Fatalf("Leaf(%s): %v", host, err)
		}
		roots := x509.NewCertPool()
		roots.AddCert(ca)
		if _, err := leaf.Leaf.Verify(x509.VerifyOptions{Roots: roots, DNSName: host}); err != nil {
			t.Errorf("leaf for listed host %s does not verify: %v", host, err)
		}
	}
	cached := ic.Cached()
	for _, host := range []string{"evil.example", "clickatell.com", "xapi.clickatell.com", "198.51.100.1", "::1"} {
		if leaf, err := ic.Leaf(host); err == nil || !errors.Is(err, ErrNotPermitted) {
			t.Errorf("Leaf(%s) = %v, %v; want ErrNotPermitted and no leaf", host, leaf, err)
		}
		var inv x509.CertificateInvalidError
		if err := verifyLeaf(t, ic.CA(), host); !errors.As(err, &inv) || inv.Reason != x509.CANotAuthorizedForThisName {
			t.Errorf("forced leaf for %s: verifier said %v, want CANotAuthorizedForThisName", host, err)
		}
	}
	if ic.Cached() != cached {
		t.Errorf("refused hosts changed the leaf cache: %d, want %d", ic.Cached(), cached)
	}
}

// TestNameConstraintsCloseEveryOtherName: a CA for host names only permits
// no IP address, and a CA for IP addresses only permits no real host name.
func TestNameConstraintsCloseEveryOtherName(t *testing.T) {
	dnsOnly, _, err := LoadOrCreateInterceptCA(t.TempDir(), []string{"api.clickatell.com"})
	if err != nil {
		t.Fatal(err)
	}
	ipOnly, _, err := LoadOrCreateInterceptCA(t.TempDir(), []string{"192.0.2.7"})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		ic   *InterceptCA
		host string
	}{
		{dnsOnly, "127.0.0.1"}, {dnsOnly, "::1"}, {dnsOnly, "192.0.2.7"},
		{ipOnly, "api.clickatell.com"}, {ipOnly, "localhost"}, {ipOnly, "192.0.2.8"},
	} {
		if tc.ic.Permits(tc.host) {
			t.Errorf("CA for %v permits %s", tc.ic.CA().Cert().PermittedDNSDomains, tc.host)
		}
		if err := verifyLeaf(t, tc.ic.CA(), tc.host); err == nil {
			t.Errorf("forced leaf for %s verifies under a CA not made for it", tc.host)
		}
	}
}

// TestPermitsAgreesWithGoVerifier: Permits, which decides whether postern
// mints a leaf, gives the same answer as Go's verifier for a forced leaf,
// including subdomains (RFC 5280: a DNS subtree covers names below it) and
// look-alike suffixes.
func TestPermitsAgreesWithGoVerifier(t *testing.T) {
	ic, _, err := LoadOrCreateInterceptCA(t.TempDir(), []string{"api.clickatell.com", "2001:db8::1"})
	if err != nil {
		t.Fatal(err)
	}
	for _, host := range []string{
		"api.clickatell.com", "API.Clickatell.COM", "a.api.clickatell.com", "xapi.clickatell.com",
		"clickatell.com", "api.clickatell.com.evil.example", "invalid", "2001:db8::1", "2001:db8::2", "10.0.0.1",
	} {
		got := ic.Permits(host)
		verr := verifyLeaf(t, ic.CA(), strings.ToLower(host))
		if got != (verr == nil) {
			t.Errorf("%s: Permits = %v, verifier error %v", host, got, verr)
		}
	}
}

// TestInterceptCAMadeBeforeConstraints: a CA on disk without name
// constraints (made by an earlier postern) is loaded, never replaced (ISE
// trusts it), and reported with how to make a new one.
func TestInterceptCAMadeBeforeConstraints(t *testing.T) {
	dir := t.TempDir()
	if _, _, err := LoadOrCreateCA(dir, "intercept", "postern interception CA"); err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(filepath.Join(dir, "intercept-ca.crt"))
	ic, created, err := LoadOrCreateInterceptCA(dir, []string{"api.clickatell.com"})
	if err != nil || created {
		t.Fatalf("loading the old CA: %v, created %v", err, created)
	}
	if after, _ := os.ReadFile(filepath.Join(dir, "intercept-ca.crt")); !bytes.Equal(before, after) {
		t.Fatal("the old CA was replaced")
	}
	f := ic.Fit([]string{"api.clickatell.com"})
	if f.Constrained || f.Problem() != "" || len(f.Outside) != 0 {
		t.Errorf("fit %+v problem %q", f, f.Problem())
	}
	for _, want := range []string{"no name constraints", "intercept-ca.crt", "intercept-ca.key", "move", "import the new certificate"} {
		if !strings.Contains(f.Notice(), want) {
			t.Errorf("notice %q lacks %q", f.Notice(), want)
		}
	}
	if _, err := ic.Leaf("api.clickatell.com"); err != nil {
		t.Errorf("the old CA must keep serving: %v", err)
	}
}

// TestInterceptCAHostAddedLater: hosts listing a name the CA was not made
// for is reported (by the loaded CA and by InspectInterceptCA, which check
// uses) with the host and how to make a new CA; no leaf is minted for it.
func TestInterceptCAHostAddedLater(t *testing.T) {
	dir := t.TempDir()
	if _, ok, err := InspectInterceptCA(dir, []string{"a.example"}); ok || err != nil {
		t.Fatalf("InspectInterceptCA before any CA: exists %v, %v", ok, err)
	}
	if _, _, err := LoadOrCreateInterceptCA(dir, []string{"api.clickatell.com"}); err != nil {
		t.Fatal(err)
	}
	hosts := []string{"api.clickatell.com", "platform.clickatell.com"}
	ic, created, err := LoadOrCreateInterceptCA(dir, hosts)
	if err != nil || created {
		t.Fatalf("reloading: %v, created %v", err, created)
	}
	inspected, ok, err := InspectInterceptCA(dir, hosts)
	if !ok || err != nil {
		t.Fatalf("InspectInterceptCA: exists %v, %v", ok, err)
	}
	for _, f := range []CAFit{ic.Fit(hosts), inspected} {
		if !f.Constrained || strings.Join(f.Outside, ",") != "platform.clickatell.com" {
			t.Errorf("fit %+v, want platform.clickatell.com outside", f)
		}
		for _, want := range []string{"platform.clickatell.com", "permits only api.clickatell.com", "move", "intercept-ca.key"} {
			if !strings.Contains(f.Problem(), want) {
				t.Errorf("problem %q lacks %q", f.Problem(), want)
			}
		}
	}
	if _, err := ic.Leaf("platform.clickatell.com"); !errors.Is(err, ErrNotPermitted) {
		t.Errorf("Leaf for the added host: %v, want ErrNotPermitted", err)
	}
	if _, _, err := LoadOrCreateInterceptCA(t.TempDir(), nil); err == nil {
		t.Error("an interception CA for no hosts was made")
	}
}

// TestPrepareDataDir: data_dir is created 0700 whatever the umask, an
// existing one open to others is tightened, and one postern cannot chmod is
// refused with an error that says what to do.
func TestPrepareDataDir(t *testing.T) {
	old := syscall.Umask(0)
	defer syscall.Umask(old)
	base := t.TempDir()

	fresh := filepath.Join(base, "a", "data")
	if err := PrepareDataDir(fresh); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(fresh); fi.Mode().Perm() != 0o700 {
		t.Errorf("new data_dir has mode %o, want 700", fi.Mode().Perm())
	}

	open := filepath.Join(base, "open")
	if err := os.Mkdir(open, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := PrepareDataDir(open); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(open); fi.Mode().Perm() != 0o700 {
		t.Errorf("0755 data_dir became %o, want 700", fi.Mode().Perm())
	}

	file := filepath.Join(base, "file")
	os.WriteFile(file, nil, 0o600)
	if err := PrepareDataDir(file); err == nil || !strings.Contains(err.Error(), "not a directory") {
		t.Errorf("a file as data_dir: %v", err)
	}

	// A directory postern cannot chmod. Running as root, no ordinary
	// directory refuses chmod, but procfs refuses every mode change on
	// /proc/sys to everyone (the kernel's proc_sys_setattr), and its mode,
	// 0555, is open to others: the same case as another user's directory.
	if runtime.GOOS != "linux" {
		t.Skip("needs Linux procfs for a directory that refuses chmod")
	}
	var st syscall.Statfs_t
	if err := syscall.Statfs("/proc/sys", &st); err != nil || st.Type != 0x9fa0 { // PROC_SUPER_MAGIC
		t.Skipf("/proc/sys is not procfs here (%v)", err)
	}
	err := PrepareDataDir("/proc/sys")
	if err == nil {
		t.Fatal("/proc/sys accepted as data_dir")
	}
	for _, want := range []string{"/proc/sys", "0555", "cannot tighten", "chmod 700 /proc/sys"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
}
