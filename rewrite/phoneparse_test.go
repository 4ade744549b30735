package rewrite

import (
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"

	"github.com/nyaruka/phonenumbers"
)

// libraryTypeNames names the library's number types as NumberInfo does.
var libraryTypeNames = map[phonenumbers.PhoneNumberType]string{
	phonenumbers.FIXED_LINE:           "fixed-line",
	phonenumbers.MOBILE:               "mobile",
	phonenumbers.FIXED_LINE_OR_MOBILE: "fixed-line-or-mobile",
	phonenumbers.TOLL_FREE:            "toll-free",
	phonenumbers.PREMIUM_RATE:         "premium-rate",
	phonenumbers.SHARED_COST:          "shared-cost",
	phonenumbers.VOIP:                 "voip",
	phonenumbers.PERSONAL_NUMBER:      "personal-number",
	phonenumbers.PAGER:                "pager",
	phonenumbers.UAN:                  "uan",
	phonenumbers.VOICEMAIL:            "voicemail",
}

// libraryParse is what the library answers for digits (with region "",
// for "+"+digits): the E.164 digits and whether the number is possible, or
// ok false for a parse error.
func libraryParse(digits, region string) (e164 string, possible, ok bool) {
	in := digits
	if region == "" {
		in = "+" + digits
	}
	pn, err := phonenumbers.Parse(in, region)
	if err != nil {
		return "", false, false
	}
	return strings.TrimPrefix(phonenumbers.Format(pn, phonenumbers.E164), "+"), phonenumbers.IsPossibleNumber(pn), true
}

// ownParse is the same from numberTyper.
func ownParse(digits, region string) (e164 string, possible, ok bool) {
	typer := sharedNumberTyper()
	cc, nsn, err := typer.parse(digits, region)
	if err != nil {
		return "", false, false
	}
	return strconv.Itoa(cc) + nsn, typer.possible(cc, nsn), true
}

// checkParseSameAsLibrary fails t when the parser and the library differ
// on digits dialled in region ("" for international).
func checkParseSameAsLibrary(t *testing.T, digits, region string) {
	t.Helper()
	we, wp, wok := libraryParse(digits, region)
	ge, gp, gok := ownParse(digits, region)
	if we != ge || wp != gp || wok != gok {
		t.Errorf("parse(%q, %q) = (%q, possible %v, ok %v); the library: (%q, %v, %v)", digits, region, ge, gp, gok, we, wp, wok)
	}
	if region == "" && wok {
		if got, want := countryOf(digits), libraryCountryOf(digits); got != want {
			t.Errorf("countryOf(%q) = %q; the library: %q", digits, got, want)
		}
	}
}

// libraryCountryOf is countryOf as first written, on the library.
func libraryCountryOf(digits string) string {
	pn, err := phonenumbers.Parse("+"+digits, "")
	if err != nil {
		return ""
	}
	if r := phonenumbers.GetRegionCodeForNumber(pn); r != "" && r != "001" {
		return r
	}
	if r := phonenumbers.GetRegionCodeForCountryCode(int(pn.GetCountryCode())); r != "ZZ" && r != "001" {
		return r
	}
	return ""
}

// parseSamples are digits worth parsing in region: its example numbers of
// every type, nationally (with its trunk prefix, without, with a wrong
// one), after its own calling code, after its IDD and another region's
// calling code, cut short and made long, and pseudo-random digits of every
// length with the region's likely beginnings.
func parseSamples(rng *rand.Rand, region string) []string {
	var out []string
	ndd := phonenumbers.GetNddPrefixForRegion(region, true)
	cc := strconv.Itoa(phonenumbers.GetCountryCodeForRegion(region))
	idd := ""
	if md := geoMeta(region); md != nil {
		idd = md.internationalPrefix
	}
	iddDigits := strings.Map(func(r rune) rune {
		if r >= '0' && r <= '9' {
			return r
		}
		return -1
	}, idd)
	if len(iddDigits) > 4 {
		iddDigits = iddDigits[:2]
	}
	for typ := range libraryTypeNames {
		pn := phonenumbers.GetExampleNumberForType(region, typ)
		if pn == nil {
			continue
		}
		nsn := phonenumbers.GetNationalSignificantNumber(pn)
		out = append(out, nsn, ndd+nsn, "0"+nsn, "1"+nsn, cc+nsn, cc+ndd+nsn, cc+"0"+nsn,
			"00"+cc+nsn, "011"+cc+nsn, iddDigits+cc+nsn, iddDigits+"44"+nsn, iddDigits+"0"+nsn,
			nsn[:len(nsn)/2], nsn+"1", nsn+"12345", ndd+nsn[:len(nsn)-1])
	}
	for n := 1; n <= 17; n++ {
		for _, start := range []string{"", ndd, cc, "0", "00", iddDigits} {
			b := []byte(start)
			for len(b) < n {
				b = append(b, byte('0'+rng.IntN(10)))
			}
			out = append(out, string(b[:n]))
		}
	}
	return out
}

