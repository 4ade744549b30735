// Package testtool is how tests ask for what they need from the machine (an
// external tool such as curl, the system trust store). Outside CI a missing
// one skips the test, so a developer without curl can still run the suite.
// In CI (CI=true, which .ci/run sets) it fails the test instead: a test CI
// is meant to run must not pass by skipping. Recorder lets a test check
// that another check fails when it should.
package testtool

import (
	"fmt"
	"os"
	"os/exec"
	"testing"
)

// Require returns the path of the executable name, or skips (fails in CI)
// the test when it is not installed.
func Require(t testing.TB, name string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		Missing(t, name+" is not installed")
	}
	return path
}

// Missing skips the test for want of what, or fails it in CI.
func Missing(t testing.TB, what string) {
	t.Helper()
	if InCI() {
		t.Fatalf("%s; in CI (CI=true) this fails instead of skipping: .ci/run must provide it", what)
	}
	t.Skip(what)
}

// InCI reports whether the tests run in CI.
func InCI() bool { return os.Getenv("CI") == "true" }

// Recorder is a testing.TB that keeps the errors it is given instead of
// failing, so a test can check that a check fails when it should (the
// documentation checks' own tests).
type Recorder struct {
	testing.TB
	Errors []string
}

// Helper does nothing: the recorded errors are not reported.
func (r *Recorder) Helper() {}

// Errorf records the error.
func (r *Recorder) Errorf(format string, args ...any) {
	r.Errors = append(r.Errors, fmt.Sprintf(format, args...))
}
