package rewrite

import (
	"net/url"
	"strings"
	"testing"
)

// FuzzUnescapeValidSameAsQueryUnescape: for every string validEscapes
// accepts, unescapeValid decodes exactly as url.QueryUnescape, on the
// stack and past it.
func FuzzUnescapeValidSameAsQueryUnescape(f *testing.F) {
	for _, s := range []string{"", "plain", "Your+guest+password+is+Xk7%21%2C", "%2B15551234567", "%e2%82%ac+%ff%00",
		"a%", "%4", "%zz", strings.Repeat("x%41+", 200), strings.Repeat("y", maxStackUnescape-3) + "%41", strings.Repeat("z", maxStackUnescape-2) + "%41"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if !validEscapes(s) {
			return
		}
		want, err := url.QueryUnescape(s)
		if err != nil {
			t.Fatalf("validEscapes accepted %q, which url.QueryUnescape refuses: %v", s, err)
		}
		if got := unescapeValid(s); got != want {
			t.Fatalf("unescapeValid(%q) = %q, url.QueryUnescape %q", s, got, want)
		}
	})
}
