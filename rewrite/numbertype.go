package rewrite

import (
	"regexp"
	"slices"
	"sync"
)

// numberTyper answers libphonenumber's Parse, GetRegionCodeForNumber and
// GetNumberType questions from the library's metadata (phonemeta_data.go),
// with each pattern compiled once, on first use. The library rebuilds every
// pattern string and looks it up in a locked cache on each call, and
// matches it twice; that was the largest cost of a message on the request
// path. The logic is the library's (parseHelper,
// getRegionCodeForNumberFromRegionList, getNumberTypeHelper), kept line for
// line; TestLookupNumber_SameAsFullValidation, TestParseSameAsLibrary and
// FuzzParseSameAsLibrary compare the answers with the library's own.
type numberTyper struct {
	regions map[string]*regionPatterns // geographic regions by ISO code
	// byCode is, per calling code (1 to 3 digits), the library's regions
	// for it (GetRegionCodesForCountryCode) and their patterns (nil for a
	// non-geographic one), read once: a number costs array indexing, not
	// map lookups.
	byCode [1000]codeRegions
}

type codeRegions struct {
	ids      []string
	patterns []*regionPatterns
	// nonGeo is the plan of a non-geographic calling code (ids ["001"]).
	nonGeo *regionPatterns
}

// forCode is byCode[cc], empty for a code out of range.
func (t *numberTyper) forCode(cc int) *codeRegions {
	if cc <= 0 || cc >= len(t.byCode) {
		return &codeRegions{}
	}
	return &t.byCode[cc]
}

// regionPatterns is one region's metadata with its patterns compiled on
// first use, so start-up pays nothing for the ~250 regions never texted.
type regionPatterns struct {
	md       *numberMeta
	compiled func() *compiledRegion
}

func newRegionPatterns(md *numberMeta) *regionPatterns {
	return &regionPatterns{md: md, compiled: sync.OnceValue(func() *compiledRegion { return compileRegion(md) })}
}

type compiledRegion struct {
	leadingDigits  prefixMatcher // nil when the region has none
	nationalPrefix prefixMatcher // national_prefix_for_parsing; nil when none
	// Their regexps' sources, "^(?:pattern)", which they match as.
	leadingSource, nationalPrefixSource string
	// The digits a match of each can start with (firstDigits).
	leadingFirst, nationalPrefixFirst digitSet
	// The international prefix, matched at the start like the national
	// prefix; nil when the plan has none.
	idd       prefixMatcher
	iddFirst  digitSet
	iddSource string
	// The national prefix and the international prefix as regexps with
	// their groups, for the match's end and the transform rule: compiled
	// only when a number is seen to start with one.
	nationalPrefixRe, iddRe func() *regexp.Regexp
	transformRule           string // national_prefix_transform_rule
	general, premium, tollFree, sharedCost, voip, personal, pager, uan, voicemail,
	fixedLine, mobile descMatcher
	sameMobileAndFixed bool
}

// descMatcher is a PhoneNumberDesc: its possible lengths and its pattern,
// matched by its automaton or, for the few patterns without one, its
// regexp (only then compiled).
type descMatcher struct {
	lengths []int32
	source  string         // the anchored pattern, "^(?:...)$"; "": the description is absent and matches nothing
	dfa     *digitDFA      // the pattern's automaton
	re      *regexp.Regexp // the compiled source, when there is no automaton
	first   digitSet       // the digits a match can start with
	pairs   pairSet        // the two digits a match can start with
}

// matches is the library's isNumberMatchingDesc: a possible length (when
// lengths are listed) and a full match of the national number pattern.
func (d descMatcher) matches(nsn string) bool {
	if len(d.lengths) > 0 && !slices.Contains(d.lengths, int32(len(nsn))) {
		return false
	}
	return d.patternMatches(nsn)
}

