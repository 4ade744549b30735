package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestDumpMemory: BENCH_MEMDUMP's files hold the kernel's account of the
// process — the peak RSS and the file-backed/anonymous split the RSS
// breakdown in docs/benchmarks.md is made of.
func TestDumpMemory(t *testing.T) {
	dir := t.TempDir()
	pid := os.Getpid()
	dumpMemory(dir, pid)
	for name, want := range map[string]string{"status": "VmHWM:", "smaps_rollup": "Anonymous:", "smaps": "Rss:"} {
		b, err := os.ReadFile(filepath.Join(dir, fmt.Sprintf("postern-%d.%s", pid, name)))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(b), want) {
			t.Errorf("%s lacks %q", name, want)
		}
	}
}
