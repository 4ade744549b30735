package rewrite

import (
	"strings"
	"testing"
)

func TestCountSegments(t *testing.T) {
	for _, tc := range []struct {
		name  string
		text  string
		enc   Encoding
		units int
		count int
	}{
		{"empty", "", GSM7, 0, 0},
		{"short gsm", "Your password is abc123", GSM7, 23, 1},
		{"gsm 160", strings.Repeat("a", 160), GSM7, 160, 1},
		{"gsm 161", strings.Repeat("a", 161), GSM7, 161, 2},
		{"gsm 306", strings.Repeat("a", 306), GSM7, 306, 2},
		{"gsm 307", strings.Repeat("a", 307), GSM7, 307, 3},
		{"extension counts 2", "{}[]~|^\\€", GSM7, 18, 1},
		{"extension at 160", strings.Repeat("a", 158) + "€", GSM7, 160, 1},
		{"extension at 161", strings.Repeat("a", 159) + "€", GSM7, 161, 2},
		// 152 septets then an escape pair: the pair moves to part 2 whole.
		{"escape never split", strings.Repeat("a", 152) + "€" + strings.Repeat("a", 152), GSM7, 306, 3},
		{"gsm accents", "Café à Zürich ñ", GSM7, 15, 1},
		{"one non-gsm char switches all", "Cafe ç", UCS2, 6, 1}, // ç is not GSM-7 (Ç is)
		{"ucs2 70", strings.Repeat("ж", 70), UCS2, 70, 1},
		{"ucs2 71", strings.Repeat("ж", 71), UCS2, 71, 2},
		{"ucs2 134", strings.Repeat("ж", 134), UCS2, 134, 2},
		{"ucs2 135", strings.Repeat("ж", 135), UCS2, 135, 3},
		{"emoji is a surrogate pair", "Hi 👋", UCS2, 5, 1},
		{"35 emoji fill 70", strings.Repeat("👋", 35), UCS2, 70, 1},
		{"surrogate never split", strings.Repeat("ж", 66) + "👋" + strings.Repeat("ж", 66), UCS2, 134, 3},
		{"arabic", "كلمة المرور", UCS2, 11, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := CountSegments(tc.text)
			if got.Encoding != tc.enc || got.Units != tc.units || got.Count != tc.count {
				t.Errorf("CountSegments: got %+v, want %s units %d count %d", got, tc.enc, tc.units, tc.count)
			}
		})
	}
}

func BenchmarkCountSegments(b *testing.B) {
	text := strings.Repeat("Guest Wi-Fi password: Zx9!q ", 17)
	for b.Loop() {
		CountSegments(text)
	}
}
