package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestKubernetesConfigMapIsValid: the config shipped in
// deploy/kubernetes.yaml passes `postern check`.
func TestKubernetesConfigMapIsValid(t *testing.T) {
	t.Setenv("CLICKATELL_API_KEY", "k-SECRET-k8s")
	src, err := os.ReadFile("deploy/kubernetes.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var cfg []string
	in := false
	for _, line := range strings.Split(string(src), "\n") {
		switch {
		case strings.TrimSpace(line) == "config.toml: |":
			in = true
		case in && (strings.HasPrefix(line, "    ") || strings.TrimSpace(line) == ""):
			cfg = append(cfg, strings.TrimPrefix(line, "    "))
		case in:
			in = false
		}
	}
	if len(cfg) == 0 {
		t.Fatal("no config.toml in the ConfigMap")
	}
	path := filepath.Join(t.TempDir(), "config.toml")
	if err := os.WriteFile(path, []byte(strings.Join(cfg, "\n")), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, stdout, stderr := runCLI(t, "check", "-config", path); code != 0 {
		t.Fatalf("postern check of the ConfigMap's config: exit %d\n%s%s", code, stdout, stderr)
	}
}

// TestSystemdUnitHardening: the unit keeps the hardening the README promises.
func TestSystemdUnitHardening(t *testing.T) {
	src, err := os.ReadFile("deploy/postern.service")
	if err != nil {
		t.Fatal(err)
	}
	lines := map[string]bool{}
	for _, l := range strings.Split(string(src), "\n") {
		lines[strings.TrimSpace(l)] = true
	}
	for _, want := range []string{"DynamicUser=yes", "ProtectSystem=strict", "NoNewPrivileges=yes", "CapabilityBoundingSet=",
		"AmbientCapabilities=", "ExecReload=/bin/kill -HUP $MAINPID", "PrivateTmp=yes"} {
		if !lines[want] {
			t.Errorf("deploy/postern.service lacks %q", want)
		}
	}
}
