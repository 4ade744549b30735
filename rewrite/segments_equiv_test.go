package rewrite

import (
	"strings"
	"testing"
	"unicode/utf16"
)

// countSegmentsReference is CountSegments as first written (a width per
// character collected in a slice, two map lookups each): the plain
// statement of the rules the faster version must keep.
func countSegmentsReference(text string) Segments {
	gsm := true
	for _, r := range text {
		if !gsmBasic[r] && !gsmExtension[r] {
			gsm = false
			break
		}
	}
	var widths []int
	s := Segments{Encoding: GSM7}
	single, part := gsmSingle, gsmPart
	if gsm {
		for _, r := range text {
			w := 1
			if gsmExtension[r] {
				w = 2
			}
			widths = append(widths, w)
		}
	} else {
		s.Encoding, single, part = UCS2, ucs2Single, ucs2Part
		for _, r := range text {
			widths = append(widths, utf16.RuneLen(r))
		}
	}
	for _, w := range widths {
		s.Units += w
	}
	switch {
	case s.Units == 0:
		return s
	case s.Units <= single:
		s.Count = 1
		return s
	}
	// Greedy fill: a 2-unit character that does not fit goes whole into the
	// next part, as handsets and SMSCs split.
	used := 0
	s.Count = 1
	for _, w := range widths {
		if used+w > part {
			s.Count++
			used = 0
		}
		used += w
	}
	return s
}

// FuzzCountSegments: CountSegments agrees with the reference on any text.
func FuzzCountSegments(f *testing.F) {
	for _, s := range []string{"", "Your password is Zx9!q", "€uro {curly} [square] ~tilde^ |pipe| \\", "Grüße ÄÖÜ àèìòù", "emoji 😀 here",
		"Ελληνικά ΔΦΓΛΩΠΨΣΘΞ", "日本語のテキスト", "\xff\xfe invalid", "\x00\x7f controls \f\n\r"} {
		f.Add(s)
		f.Add(strings.Repeat(s+" ", 40)) // several parts, splits at every kind of character
	}
	f.Fuzz(func(t *testing.T, text string) {
		if got, want := CountSegments(text), countSegmentsReference(text); got != want {
			t.Fatalf("CountSegments(%q) = %+v, reference %+v", text, got, want)
		}
	})
}
