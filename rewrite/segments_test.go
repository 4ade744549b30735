package rewrite

import (
	"strings"
	"testing"
)

func TestSegments(t *testing.T) {
	for _, tc := range []struct {
		name string
		text string
		want int
	}{
		{"empty", "", 0},
		{"short", "Your password is abc123", 1},
		{"160 GSM", strings.Repeat("a", 160), 1},
		{"161 GSM", strings.Repeat("a", 161), 2},
		{"306 GSM", strings.Repeat("a", 306), 2},
		{"307 GSM", strings.Repeat("a", 307), 3},
		{"extension chars count twice", strings.Repeat("€", 80), 1},
		{"extension over", strings.Repeat("€", 81), 2},
		{"70 UCS-2", strings.Repeat("ж", 70), 1},
		{"71 UCS-2", strings.Repeat("ж", 71), 2},
		{"emoji is two units", strings.Repeat("🎉", 35), 1},
		{"one non-GSM char switches alphabet", strings.Repeat("a", 100) + "ж", 2},
	} {
		if got := Segments(tc.text); got != tc.want {
			t.Errorf("%s: Segments = %d, want %d", tc.name, got, tc.want)
		}
	}
}
