package config_test

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/postern/postern/proxy/config"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden from the current output")

// TestConfigGolden: every provider and dialect, config in, the normalised
// `postern check` summary (or every error with its line) out. Secrets come
// from a fake environment and must never appear in either.
func TestConfigGolden(t *testing.T) {
	files, err := filepath.Glob("testdata/*.toml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no golden configs: %v", err)
	}
	const secret = "s3cret-VALUE-from-env"
	for _, path := range files {
		name := strings.TrimSuffix(filepath.Base(path), ".toml")
		t.Run(name, func(t *testing.T) {
			src, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			cfg, err := config.Load(filepath.Base(path), src, config.LoadOptions{LookupEnv: func(string) (string, bool) { return secret, true }})
			var got string
			if err != nil {
				got = "ERROR\n" + err.Error() + "\n"
			} else {
				// The root set depends on the machine; the rest must not.
				got = strings.ReplaceAll(cfg.Summary(), cfg.Roots.Report().String(), "<roots>") + "\n"
				got = strings.ReplaceAll(got, "; ", ";\n  ")
			}
			if strings.Contains(got, secret) {
				t.Errorf("output reveals the secret:\n%s", got)
			}
			if strings.HasPrefix(name, "error-") != strings.HasPrefix(got, "ERROR") {
				t.Errorf("%s: error files must fail and others load:\n%s", name, got)
			}
			golden := strings.TrimSuffix(path, ".toml") + ".golden"
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test ./proxy/config -run TestConfigGolden -update)", err)
			}
			if got != string(want) {
				t.Errorf("got:\n%s\nwant:\n%s", got, want)
			}
		})
	}
}
