package rewrite

import "testing"

// TestLookupNumber: real numbers from several countries are placed in their
// country with their line type; premium-rate and unplaceable numbers are
// recognisable as such. Numbers are from the ranges regulators reserve for
// drama and documentation where such ranges exist.
func TestLookupNumber(t *testing.T) {
	for _, tc := range []struct {
		name, digits, country, typ string
	}{
		{"US mobile-or-fixed", "12015550123", "US", "fixed-line-or-mobile"},
		{"Canada", "16135550123", "CA", "fixed-line-or-mobile"},
		{"UK mobile", "447400123456", "GB", "mobile"},
		{"UK drama range 07700 900", "447700900123", "", "unknown"},
		{"UK landline", "442079460958", "GB", "fixed-line"},
		{"UK premium 09", "449098790123", "GB", "premium-rate"},
		{"Germany mobile", "4915123456789", "DE", "mobile"},
		{"France mobile", "33612345678", "FR", "mobile"},
		{"France premium 089", "33892123456", "FR", "premium-rate"},
		{"Australia mobile", "61491570156", "AU", "mobile"},
		{"Australia premium 190", "611900123456", "AU", "premium-rate"},
		{"Switzerland mobile", "41781234567", "CH", "mobile"},
		{"unassigned US area code 555", "15551234567", "", "unknown"},
		{"no such country code 999", "99912345678", "", "unknown"},
		{"too short", "123", "", "unknown"},
		{"not digits", "4477009abc", "", "unknown"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := LookupNumber(tc.digits)
			if got.Country != tc.country || got.Type != tc.typ {
				t.Errorf("LookupNumber(%s) = %+v, want %s %s", tc.digits, got, tc.country, tc.typ)
			}
			if got.Premium() != (tc.typ == "premium-rate") {
				t.Errorf("Premium() = %v for %s", got.Premium(), tc.typ)
			}
		})
	}
}

func TestIsCountryCode(t *testing.T) {
	for code, want := range map[string]bool{"US": true, "GB": true, "DE": true, "us": false, "UK": false, "XX": false, "": false} {
		if got := IsCountryCode(code); got != want {
			t.Errorf("IsCountryCode(%q) = %v, want %v", code, got, want)
		}
	}
}
