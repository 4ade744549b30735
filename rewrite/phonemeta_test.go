package rewrite

import (
	"bytes"
	"flag"
	gobuild "go/build"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/postern/postern/rewrite/internal/phonemeta"
)

var updateNumberMetadata = flag.Bool("update-number-metadata", false, "rewrite phonemeta_data.go from the libphonenumber go.mod names")

// numberLibraryVersion is the version of nyaruka/phonenumbers go.mod
// requires (test binaries carry no module list to read it from).
func numberLibraryVersion(t *testing.T) string {
	t.Helper()
	mod, err := os.ReadFile("../go.mod")
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(string(mod)) {
		f := strings.Fields(line)
		if len(f) >= 2 && f[0] == "github.com/nyaruka/phonenumbers" {
			return f[1]
		}
	}
	t.Fatal("go.mod does not require github.com/nyaruka/phonenumbers")
	return ""
}

// TestNumberMetadataIsCurrent: phonemeta_data.go is exactly what the
// generator writes from the library go.mod names, so bumping the library
// without regenerating (or editing the generated file) fails here.
func TestNumberMetadataIsCurrent(t *testing.T) {
	want, err := phonemeta.Source(numberLibraryVersion(t))
	if err != nil {
		t.Fatal(err)
	}
	if *updateNumberMetadata {
		if err := os.WriteFile("phonemeta_data.go", want, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	got, err := os.ReadFile("phonemeta_data.go")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("phonemeta_data.go is not what the library go.mod names gives; regenerate it: go test ./rewrite -run TestNumberMetadataIsCurrent -update-number-metadata")
	}
}

// TestRewriteDoesNotLinkTheNumberLibrary: the library is for generating and
// for tests only; importing it again would bring back its start-up cost.
func TestRewriteDoesNotLinkTheNumberLibrary(t *testing.T) {
	p, err := gobuild.ImportDir(".", 0) // non-test files only
	if err != nil {
		t.Fatal(err)
	}
	for _, imp := range p.Imports {
		if strings.HasPrefix(imp, "github.com/nyaruka/") || strings.Contains(imp, "/internal/phonemeta") {
			t.Errorf("rewrite imports %s", imp)
		}
	}
}

// TestBinaryDoesNotLinkTheNumberLibrary: nothing postern's binary is built
// from imports the library (or protobuf, which came with it).
func TestBinaryDoesNotLinkTheNumberLibrary(t *testing.T) {
	cmd := exec.Command("go", "list", "-deps", "github.com/postern/postern")
	cmd.Dir = ".."
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	deps := strings.Fields(string(out))
	if len(deps) < 50 {
		t.Fatalf("go list gave %d packages; the check would prove nothing", len(deps))
	}
	for _, p := range deps {
		if strings.HasPrefix(p, "github.com/nyaruka/") || strings.HasPrefix(p, "google.golang.org/protobuf") || strings.HasSuffix(p, "/internal/phonemeta") {
			t.Errorf("the binary links %s", p)
		}
	}
}
