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

func TestParseNumber_DefaultCountry(t *testing.T) {
	for _, tc := range []struct{ in, country, want, wantCountry string }{
		{"07700 900123", "GB", "447700900123", "GB"},      // national with trunk 0
		{"020 7946 0958", "GB", "442079460958", "GB"},     // London landline
		{"44 7700 900123", "GB", "447700900123", "GB"},    // own calling code without "+"
		{"+1 555 123 4567", "GB", "15551234567", "US"},    // "+" always wins
		{"0033 6 12 34 56 78", "GB", "33612345678", "FR"}, // "00" always wins
		{"(555) 123-4567", "US", "15551234567", "US"},     // US national has no trunk 0
		{"1 555 123 4567", "US", "15551234567", "US"},     // trunk 1 recognised
		{"06 12 34 56 78", "FR", "33612345678", "FR"},     // French mobile
		{"33612345678", "GB", "33612345678", "FR"},        // not a possible GB number: international
		{"0151 99999999", "DE", "4915199999999", "DE"},    // unallocated range: not refused
		{"15551234567", "", "15551234567", "US"},          // no default country: as before
		{"+999 1234 5678", "", "99912345678", ""},         // unassigned calling code still sends
		{"+1 555 0100 999", "US", "15550100999", "US"},    // metadata-invalid but well formed
		{"+44 7700 900123", "US", "447700900123", "GB"},   // country reported from the number
	} {
		got, err := ParseNumber(tc.in, tc.country)
		if err != nil || got.Digits != tc.want || got.Country != tc.wantCountry {
			t.Errorf("ParseNumber(%q, %q): got %+v, %v, want %s/%s", tc.in, tc.country, got, err, tc.want, tc.wantCountry)
		}
	}
}

func TestParseNumber_DefaultCountryRejects(t *testing.T) {
	for _, tc := range []struct{ in, country string }{
		{"0123", "GB"},        // too short for anything
		{"0 1", "US"},         // too short
		{"0000000000", "GB"},  // a national 0 that reads as nothing
		{"07700 9001x", "GB"}, // letters
	} {
		if got, err := ParseNumber(tc.in, tc.country); err == nil {
			t.Errorf("ParseNumber(%q, %q): got %+v, want error", tc.in, tc.country, got)
		} else if strings.Contains(err.Error(), tc.in) {
			t.Errorf("error %q quotes the number", err)
		}
	}
}

func TestValidCountry(t *testing.T) {
	if !ValidCountry("GB") || !ValidCountry("US") || ValidCountry("gb") || ValidCountry("XX") || ValidCountry("") {
		t.Error("ValidCountry: want GB, US known and gb, XX, \"\" unknown")
	}
}
