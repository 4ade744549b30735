package rewrite

import (
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"

	"github.com/nyaruka/phonenumbers"
)

// lookupNumberFullValidation is LookupNumber as first written, with
// libphonenumber's validation spelled out call by call. LookupNumber makes
// fewer calls for speed and must give the same answer for every number.
func lookupNumberFullValidation(digits string) NumberInfo {
	unknown := NumberInfo{Type: "unknown"}
	if len(digits) < 7 || len(digits) > 15 {
		return unknown
	}
	num, err := phonenumbers.Parse("+"+digits, "")
	if err != nil || !phonenumbers.IsValidNumber(num) {
		return unknown
	}
	region := phonenumbers.GetRegionCodeForNumber(num)
	if region == "" || region == "ZZ" || region == "001" {
		return unknown
	}
	t, ok := libraryTypeNames[phonenumbers.GetNumberType(num)]
	if !ok {
		t = "unknown"
	}
	return NumberInfo{Country: region, Type: t}
}

// TestLookupNumber_SameAsFullValidation: for libphonenumber's example number
// of every type in every region and non-geographic entity (valid numbers,
// where the shortcut matters), and for pseudo-random digits behind every
// calling code (mostly invalid ones), LookupNumber answers exactly what full
// validation answers.
func TestLookupNumber_SameAsFullValidation(t *testing.T) {
	var inputs []string
	add := func(pn *phonenumbers.PhoneNumber) {
		if pn != nil {
			inputs = append(inputs, strconv.Itoa(int(pn.GetCountryCode()))+phonenumbers.GetNationalSignificantNumber(pn))
		}
	}
	for region := range phonenumbers.GetSupportedRegions() {
		for typ := range libraryTypeNames {
			add(phonenumbers.GetExampleNumberForType(region, typ))
		}
	}
	for cc := range phonenumbers.GetSupportedGlobalNetworkCallingCodes() {
		add(phonenumbers.GetExampleNumberForNonGeoEntity(cc))
	}
	// Random digits behind every calling code, some starting with what
	// national prefixes look like (0, 1, 8), which the library may strip
	// even after a "+".
	rng := rand.New(rand.NewPCG(6, 6))
	for cc := range phonenumbers.GetSupportedCallingCodes() {
		for _, start := range []string{"", "", "", "", "0", "00", "1", "8"} {
			d := strconv.Itoa(cc) + start
			for len(d) < 7+rng.IntN(9) {
				d += strconv.Itoa(rng.IntN(10))
			}
			inputs = append(inputs, d)
		}
	}
	// The same for national numbers written after the calling code with
	// their trunk prefix, e.g. +44 (0)20 7946 0958.
	for region := range phonenumbers.GetSupportedRegions() {
		pn := phonenumbers.GetExampleNumber(region)
		if ndd := phonenumbers.GetNddPrefixForRegion(region, true); pn != nil && ndd != "" {
			inputs = append(inputs, strconv.Itoa(int(pn.GetCountryCode()))+ndd+phonenumbers.GetNationalSignificantNumber(pn))
		}
	}
	inputs = append(inputs, "1234567", "999999999", "80012345678", "8823456789", "00441234567", "44 2079460958", "4477009abc")
	valid := 0
	for _, d := range inputs {
		want := lookupNumberFullValidation(d)
		if strings.Trim(d, "0123456789") != "" {
			// LookupNumber takes digits (Message.To); the library would
			// also read punctuation, which postern strips before.
			want = NumberInfo{Type: "unknown"}
		}
		if got := LookupNumber(d); got != want {
			t.Errorf("LookupNumber(%s) = %+v, full validation says %+v", d, got, want)
		}
		if want.Known() {
			valid++
		}
	}
	if valid < 1000 || len(inputs) < 3000 {
		t.Fatalf("only %d of %d inputs are valid numbers: the comparison would not cover validation", valid, len(inputs))
	}
}

// BenchmarkLookupNumber compares LookupNumber with libphonenumber's own
// validation calls for a few kinds of number: valid ones in single- and
// multi-region calling codes, and an invalid NANPA one (555), the worst case,
// which every region sharing +1 is asked about.
//
//	go test -run='^$' -bench=LookupNumber -benchmem ./rewrite/
func BenchmarkLookupNumber(b *testing.B) {
	for _, digits := range []string{"15551234567", "12015550123", "447400123456", "4915123456789"} {
		b.Run(digits, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				LookupNumber(digits)
			}
		})
		b.Run(digits+"/libphonenumber", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				lookupNumberFullValidation(digits)
			}
		})
	}
}
