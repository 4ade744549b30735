package rewrite

import (
	"net/url"
	"strings"
	"testing"
)

// FuzzUnescapeValidSameAsQueryUnescape: validEscapes accepts exactly what
// url.QueryUnescape does, and for those strings unescapeValid decodes
// exactly as url.QueryUnescape, on the stack and past it.
func FuzzUnescapeValidSameAsQueryUnescape(f *testing.F) {
	for _, s := range []string{"", "plain", "Your+guest+password+is+Xk7%21%2C", "%2B15551234567", "%e2%82%ac+%ff%00",
		"a%", "%4", "%zz", strings.Repeat("x%41+", 200), strings.Repeat("y", maxStackUnescape-3) + "%41", strings.Repeat("z", maxStackUnescape-2) + "%41"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		want, err := url.QueryUnescape(s)
		if validEscapes(s) != (err == nil) {
			t.Fatalf("validEscapes(%q) = %v, url.QueryUnescape's error %v", s, validEscapes(s), err)
		}
		if err != nil {
			return
		}
		if got := unescapeValid(s); got != want {
			t.Fatalf("unescapeValid(%q) = %q, url.QueryUnescape %q", s, got, want)
		}
	})
}

// FuzzOneLineSameAsMap: oneLine's shortcut for valid text without line
// breaks answers as strings.Map does.
func FuzzOneLineSameAsMap(f *testing.F) {
	for _, s := range []string{"", "a55b8f8d56f33440e993aa614c68bf8b", "a\r\nb", "bad \xff utf8", "\uFFFD ok", "x\n"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		want := strings.Map(func(r rune) rune {
			if r == '\r' || r == '\n' {
				return ' '
			}
			return r
		}, s)
		if got := oneLine(s); got != want {
			t.Fatalf("oneLine(%q) = %q, strings.Map %q", s, got, want)
		}
	})
}
