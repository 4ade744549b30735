package main

import (
	"fmt"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/postern/postern/trust"
	"github.com/postern/postern/trust/trusttest"
)

// TestTrustCommand is the contract of `postern trust`: against fake
// upstreams it shows the served and verified chains with each
// certificate's pin, and ends with a one-sentence verdict; exit 0 only when
// postern would send there.
func TestTrustCommand(t *testing.T) {
	t.Setenv("POSTERN_TEST_KEY", "k-SECRET-123")
	root := trusttest.NewCA(t)
	inter := root.Intermediate(t)
	dir := t.TempDir()
	caFile := root.WritePEM(t, dir)
	ok := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {})
	serve := func(cert trusttest.LeafOptions) string {
		srv := trusttest.NewTLSServer(t, ok, inter.Leaf(t, cert))
		u, _ := url.Parse(srv.URL)
		return u.Host
	}
	good := inter.Leaf(t, trusttest.LeafOptions{})
	goodSrv := trusttest.NewTLSServer(t, ok, good)
	goodAddr, _ := url.Parse(goodSrv.URL)
	aiaAddr := serve(trusttest.LeafOptions{LeafOnly: true, IssuerURLs: []string{trusttest.ServeIssuer(t, inter)}})
	expiredAddr := serve(trusttest.LeafOptions{NotBefore: time.Now().Add(-48 * time.Hour), NotAfter: time.Now().Add(-24 * time.Hour)})
	wrongHostAddr := serve(trusttest.LeafOptions{DNSNames: []string{"sms.example.net"}})

	config := func(pins string) string {
		return writeFile(t, dir, fmt.Sprintf("c%d.toml", time.Now().UnixNano()), fmt.Sprintf("[trust]\nca_files = [%q]\n%s\n%s", caFile, pins, goodRoute))
	}
	plain := config("")
	goodPin := trust.PinOf(good.Leaf).String()
	pinned := config(fmt.Sprintf("[trust.pins]\n\"127.0.0.1\" = [%q]", goodPin))
	wrongPin := config(fmt.Sprintf("[trust.pins]\n\"127.0.0.1\" = [%q]", trust.PinOf(trusttest.NewCA(t).Cert()).String()))

	for _, tc := range []struct {
		name, config, addr string
		code               int
		want               []string
	}{
		{"good", plain, goodAddr.Host, 0, []string{
			"Served chain (2 certificate(s)", "Verified chain (leaf to root):", "[trusted root]", "pin:     " + goodPin,
			"Verdict: TRUSTED: postern would send to 127.0.0.1; the chain verifies to a trusted root, but its certificate expires in less than a day."}},
		{"missing intermediate fetched by AIA", plain, aiaAddr, 0, []string{
			"Served chain (1 certificate(s)", "[fetched via AIA from http://127.0.0.1:",
			"Verdict: TRUSTED: postern would send to 127.0.0.1; the chain verifies to a trusted root, after fetching 1 missing intermediate(s) via AIA"}},
		{"expired", plain, expiredAddr, 1, []string{"(EXPIRED)", "Verified chain: none",
			"Verdict: NOT TRUSTED: postern would refuse to send to 127.0.0.1: " + trust.ReasonExpired}},
		{"wrong host", plain, wrongHostAddr, 1, []string{"names:   sms.example.net",
			"Verdict: NOT TRUSTED: postern would refuse to send to 127.0.0.1: " + trust.ReasonHostname}},
		{"pinned and matching", pinned, goodAddr.Host, 0, []string{"Pins:     " + goodPin, "matching a configured pin"}},
		{"pinned, no match", wrongPin, goodAddr.Host, 1, []string{
			"Verdict: NOT TRUSTED: postern would refuse to send to 127.0.0.1: " + trust.ReasonPin}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errOut := runCLI(t, "trust", "-config", tc.config, tc.addr)
			if code != tc.code {
				t.Errorf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, tc.code, out, errOut)
			}
			for _, w := range tc.want {
				if !strings.Contains(out, w) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
			if n := strings.Count(out, "Verdict: "); n != 1 {
				t.Errorf("%d verdicts, want 1", n)
			}
		})
	}

	t.Run("unreachable", func(t *testing.T) {
		code, out, _ := runCLI(t, "trust", "-config", plain, "127.0.0.1:1")
		if code != 1 || !strings.Contains(out, "Verdict: UNREACHABLE: postern could not connect to 127.0.0.1:1") {
			t.Errorf("exit %d:\n%s", code, out)
		}
	})
	t.Run("usage", func(t *testing.T) {
		if code, _, _ := runCLI(t, "trust"); code != 2 {
			t.Errorf("exit %d, want 2", code)
		}
		if code, _, errOut := runCLI(t, "trust", "-config", filepath.Join(dir, "missing.toml"), "x"); code != 1 || !strings.Contains(errOut, "missing.toml") {
			t.Errorf("missing config: exit %d %s", code, errOut)
		}
	})
}
