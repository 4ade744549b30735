package proxy_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/postern/postern/proxy/audit"
)

// TestAuditChainTwoSinksRotationReload: a file and a syslog sink each keep
// their own chain through a rotation and a reload that changes chain_key;
// the file's rotated and current files and the SIEM's copy all verify, and
// the key is in none of them.
func TestAuditChainTwoSinksRotationReload(t *testing.T) {
	const key1, key2 = "first-chain-key-0123456789", "second-chain-key-9876543210"
	dir := t.TempDir()
	path := filepath.Join(dir, "audit.log")
	rcv := startSyslogStream(t, nil)
	fp := newFakeProvider(t, oneAPIReply())
	routes := routeConfig(fp.CAFile(t), "r", "clickatell-one", fp.URL("/v1/message"), "")
	cfg := func(key string) string {
		return fmt.Sprintf("[audit]\nfile = %q\nsyslog = %q\nchain_key = %q\n", path, "tcp://"+rcv.addr, key) + routes
	}
	p := startPostern(t, cfg(key1), env())
	send := func(n int) {
		for range n {
			if status, body := p.Get(t, "proxy", clickatellIn, "/http/sendmsg?"+legacyQuery("15551234567", "hi")); status != 200 {
				t.Fatalf("got %d %q", status, body)
			}
		}
	}
	messages := func(name string) int { b, _ := os.ReadFile(name); return strings.Count(string(b), `"msg":"message"`) }
	send(3)
	waitFor(t, "3 lines in the file", func() bool { return messages(path) == 3 })
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	send(2)
	waitFor(t, "2 lines in the new file", func() bool { return messages(path) == 2 })
	p.Srv.Reload(mustLoad(t, cfg(key2)))
	send(2)
	waitFor(t, "4 lines in the new file", func() bool { return messages(path) == 4 })
	waitFor(t, "7 syslog lines", func() bool { return strings.Count(strings.Join(rcv.messages(), "\n"), `"msg":"message"`) == 7 })

	files := []string{path + ".1", path}
	v, err := audit.VerifyFiles(files, []byte(key1), []byte(key2))
	if err != nil {
		t.Fatal(err)
	}
	// File: start, 3, then the new file: rotated, 2, key_changed, 2.
	if !v.Intact || v.Chains != 3 || v.HMACChecked != 10 {
		t.Errorf("file chain: %+v", v)
	}
	// The SIEM's copy is a chain of its own: start, 5, key_changed, 2.
	var siem strings.Builder
	for _, m := range rcv.messages() {
		siem.WriteString(m[strings.Index(m, "{"):] + "\n")
	}
	siemFile := filepath.Join(dir, "siem.log")
	os.WriteFile(siemFile, []byte(siem.String()), 0o600)
	v, err = audit.VerifyFiles([]string{siemFile}, []byte(key1), []byte(key2))
	if err != nil {
		t.Fatal(err)
	}
	if !v.Intact || v.Chains != 2 || v.HMACChecked != 9 {
		t.Errorf("syslog chain: %+v", v)
	}
	all := siem.String()
	for _, f := range files {
		b, _ := os.ReadFile(f)
		all += string(b)
	}
	mustNotContain(t, "audit trail", all, key1, key2)
	mustNotContain(t, "log", p.Log.String(), key1, key2)
	// The old key alone: the chain after the reload fails, by name.
	v, _ = audit.VerifyFiles(files, []byte(key1))
	if v.Intact || len(v.Problems) != 1 || !strings.Contains(v.Problems[0].What, "wrong key") {
		t.Errorf("old key only: %v", v.Problems)
	}
}
