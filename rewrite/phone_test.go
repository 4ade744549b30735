package rewrite

import (
	"strings"
	"testing"
)

func TestNormalizeNumber_SponsorFormats(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"15551234567", "15551234567"},
		{"+15551234567", "15551234567"},
		{"+1 (555) 123-4567", "15551234567"},
		{"1 555 123 4567", "15551234567"},
		{"1.555.123.4567", "15551234567"},
		{"1-555-123-4567", "15551234567"},
		{"0044 20 7946 0958", "442079460958"},
		{"(+44) 20 7946 0958", "442079460958"},
		{" 15551234567 ", "15551234567"}, // an unescaped "+" arrives as a space
		{"1234567", "1234567"},
		{"123456789012345", "123456789012345"},
		{"00123456789012345", "123456789012345"},
	} {
		got, err := NormalizeNumber(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("NormalizeNumber(%q): got %q, %v, want %q", tc.in, got, err, tc.want)
		}
	}
}

func TestNormalizeNumber_Rejects(t *testing.T) {
	for _, in := range []string{
		"",
		"+",
		"123456",           // 6 digits
		"1234567890123456", // 16 digits
		"001234567890123456",
		"0044",
		"555-CALL-NOW",
		"15551234567x",
		"1555123456\x00",
		"1555/1234567",
		"+1555+1234567",
		"1+5551234567",
		"+0044207946095", // "+" and "00" together is no known format
		"07700 900123",   // national format: no country code starts with 0
		"１５５５１２３４５６７",    // full-width digits
		"15551234567\n",
		strings.Repeat("1", 100000),
	} {
		if got, err := NormalizeNumber(in); err == nil {
			t.Errorf("NormalizeNumber(%q): got %q, want error", in, got)
		} else if len(in) >= 7 && strings.Contains(err.Error(), in) {
			t.Errorf("NormalizeNumber(%q): error %q quotes the number", in, err)
		}
	}
}