// TestParseSameAsLibrary: for every supported region, the parser reads its
// example numbers in every form a sponsor or ISE could send them, and
// random digits, exactly as libphonenumber does — the calling code, the
// national significant number, whether it is possible — and reads every
// international number (the "+" form) the same, with the same region.
func TestParseSameAsLibrary(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 8))
	regions := 0
	for region := range phonenumbers.GetSupportedRegions() {
		regions++
		for _, d := range parseSamples(rng, region) {
			if d == "" {
				continue
			}
			checkParseSameAsLibrary(t, d, region)
			checkParseSameAsLibrary(t, d, "")
		}
	}
	for cc := range phonenumbers.GetSupportedGlobalNetworkCallingCodes() {
		pn := phonenumbers.GetExampleNumberForNonGeoEntity(cc)
		if pn == nil {
			continue
		}
		nsn := phonenumbers.GetNationalSignificantNumber(pn)
		for _, d := range []string{strconv.Itoa(cc) + nsn, strconv.Itoa(cc) + "0" + nsn, strconv.Itoa(cc) + nsn[:3]} {
			checkParseSameAsLibrary(t, d, "")
			checkParseSameAsLibrary(t, d, "US")
		}
	}
	if regions < 240 {
		t.Fatalf("only %d regions compared", regions)
	}
}

// TestCountryCodesSameAsLibrary: the regions ValidCountry and IsCountryCode
// accept are exactly the library's supported regions.
func TestCountryCodesSameAsLibrary(t *testing.T) {
	supported := phonenumbers.GetSupportedRegions()
	for id := range supported {
		if !ValidCountry(id) || !IsCountryCode(id) {
			t.Errorf("%s is a supported region; ValidCountry %v, IsCountryCode %v", id, ValidCountry(id), IsCountryCode(id))
		}
	}
	for _, md := range geoMetadata {
		if !supported[md.id] {
			t.Errorf("%s has a plan but is not a supported region", md.id)
		}
	}
	for _, id := range []string{"", "001", "ZZ", "gb", "UK", "XX", "USA", "G"} {
		if ValidCountry(id) {
			t.Errorf("ValidCountry(%q) = true", id)
		}
	}
	for cc := 0; cc < 1000; cc++ {
		if got, want := regionsForCode(cc), phonenumbers.GetRegionCodesForCountryCode(cc); strings.Join(got, ",") != strings.Join(want, ",") {
			t.Errorf("regions of %d: %v; the library: %v", cc, got, want)
		}
	}
}

// FuzzParseSameAsLibrary: for any digits, in any supported region
// (region 0: international, "+" first) the parser answers as the library.
// The seed corpus (testdata/fuzz/FuzzParseSameAsLibrary) runs in every
// test run.
func FuzzParseSameAsLibrary(f *testing.F) {
	index := func(id string) uint16 {
		for i := range geoMetadata {
			if geoMetadata[i].id == id {
				return uint16(i + 1)
			}
		}
		f.Fatalf("no region %s", id)
		return 0
	}
	for _, s := range []struct{ d, r string }{
		{"447700900123", ""}, {"07700900123", "GB"}, {"4407700900123", "GB"}, {"00447700900123", "GB"},
		{"15551234567", "US"}, {"0111447700900123", "US"}, {"5551234567", "US"}, {"390612345678", ""},
		{"0612345678", "IT"}, {"5491123456789", ""}, {"01115123456789", "AR"}, {"80012345678", ""},
		{"12", "DE"}, {"0", "FR"}, {"99999999999999999", "CN"}, {"7", ""}, {"0015551234567", "CA"},
	} {
		r := uint16(0)
		if s.r != "" {
			r = index(s.r)
		}
		f.Add(s.d, r)
	}
	f.Fuzz(func(t *testing.T, digits string, region uint16) {
		if len(digits) == 0 || len(digits) > 17 || strings.Trim(digits, "0123456789") != "" {
			return // the parser is only for digits, as postern gives it
		}
		id := ""
		if region != 0 {
			id = geoMetadata[int(region-1)%len(geoMetadata)].id
		}
		checkParseSameAsLibrary(t, digits, id)
	})
}

// BenchmarkNationalNumber: a national number on a default_country route
// (GB), read by the parser and, for comparison, by the library's calls it
// replaced (Parse, IsPossibleNumber, Format).
func BenchmarkNationalNumber(b *testing.B) {
	const d, region = "07700900123", "GB"
	b.Run("own", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, ok := nationalNumber(d, region); !ok {
				b.Fatal("not read")
			}
		}
	})
	b.Run("library", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, possible, ok := libraryParse(d, region); !ok || !possible {
				b.Fatal("not read")
			}
		}
	})
}
