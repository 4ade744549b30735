package rewrite

import (
	"errors"
	"strconv"
	"strings"
)

// libphonenumber's parse errors, for digits: the library's own words.
var (
	errParseNotANumber    = errors.New("the phone number supplied is not a number")
	errParseCountryCode   = errors.New("invalid country code")
	errParseTooShortAfter = errors.New("phone number had an IDD, but after this was not long enough to be a viable phone number")
	errParseTooShortNSN   = errors.New("the string supplied is too short to be a phone number")
	errParseTooLongNumber = errors.New("the string supplied is too long to be a phone number")
	errParseUnknownRegion = errors.New("unknown region")
)

// maxNationalNumberDigits is libphonenumber's MAX_LENGTH_FOR_NSN.
const maxNationalNumberDigits = 17

// lengthCheck is libphonenumber's ValidationResult of a length test.
type lengthCheck int8

const (
	lengthPossible lengthCheck = iota
	lengthPossibleLocalOnly
	lengthTooShort
	lengthInvalid
	lengthTooLong
)

// parse is libphonenumber's Parse for ASCII digits — of "+"+digits when
// region is "", else of digits dialled in region, a supported region — and
// answers with the parsed number's calling code and national significant
// number (GetNationalSignificantNumber; its E.164 form is the two
// concatenated). The steps are parseHelper's, kept in its order, for the
// only input postern gives it: digits, which leaves out the library's
// handling of letters, punctuation, extensions and RFC 3966 URIs.
func (t *numberTyper) parse(digits, region string) (cc int, nsn string, err error) {
	for i := 0; i < len(digits); i++ {
		if digits[i] < '0' || digits[i] > '9' {
			return 0, "", errParseNotANumber // not an input this parser is for
		}
	}
	if region == "" {
		// isViablePhoneNumber: after a "+", at least three digits.
		if len(digits) < 3 {
			return 0, "", errParseNotANumber
		}
		// maybeExtractCountryCode, from a number with a plus sign.
		code, national, ok := t.extractCountryCode(digits)
		if !ok {
			return 0, "", errParseCountryCode
		}
		return t.finishParse(code, national, t.planForCode(code))
	}
	// isViablePhoneNumber: two digits alone, or more.
	if len(digits) < 2 {
		return 0, "", errParseNotANumber
	}
	home := t.regions[region]
	if home == nil {
		return 0, "", errParseUnknownRegion
	}
	hc := home.compiled()
	// maybeStripInternationalPrefixAndNormalize: the region's IDD.
	if end, ok := hc.iddPrefix(digits); ok {
		rest := digits[end:]
		if len(rest) <= 2 { // MIN_LENGTH_FOR_NSN
			return 0, "", errParseTooShortAfter
		}
		code, national, ok := t.extractCountryCode(rest)
		if !ok {
			return 0, "", errParseCountryCode
		}
		return t.finishParse(code, national, t.planFor(code, home))
	}
	// The number may start with the region's own calling code, without a
	// plus or IDD: taken as such when that reads better.
	if ccs := strconv.Itoa(home.md.cc); strings.HasPrefix(digits, ccs) {
		potential, _ := hc.stripNationalPrefix(digits[len(ccs):])
		fullValid := hc.general.patternMatches(digits)
		nationalValid := hc.general.patternMatches(potential)
		if (!fullValid && nationalValid) || testNumberLength(digits, home.md) == lengthTooLong {
			return t.finishParse(home.md.cc, potential, t.planFor(home.md.cc, home))
		}
	}
	return t.finishParse(home.md.cc, digits, home)
}

// finishParse is the end of parseHelper: the national prefix is stripped
// when what remains is a possible length for the plan, and the national
// number's length is checked.
func (t *numberTyper) finishParse(cc int, national string, plan *regionPatterns) (int, string, error) {
	if len(national) < 2 {
		return 0, "", errParseTooShortNSN
	}
	if plan != nil {
		potential, _ := plan.compiled().stripNationalPrefix(national)
		switch testNumberLength(potential, plan.md) {
		case lengthTooShort, lengthPossibleLocalOnly, lengthInvalid:
		default:
			national = potential
		}
	}
	if len(national) < 2 {
		return 0, "", errParseTooShortNSN
	}
	if len(national) > maxNationalNumberDigits {
		return 0, "", errParseTooLongNumber
	}
	return cc, national, nil
}

