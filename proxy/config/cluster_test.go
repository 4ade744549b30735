package config

import (
	"strings"
	"testing"
	"time"
)

// TestClusterKeys: [cluster]'s defaults, its secret, and a clear error for
// each wrong value, at its line.
func TestClusterKeys(t *testing.T) {
	load := func(src string, env map[string]string) (*Config, error) {
		return Load("t.toml", []byte(src), LoadOptions{AllowNoRoutes: true, LookupEnv: func(k string) (string, bool) {
			v, ok := env[k]
			return v, ok
		}})
	}
	cfg, err := load("", nil)
	if err != nil || cfg.Cluster.Enabled() {
		t.Fatalf("no [cluster]: %v, enabled %v", err, cfg.Cluster.Enabled())
	}
	cfg, err = load("[cluster]\nredis = \"rediss://postern@redis.example:6380/2\"\nredis_password = \"env:RP\"\n",
		map[string]string{"RP": "pw-SECRET-1"})
	if err != nil {
		t.Fatal(err)
	}
	c := cfg.Cluster
	if c.Redis.String() != "rediss://postern@redis.example:6380/2" || c.KeyPrefix != "postern:" || c.OnStoreError != OnStoreErrorLocal ||
		c.StoreTimeout != 50*time.Millisecond || c.DedupWindow != 2*time.Minute || c.Password() != "pw-SECRET-1" {
		t.Errorf("defaults: %+v", c)
	}
	if got := cfg.Redact("x pw-SECRET-1 y"); got != "x <redacted> y" {
		t.Errorf("redis_password is not redacted: %q", got)
	}
	cfg, err = load("[cluster]\nredis = \"redis://r:6379\"\nkey_prefix = \"site-a:\"\non_store_error = \"refuse\"\nstore_timeout = \"200ms\"\ndedup_window = \"off\"\n", nil)
	if err != nil {
		t.Fatal(err)
	}
	if c := cfg.Cluster; c.KeyPrefix != "site-a:" || c.OnStoreError != OnStoreErrorRefuse || c.StoreTimeout != 200*time.Millisecond || c.DedupWindow != 0 {
		t.Errorf("set: %+v", c)
	}
	for src, want := range map[string]string{
		"[cluster]\nkey_prefix = \"x:\"\n":                                  "t.toml:1:1: [cluster] needs redis",
		"[cluster]\nredis = \"http://r:6379\"\n":                            `t.toml:2:1: redis: scheme "http": want redis:// or rediss://`,
		"[cluster]\nredis = \"redis://:pw@r:6379\"\n":                       "t.toml:2:1: redis: the URL may not carry a password: set redis_password",
		"[cluster]\nredis = \"redis://r:6379/x\"\n":                         "redis: the path must be a database number",
		"[cluster]\nredis = \"redis://r:6379?dial_timeout=1s\"\n":           "options in the URL are not supported",
		"[cluster]\nredis = \"redis://r\"\non_store_error = \"drop\"\n":     `t.toml:3:1: on_store_error "drop": want "local"`,
		"[cluster]\nredis = \"redis://r\"\nstore_timeout = \"50\"\n":        `store_timeout: invalid duration "50"`,
		"[cluster]\nredis = \"redis://r\"\nstore_timeout = \"1m\"\n":        "store_timeout must be at most 10s",
		"[cluster]\nredis = \"redis://r\"\ndedup_window = \"never\"\n":      `dedup_window: invalid duration "never" (write it with a unit, e.g. "10s"), or "off"`,
		"[cluster]\nredis = \"redis://r\"\nredis_password = \"env:NOPE\"\n": "redis_password: environment variable NOPE is not set",
		"[cluster]\nredis = \"redis://r\"\nkey_prefix = \"a b\"\n":          "key_prefix may not contain spaces",
		"[cluster]\nredis = \"redis://r\"\nredis_pasword = \"x\"\n":         `unknown key "cluster.redis_pasword" (did you mean "redis_password"?)`,
	} {
		_, err := load(src, nil)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: got %v, want %q", src, err, want)
		}
	}
}
