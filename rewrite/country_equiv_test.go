package rewrite

import (
	"math/rand/v2"
	"strconv"
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
	t, ok := numberTypeNames[phonenumbers.GetNumberType(num)]
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
		for typ := range numberTypeNames {
			add(phonenumbers.GetExampleNumberForType(region, typ))
		}
	}
	for cc := range phonenumbers.GetSupportedGlobalNetworkCallingCodes() {
		add(phonenumbers.GetExampleNumberForNonGeoEntity(cc))
	}
	rng := rand.New(rand.NewPCG(6, 6))
	for cc := range phonenumbers.GetSupportedCallingCodes() {
		for range 4 {
			d := strconv.Itoa(cc)
			for len(d) < 7+rng.IntN(8) {
				d += strconv.Itoa(rng.IntN(10))
			}
			inputs = append(inputs, d)
		}
	}
	valid := 0
	for _, d := range inputs {
		want := lookupNumberFullValidation(d)
		if got := LookupNumber(d); got != want {
			t.Errorf("LookupNumber(%s) = %+v, full validation says %+v", d, got, want)
		}
		if want.Known() {
			valid++
		}
	}
	if valid < 1000 {
		t.Fatalf("only %d of %d inputs are valid numbers: the comparison would not cover validation", valid, len(inputs))
	}
}