// patternMatches is a full match of the pattern alone, without the length
// check: the library's nationalNumberRule in parsing.
func (d descMatcher) patternMatches(nsn string) bool {
	if d.source == "" || !d.first.has(nsn) || !d.pairs.has(nsn) {
		return false
	}
	if d.dfa != nil {
		return d.dfa.fullMatch(nsn)
	}
	return d.re.MatchString(nsn)
}

func newDescMatcher(d *numberDesc) descMatcher {
	if d == nil {
		return descMatcher{}
	}
	// The same anchored form the library compiles.
	m := descMatcher{lengths: d.lengths, source: "^(?:" + d.pattern + ")$"}
	var ok bool
	if m.dfa, ok = newDigitDFA(d.pattern); !ok {
		m.re = regexp.MustCompile(m.source)
	}
	m.first, m.pairs = firstDigits(m.source), firstPairs(m.source)
	return m
}

// prefixMatcher matches a pattern at the start of a number: its
// automaton's prefixMatch, or the regexp "^(?:pattern)" when it has none.
type prefixMatcher func(nsn string) bool

// newPrefixMatcher returns pattern's prefixMatcher and the source it
// matches as.
func newPrefixMatcher(pattern string) (prefixMatcher, string) {
	source := "^(?:" + pattern + ")"
	if dfa, ok := newDigitDFA(pattern); ok {
		return dfa.prefixMatch, source
	}
	return regexp.MustCompile(source).MatchString, source
}

var sharedNumberTyper = sync.OnceValue(newNumberTyper)

func newNumberTyper() *numberTyper {
	t := &numberTyper{regions: make(map[string]*regionPatterns, len(geoMetadata))}
	for i := range geoMetadata {
		md := &geoMetadata[i]
		t.regions[md.id] = newRegionPatterns(md)
	}
	for _, c := range callingCodes {
		if c.cc <= 0 || c.cc >= len(t.byCode) {
			continue
		}
		r := codeRegions{ids: c.ids, patterns: make([]*regionPatterns, len(c.ids))}
		for i, id := range c.ids {
			r.patterns[i] = t.regions[id] // nil: non-geographic ("001")
		}
		if md := nonGeoMeta(c.cc); md != nil && len(c.ids) > 0 && c.ids[0] == "001" {
			r.nonGeo = newRegionPatterns(md)
		}
		t.byCode[c.cc] = r
	}
	return t
}

func compileRegion(md *numberMeta) *compiledRegion {
	c := &compiledRegion{
		general:            newDescMatcher(md.general),
		premium:            newDescMatcher(md.premium),
		tollFree:           newDescMatcher(md.tollFree),
		sharedCost:         newDescMatcher(md.sharedCost),
		voip:               newDescMatcher(md.voip),
		personal:           newDescMatcher(md.personal),
		pager:              newDescMatcher(md.pager),
		uan:                newDescMatcher(md.uan),
		voicemail:          newDescMatcher(md.voicemail),
		fixedLine:          newDescMatcher(md.fixedLine),
		mobile:             newDescMatcher(md.mobile),
		sameMobileAndFixed: md.sameMobileAndFixed,
	}
	if ld := md.leadingDigits; ld != "" {
		c.leadingDigits, c.leadingSource = newPrefixMatcher(ld)
		c.leadingFirst = firstDigits(c.leadingSource)
	}
	if np := md.nationalPrefixForParsing; np != "" {
		c.nationalPrefix, c.nationalPrefixSource = newPrefixMatcher(np)
		c.nationalPrefixFirst = firstDigits(c.nationalPrefixSource)
		c.transformRule = md.nationalPrefixTransformRule
		c.nationalPrefixRe = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(c.nationalPrefixSource) })
	}
	if idd := md.internationalPrefix; idd != "" {
		c.idd, c.iddSource = newPrefixMatcher(idd)
		c.iddFirst = firstDigits(c.iddSource)
		c.iddRe = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(c.iddSource) })
	}
	return c
}