// extractCountryCode is the library's: the first 1 to 3 digits that are a
// calling code it knows, and the digits after them.
func (t *numberTyper) extractCountryCode(full string) (cc int, national string, ok bool) {
	if len(full) == 0 || full[0] == '0' {
		return 0, "", false
	}
	code := 0
	for i := 1; i <= 3 && i <= len(full); i++ {
		code = code*10 + int(full[i-1]-'0')
		if len(t.forCode(code).ids) > 0 {
			return code, full[i:], true
		}
	}
	return 0, "", false
}

// planForCode is getMetadataForRegionOrCallingCode(cc,
// GetRegionCodeForCountryCode(cc)): the plan of cc's main region, or of the
// non-geographic code; nil for none.
func (t *numberTyper) planForCode(cc int) *regionPatterns {
	c := t.forCode(cc)
	if len(c.ids) == 0 {
		return nil
	}
	if c.ids[0] == "001" {
		return c.nonGeo
	}
	return c.patterns[0]
}

// planFor is parseHelper's choice of plan for a parsed calling code: the
// default region's own when it is the code's main region, else the code's.
func (t *numberTyper) planFor(cc int, home *regionPatterns) *regionPatterns {
	if c := t.forCode(cc); len(c.ids) > 0 && c.ids[0] == home.md.id {
		return home
	}
	return t.planForCode(cc)
}

// possible is IsPossibleNumber for a parsed number.
func (t *numberTyper) possible(cc int, nsn string) bool {
	plan := t.planForCode(cc)
	if plan == nil {
		return false // INVALID_COUNTRY_CODE
	}
	if plan.md.general == nil || plan.md.general.pattern == "" {
		return len(nsn) >= 2 && len(nsn) <= maxNationalNumberDigits
	}
	switch testNumberLength(nsn, plan.md) {
	case lengthPossible, lengthPossibleLocalOnly:
		return true
	}
	return false
}

// iddPrefix is parsePrefixAsIdd: the end of the international prefix at
// the start of number, when there is one and the digit after it is not a
// 0 (calling codes do not start with one).
func (c *compiledRegion) iddPrefix(number string) (end int, ok bool) {
	if c.idd == nil {
		// The library matches the empty pattern: a prefix of nothing,
		// taken when the number does not start with 0.
		return 0, len(number) == 0 || number[0] != '0'
	}
	if !c.iddFirst.has(number) || !c.idd(number) {
		return 0, false
	}
	loc := c.iddRe().FindStringIndex(number)
	if loc == nil || loc[0] != 0 {
		return 0, false
	}
	if loc[1] < len(number) && number[loc[1]] == '0' {
		return 0, false
	}
	return loc[1], true
}

// stripNationalPrefix is maybeStripNationalPrefixAndCarrierCode: number
// without the plan's national (trunk) prefix, or transformed by its rule,
// unless that would make a number that fit the plan's pattern no longer
// fit it. It reports whether it changed anything.
func (c *compiledRegion) stripNationalPrefix(number string) (string, bool) {
	if len(number) == 0 || c.nationalPrefix == nil {
		return number, false
	}
	if !c.nationalPrefixFirst.has(number) || !c.nationalPrefix(number) {
		return number, false
	}
	re := c.nationalPrefixRe()
	groups := re.FindStringSubmatchIndex(number)
	if groups == nil {
		return number, false // the automaton and the regexp agree; this is a guard
	}
	viableOriginal := c.general.patternMatches(number)
	lastGroup := len(groups)/2 - 1
	if c.transformRule == "" || groups[lastGroup*2] < 0 {
		if viableOriginal && !c.general.patternMatches(number[groups[1]:]) {
			return number, false
		}
		return number[groups[1]:], true
	}
	transformed := re.ReplaceAllString(number, c.transformRule)
	if viableOriginal && !c.general.patternMatches(transformed) {
		return number, false
	}
	return transformed, true
}

// testNumberLength is the library's for the general description (type
// UNKNOWN): whether a national number's length is possible in the plan.
func testNumberLength(number string, md *numberMeta) lengthCheck {
	if md.general == nil || len(md.general.lengths) == 0 || md.general.lengths[0] == -1 {
		return lengthInvalid
	}
	lengths := md.general.lengths
	n := int32(len(number))
	for _, l := range md.general.localOnly {
		if l == n {
			return lengthPossibleLocalOnly
		}
	}
	switch {
	case lengths[0] == n:
		return lengthPossible
	case lengths[0] > n:
		return lengthTooShort
	case lengths[len(lengths)-1] < n:
		return lengthTooLong
	}
	for _, l := range lengths[1:] {
		if l == n {
			return lengthPossible
		}
	}
	return lengthInvalid
}
