package rewrite

import (
	"sort"
)

// numberMeta is one numbering plan as libphonenumber describes it: the
// fields of its PhoneMetadata that parsing, possible-length checks and
// region and type lookups read. phonemeta_data.go holds every plan, written
// by rewrite/internal/phonemeta from the library (see there for why postern
// does not link it).
type numberMeta struct {
	id string // ISO 3166-1 region, or "001" for a non-geographic calling code
	cc int

	internationalPrefix         string // the dialled international prefix (IDD), a pattern
	nationalPrefixForParsing    string // the trunk prefix parsing strips, a pattern
	nationalPrefixTransformRule string // what replaces it when its groups matched
	leadingDigits               string // the region's share of a shared calling code, a pattern
	sameMobileAndFixed          bool

	// The number descriptions; nil where the metadata has none.
	general, premium, tollFree, sharedCost, voip, personal, pager, uan, voicemail, fixedLine, mobile *numberDesc
}

// numberDesc is a PhoneNumberDesc: the national number pattern and the
// possible lengths (lengths [-1]: no such numbers).
type numberDesc struct {
	pattern   string
	lengths   []int32
	localOnly []int32
}

// noNumbers is the description of a kind of number a plan does not have.
var noNumbers = &numberDesc{pattern: "NA"}

// callingCode is a calling code and its regions, the main region first.
type callingCode struct {
	cc  int
	ids []string
}

// geoMeta returns a geographic region's plan, or nil.
func geoMeta(id string) *numberMeta {
	i := sort.Search(len(geoMetadata), func(i int) bool { return geoMetadata[i].id >= id })
	if i < len(geoMetadata) && geoMetadata[i].id == id {
		return &geoMetadata[i]
	}
	return nil
}

// nonGeoMeta returns a non-geographic calling code's plan, or nil.
func nonGeoMeta(cc int) *numberMeta {
	i := sort.Search(len(nonGeoMetadata), func(i int) bool { return nonGeoMetadata[i].cc >= cc })
	if i < len(nonGeoMetadata) && nonGeoMetadata[i].cc == cc {
		return &nonGeoMetadata[i]
	}
	return nil
}

// regionsForCode is GetRegionCodesForCountryCode: cc's regions, the main
// one first; nil for a code no plan has.
func regionsForCode(cc int) []string {
	i := sort.Search(len(callingCodes), func(i int) bool { return callingCodes[i].cc >= cc })
	if i < len(callingCodes) && callingCodes[i].cc == cc {
		return callingCodes[i].ids
	}
	return nil
}
