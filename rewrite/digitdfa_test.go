package rewrite

import (
	"math/rand/v2"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/nyaruka/phonenumbers"
)

// regionPatternsForTest is every pattern the number typer matches, of
// every region: the national number patterns (matched whole) and the
// leading digits and national prefixes (matched at the start).
func regionPatternsForTest(t testing.TB) (whole, prefix []string) {
	t.Helper()
	coll, err := phonenumbers.MetadataCollection()
	if err != nil {
		t.Fatal(err)
	}
	for _, md := range coll.GetMetadata() {
		for _, d := range []*phonenumbers.PhoneNumberDesc{md.GetGeneralDesc(), md.GetPremiumRate(), md.GetTollFree(), md.GetSharedCost(),
			md.GetVoip(), md.GetPersonalNumber(), md.GetPager(), md.GetUan(), md.GetVoicemail(), md.GetFixedLine(), md.GetMobile()} {
			if d != nil && d.GetNationalNumberPattern() != "" {
				whole = append(whole, d.GetNationalNumberPattern())
			}
		}
		for _, p := range []string{md.GetLeadingDigits(), md.GetNationalPrefixForParsing()} {
			if p != "" {
				prefix = append(prefix, p)
			}
		}
	}
	return whole, prefix
}

// numberSamples are strings to match patterns against: every region's
// example numbers, each cut short, lengthened and with a digit changed,
// random digit strings of every length a number has, and a few that are
// not digits at all.
func numberSamples(rng *rand.Rand, n int) []string {
	var samples []string
	for region := range phonenumbers.GetSupportedRegions() {
		for typ := range libraryTypeNames {
			pn := phonenumbers.GetExampleNumberForType(region, typ)
			if pn == nil {
				continue
			}
			s := phonenumbers.GetNationalSignificantNumber(pn)
			samples = append(samples, s, s[:len(s)-1], s+"0", s+"9")
			i := rng.IntN(len(s))
			samples = append(samples, s[:i]+strconv.Itoa(rng.IntN(10))+s[i+1:])
		}
	}
	for range n {
		var b strings.Builder
		for range rng.IntN(18) {
			b.WriteByte('0' + byte(rng.IntN(10)))
		}
		samples = append(samples, b.String())
	}
	return append(samples, "", "0", "12a4567", "٠١٢٣٤٥٦٧٨٩", "12345 6789", "+15551234567")
}

// TestDigitDFASameAsRegexp: for every pattern of every region, the
// automaton matches exactly the strings the regexp matches, whole or at
// the start; every pattern but "NA" and the national prefixes that end in
// "$" gets one.
func TestDigitDFASameAsRegexp(t *testing.T) {
	whole, prefix := regionPatternsForTest(t)
	samples := numberSamples(rand.New(rand.NewPCG(7, 7)), 300)
	built, states := 0, 0
	check := func(pattern string, isPrefix bool) {
		dfa, ok := newDigitDFA(pattern)
		if !ok {
			// "NA" (no numbers of the type) matches no digits: its first
			// digits rule every number out before it is asked. A few
			// national prefixes end in "$": they keep their regexps.
			if pattern != "NA" && !strings.Contains(pattern, "$") {
				t.Errorf("no automaton for %q", pattern)
			}
			return
		}
		built++
		states += len(dfa.accept)
		anchored := "^(?:" + pattern + ")$"
		if isPrefix {
			anchored = "^(?:" + pattern + ")"
		}
		re := regexp.MustCompile(anchored)
		for _, s := range samples {
			got := dfa.fullMatch(s)
			if isPrefix {
				got = dfa.prefixMatch(s)
			}
			if want := re.MatchString(s); got != want {
				t.Fatalf("%s on %q: automaton %v, regexp %v", anchored, s, got, want)
			}
		}
	}
	for _, p := range whole {
		check(p, false)
	}
	for _, p := range prefix {
		check(p, true)
	}
	t.Logf("%d automata, %d states in all, for %d patterns", built, states, len(whole)+len(prefix))
}

// TestDigitDFAKeepsTheRegexpForOtherPatterns: a pattern that could match
// something other than ASCII digits, or asserts anything, gets no
// automaton.
func TestDigitDFAKeepsTheRegexpForOtherPatterns(t *testing.T) {
	for _, p := range []string{`\d+a`, `[0-9a-f]`, `.`, `\p{Nd}`, `[٠-٩]`, `^1`, `1$`, `\b1`, `(?i)1x`, `\D`, `[^5]`, `(`} {
		if _, ok := newDigitDFA(p); ok {
			t.Errorf("%q: an automaton, want the regexp kept", p)
		}
	}
	for _, p := range []string{`\d{2,4}`, `[2-9]\d{9}`, `(?:1|2(?:3|45)?)\d?`, `(\d{4})`, `0?`} {
		if _, ok := newDigitDFA(p); !ok {
			t.Errorf("%q: no automaton", p)
		}
	}
}

// FuzzDigitDFASameAsRegexp: patterns over the digits built from random
// pieces, and random strings, match alike.
func FuzzDigitDFASameAsRegexp(f *testing.F) {
	f.Add("1(?:2|34)?5{2,3}", "12345555")
	f.Add(`[2-9]\d{2}|0`, "0")
	f.Add(`(\d{3})?(?:9|[13])+`, "1239913")
	f.Fuzz(func(t *testing.T, pattern, s string) {
		if len(pattern) > 64 || strings.Contains(pattern, "{1000") {
			return
		}
		dfa, ok := newDigitDFA(pattern)
		if !ok {
			return
		}
		whole, err := regexp.Compile("^(?:" + pattern + ")$")
		if err != nil {
			t.Fatalf("an automaton for %q, which the regexp package refuses: %v", pattern, err)
		}
		start, err := regexp.Compile("^(?:" + pattern + ")")
		if err != nil {
			t.Fatalf("an automaton for %q, which the regexp package refuses: %v", pattern, err)
		}
		if got, want := dfa.fullMatch(s), whole.MatchString(s); got != want {
			t.Fatalf("%s on %q: automaton %v, regexp %v", whole, s, got, want)
		}
		if got, want := dfa.prefixMatch(s), start.MatchString(s); got != want {
			t.Fatalf("%s on %q: automaton %v, regexp %v", start, s, got, want)
		}
	})
}
