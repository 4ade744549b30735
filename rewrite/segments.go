package rewrite

import "unicode/utf16"

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

// CountSegments works out the encoding and part count of text. A single
// character outside GSM-7 makes the whole message UCS-2.
func CountSegments(text string) Segments {
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
