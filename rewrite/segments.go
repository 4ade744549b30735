package rewrite

import (
	"unicode/utf16"
	"unicode/utf8"
)

// Encoding is how an SMS text travels over the air.
type Encoding string

const (
	// GSM7 is the GSM 03.38 default alphabet, 7 bits per character.
	GSM7 Encoding = "gsm7"
	// UCS2 is UTF-16, used as soon as one character is outside GSM-7.
	UCS2 Encoding = "ucs2"
)

// Segments is what a text costs as SMS.
type Segments struct {
	Encoding Encoding
	// Units is the length in the encoding's units: septets for GSM-7 (an
	// extension-table character counts 2), UTF-16 code units for UCS-2 (a
	// character outside the BMP, e.g. an emoji, counts 2).
	Units int
	// Count is how many SMS parts the text needs: 1 up to 160 septets or 70
	// units, otherwise parts of 153 or 67 (the concatenation header takes the
	// rest), never splitting an escape sequence or a surrogate pair.
	Count int
}

// Per-part capacities for single and concatenated messages.
const (
	gsmSingle, gsmPart   = 160, 153
	ucs2Single, ucs2Part = 70, 67
)

// gsmBasic is the GSM 03.38 default alphabet (1 septet each).
var gsmBasic = makeSet("@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?" +
	"¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà")

// gsmExtension is the extension table: sent as ESC + character, 2 septets.
var gsmExtension = makeSet("^{}\\[~]|€\f")

func makeSet(s string) map[rune]bool {
	m := make(map[rune]bool, len(s))
	for _, r := range s {
		m[r] = true
	}
	return m
}

// gsmASCII is gsmWidth for ASCII, where almost every text stays: a table
// instead of two map lookups per character.
var gsmASCII = func() (t [128]uint8) {
	for r := range rune(len(t)) {
		switch {
		case gsmBasic[r]:
			t[r] = 1
		case gsmExtension[r]:
			t[r] = 2
		}
	}
	return t
}()

// gsmWidth is r's length in GSM-7 septets: 1 in the default alphabet, 2 in
// the extension table, 0 when GSM-7 cannot carry it.
func gsmWidth(r rune) int {
	switch {
	case r >= 0 && r < rune(len(gsmASCII)):
		return int(gsmASCII[r])
	case gsmBasic[r]:
		return 1
	case gsmExtension[r]:
		return 2
	}
	return 0
}

// CountSegments works out the encoding and part count of text. A single
// character outside GSM-7 makes the whole message UCS-2.
func CountSegments(text string) Segments {
	// Most texts are ASCII in the default alphabet and fit one part: one
	// pass over the bytes decides them.
	if units, ok := asciiGSMUnits(text); ok && units <= gsmSingle {
		s := Segments{Encoding: GSM7, Units: units}
		if units > 0 {
			s.Count = 1
		}
		return s
	}
	gsm := true
	for _, r := range text {
		if gsmWidth(r) == 0 {
			gsm = false
			break
		}
	}
	s := Segments{Encoding: GSM7}
	single, part, width := gsmSingle, gsmPart, gsmWidth
	if !gsm {
		s.Encoding, single, part, width = UCS2, ucs2Single, ucs2Part, utf16.RuneLen
	}
	for _, r := range text {
		s.Units += width(r)
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
	for _, r := range text {
		w := width(r)
		if used+w > part {
			s.Count++
			used = 0
		}
		used += w
	}
	return s
}

// asciiGSMUnits is the septets of an ASCII text GSM-7 carries; ok is
// false for any other text.
func asciiGSMUnits(text string) (units int, ok bool) {
	for i := 0; i < len(text); i++ {
		c := text[i]
		if c >= utf8.RuneSelf || gsmASCII[c] == 0 {
			return 0, false
		}
		units += int(gsmASCII[c])
	}
	return units, true
}