// parseInternational is Parse("+"+digits, "") reduced to what
// LookupNumber uses — the calling code and the national significant number —
// for the common case, where it is plain string slicing: the digits after
// the first calling code the metadata knows (1 to 3 digits, as the library
// tries them). Whenever the library might do more — the national number
// starts with what the region's national_prefix_for_parsing matches (it may
// strip it), or anything is unusual — it reports ok false and the caller
// asks the library. TestLookupNumber_SameAsFullValidation covers both.
func (t *numberTyper) parseInternational(digits string) (cc int, nsn string, ok bool) {
	if len(digits) < 7 || len(digits) > 15 || digits[0] == '0' {
		return 0, "", false
	}
	for i := 0; i < len(digits); i++ {
		if digits[i] < '0' || digits[i] > '9' {
			return 0, "", false
		}
	}
	var regions *codeRegions
	code := 0
	for i := 1; i <= 3; i++ {
		code = code*10 + int(digits[i-1]-'0')
		if regions = t.forCode(code); len(regions.ids) > 0 {
			cc, nsn = code, digits[i:]
			break
		}
	}
	if cc == 0 || len(nsn) < 2 {
		return 0, "", false
	}
	main := regions.patterns[0]
	if main == nil {
		return 0, "", false // non-geographic ("001") or unknown: the library decides
	}
	if c := main.compiled(); c.nationalPrefix != nil && c.nationalPrefixFirst.has(nsn) && c.nationalPrefix(nsn) {
		return 0, "", false
	}
	return cc, nsn, true
}

// region is GetRegionCodeForNumber for a number of calling code cc with
// national significant number nsn; "" when no region claims it. When it
// had to find the number's type in the region to decide (a region without
// leading digits, such as the US among the +1 regions), it returns that
// type too, with typed true, so that the caller does not match the
// patterns again: it is numberType(region, nsn).
func (t *numberTyper) region(cc int, nsn string) (region string, typ lineType, typed bool) {
	regions := t.forCode(cc)
	switch len(regions.ids) {
	case 0:
		return "", lineUnknown, false
	case 1:
		return regions.ids[0], lineUnknown, false
	}
	for i, r := range regions.ids {
		rp := regions.patterns[i]
		if rp == nil {
			continue
		}
		c := rp.compiled()
		if c.leadingDigits != nil {
			if c.leadingFirst.has(nsn) && c.leadingDigits(nsn) {
				return r, lineUnknown, false
			}
		} else if typ := c.numberType(nsn); typ != lineUnknown {
			return r, typ, true
		}
	}
	return "", lineUnknown, false
}

// numberType is getNumberTypeHelper for a geographic region; ok is false
// for a region without metadata.
func (t *numberTyper) numberType(region, nsn string) (typ lineType, ok bool) {
	rp, ok := t.regions[region]
	if !ok {
		return lineUnknown, false
	}
	return rp.compiled().numberType(nsn), true
}

func (c *compiledRegion) numberType(nsn string) lineType {
	if !c.general.matches(nsn) {
		return lineUnknown
	}
	switch {
	case c.premium.matches(nsn):
		return linePremium
	case c.tollFree.matches(nsn):
		return lineTollFree
	case c.sharedCost.matches(nsn):
		return lineSharedCost
	case c.voip.matches(nsn):
		return lineVoIP
	case c.personal.matches(nsn):
		return linePersonal
	case c.pager.matches(nsn):
		return linePager
	case c.uan.matches(nsn):
		return lineUAN
	case c.voicemail.matches(nsn):
		return lineVoicemail
	}
	if c.fixedLine.matches(nsn) {
		if c.sameMobileAndFixed || c.mobile.matches(nsn) {
			return lineFixedOrMobile
		}
		return lineFixed
	}
	if !c.sameMobileAndFixed && c.mobile.matches(nsn) {
		return lineMobile
	}
	return lineUnknown
}
