package testtool

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

const helperEnv = "POSTERN_TESTTOOL_HELPER"

// TestHelperMissingTool is run by TestMissingToolSkipsOrFails as a
// subprocess; on its own it does nothing.
func TestHelperMissingTool(t *testing.T) {
	if os.Getenv(helperEnv) == "" {
		return
	}
	Require(t, "postern-no-such-tool-7f3a")
	t.Log("after Require")
}

// TestMissingToolSkipsOrFails: a missing tool skips the test, except with
// CI=true, where the test fails (and stops at Require).
func TestMissingToolSkipsOrFails(t *testing.T) {
	for _, tc := range []struct {
		ci       string
		fails    bool
		contains string
	}{
		{"", false, "--- SKIP: TestHelperMissingTool"},
		{"false", false, "--- SKIP: TestHelperMissingTool"},
		{"true", true, "--- FAIL: TestHelperMissingTool"},
	} {
		cmd := exec.Command(os.Args[0], "-test.run=^TestHelperMissingTool$", "-test.v", "-test.count=1")
		cmd.Env = append(os.Environ(), helperEnv+"=1", "CI="+tc.ci)
		out, err := cmd.CombinedOutput()
		if (err != nil) != tc.fails || !strings.Contains(string(out), tc.contains) ||
			!strings.Contains(string(out), "postern-no-such-tool-7f3a is not installed") || strings.Contains(string(out), "after Require") {
			t.Errorf("CI=%q: exit error %v, want failed=%v and %q, stopped at Require:\n%s", tc.ci, err, tc.fails, tc.contains, out)
		}
	}
}

// TestRequireFindsInstalledTool: an installed tool's path comes back.
func TestRequireFindsInstalledTool(t *testing.T) {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", filepath.Dir(self)+string(os.PathListSeparator)+os.Getenv("PATH"))
	if got := Require(t, filepath.Base(self)); got != self {
		t.Errorf("Require = %q, want %q", got, self)
	}
}
