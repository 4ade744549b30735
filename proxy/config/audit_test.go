package config_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/postern/postern/proxy/audit"
	"github.com/postern/postern/proxy/config"
)

const sandboxRoute = `
[[route]]
name = "try"
match_path = "/http/sendmsg"
inbound = "clickatell-http"
provider = "sandbox"
`

// TestChainKey: [audit] chain_key is a secret (env:, file:, literal) of at
// least 16 characters; check's sentence names its source and fingerprint,
// never the key, and says when there is none; ReadChainKey reads it alone.
func TestChainKey(t *testing.T) {
	const key = "0123456789abcdef-chain"
	env := func(k string) (string, bool) {
		return map[string]string{"CHAIN": key, "SHORT": "short"}[k], k == "CHAIN" || k == "SHORT"
	}
	load := func(src string, opts config.LoadOptions) (*config.Config, error) {
		opts.LookupEnv = env
		return config.Load("t.toml", []byte(src+sandboxRoute), opts)
	}
	cfg, err := load("[audit]\nchain_key = \"env:CHAIN\"\n", config.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if string(cfg.Audit.ChainKey) != key {
		t.Error("chain_key not resolved from env")
	}
	s := cfg.AuditChainSummary()
	if !strings.Contains(s, "HMAC-SHA256 keyed with [audit] chain_key from env CHAIN (fingerprint "+audit.KeyFingerprint([]byte(key))+")") || strings.Contains(s, key) {
		t.Errorf("summary: %s", s)
	}
	if cfg.Redact("x "+key) != "x <redacted>" {
		t.Error("chain_key is not redacted like every secret")
	}
	if s := (&config.Config{}).AuditChainSummary(); !strings.Contains(s, "plain SHA-256") {
		t.Errorf("summary without key: %s", s)
	}
	cfg, err = load("[audit]\nchain_key = \"env:CHAIN\"\n", config.LoadOptions{SkipSecrets: true})
	if err != nil || strings.Contains(cfg.AuditChainSummary(), "fingerprint") {
		t.Errorf("-skip-secrets: %v %s", err, cfg.AuditChainSummary())
	}
	for src, want := range map[string]string{
		"[audit]\nchain_key = \"env:SHORT\"\n":   "t.toml:2:1: chain_key must be at least 16 characters",
		"[audit]\nchain_key = \"env:MISSING\"\n": "chain_key: environment variable MISSING is not set",
	} {
		if _, err := load(src, config.LoadOptions{}); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: got %v, want %q", src, err, want)
		}
	}

	dir := t.TempDir()
	keyFile := filepath.Join(dir, "k")
	os.WriteFile(keyFile, []byte(key+"\n"), 0o600)
	path := filepath.Join(dir, "c.toml")
	// ReadChainKey needs nothing else from the file, not even valid routes.
	os.WriteFile(path, []byte("[audit]\nchain_key = \"file:"+keyFile+"\"\n[[route]]\nname = 1\n"), 0o600)
	got, err := config.ReadChainKey(path)
	if err != nil || string(got) != key {
		t.Errorf("ReadChainKey: %v", err)
	}
	os.WriteFile(path, []byte("[audit]\nfile = \"x\"\n"), 0o600)
	if got, err := config.ReadChainKey(path); err != nil || got != nil {
		t.Errorf("ReadChainKey without key: %v %v", got, err)
	}
}
