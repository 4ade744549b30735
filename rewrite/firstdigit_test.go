package rewrite

import (
	"math/rand/v2"
	"regexp"
	"strconv"
	"testing"

	"github.com/nyaruka/phonenumbers"
)

func TestFirstDigits(t *testing.T) {
	digits := func(s string) digitSet {
		var set digitSet
		for _, c := range s {
			set |= 1 << (c - '0')
		}
		return set
	}
	for pattern, want := range map[string]digitSet{
		"^(?:9\\d{6})$":                    digits("9"),
		"^(?:[2-4]\\d|5[01])$":             digits("2345"),
		"^(?:(?:1|7[0-5])\\d{4})$":         digits("17"),
		"^(?:0?1\\d)$":                     digits("01"),
		"^(?:\\d*7)$":                      allDigits,
		"^(?:)$":                           allDigits,
		"^(?:8(?:00|66)\\d{7}|[89]\\d+)$":  digits("89"),
		"^(?:(?:6|7(?:[0-46-9]|5\\d))\\d)": digits("67"),
		"^(?:[a-z]\\d|x?5)$":               digits("5"),
	} {
		if got := firstDigits(pattern); got != want {
			t.Errorf("firstDigits(%s) = %010b, want %010b", pattern, got, want)
		}
	}
}

// TestFirstDigitsNeverRuleOutAMatch: for every pattern of every region,
// no example number and no random number the pattern matches is ruled
// out by its first digit or its first two.
func TestFirstDigitsNeverRuleOutAMatch(t *testing.T) {
	typer := sharedNumberTyper()
	rng := rand.New(rand.NewPCG(13, 13))
	var samples []string
	for region := range phonenumbers.GetSupportedRegions() {
		for typ := range libraryTypeNames {
			if pn := phonenumbers.GetExampleNumberForType(region, typ); pn != nil {
				samples = append(samples, phonenumbers.GetNationalSignificantNumber(pn))
			}
		}
	}
	for range 3000 {
		s := ""
		for len(s) < 2+rng.IntN(14) {
			s += strconv.Itoa(rng.IntN(10))
		}
		samples = append(samples, s)
	}
	checked := 0
	compile := func(source string) *regexp.Regexp {
		if source == "" {
			return nil
		}
		return regexp.MustCompile(source)
	}
	for _, rp := range typer.regions {
		c := rp.compiled()
		descs := []descMatcher{c.general, c.premium, c.tollFree, c.sharedCost, c.voip, c.personal, c.pager, c.uan, c.voicemail, c.fixedLine, c.mobile}
		res := make([]*regexp.Regexp, len(descs))
		for i, d := range descs {
			res[i] = compile(d.source)
		}
		leading, nationalPrefix := compile(c.leadingSource), compile(c.nationalPrefixSource)
		for _, nsn := range samples {
			for i, d := range descs {
				if res[i] != nil && res[i].MatchString(nsn) && !d.first.has(nsn) {
					t.Fatalf("%s: %s matches %q but its first digits are %010b", rp.md.id, d.source, nsn, d.first)
				}
				if res[i] != nil && res[i].MatchString(nsn) && !d.pairs.has(nsn) {
					t.Fatalf("%s: %s matches %q but its first pairs are %v", rp.md.id, d.source, nsn, d.pairs)
				}
			}
			if leading != nil && leading.MatchString(nsn) && !c.leadingFirst.has(nsn) {
				t.Fatalf("%s: leading digits %s match %q", rp.md.id, c.leadingSource, nsn)
			}
			if nationalPrefix != nil && nationalPrefix.MatchString(nsn) && !c.nationalPrefixFirst.has(nsn) {
				t.Fatalf("%s: national prefix %s matches %q", rp.md.id, c.nationalPrefixSource, nsn)
			}
			checked++
		}
	}
	t.Logf("%d region × number pairs checked", checked)
}

func TestFirstPairs(t *testing.T) {
	pairs := func(list ...string) (p pairSet) {
		for _, s := range list {
			i := int(s[0]-'0')*10 + int(s[1]-'0')
			p[i>>6] |= 1 << (i & 63)
		}
		return p
	}
	for pattern, want := range map[string]pairSet{
		"^(?:9\\d{6})$":                   cross(1<<9, allDigits),
		"^(?:70\\d{8})$":                  pairs("70"),
		"^(?:7(?:[45]\\d|6[0-4])\\d{6})$": pairs("74", "75", "76"),
		"^(?:0?1\\d)$":                    pairs("01").union(cross(1<<1, allDigits)),
		"^(?:[2-4]|5[01])$":               pairs("50", "51"),
		"^(?:1*2)$":                       pairs("11", "12"),
		"^(?:)$":                          {},
		"^(?:.5)$":                        allPairs(),
	} {
		if got := firstPairs(pattern); got != want {
			t.Errorf("firstPairs(%s) = %v, want %v", pattern, got, want)
		}
	}
}

// TestFirstPairsNeverRuleOutAMatch: for random patterns over the digits 0
// to 3 (literals, classes, groups, alternation, ?, *, +, {m,n}), every
// string of up to six such digits a pattern matches whole has its first
// two in the pattern's pairSet.
func TestFirstPairsNeverRuleOutAMatch(t *testing.T) {
	rng := rand.New(rand.NewPCG(13, 2))
	var gen func(depth int) string
	gen = func(depth int) string {
		switch k := rng.IntN(9); {
		case depth > 3 || k < 2:
			return strconv.Itoa(rng.IntN(4))
		case k == 2:
			return "[" + strconv.Itoa(rng.IntN(2)) + "-" + strconv.Itoa(2+rng.IntN(2)) + "]"
		case k == 3:
			return "(?:" + gen(depth+1) + "|" + gen(depth+1) + ")"
		case k == 4:
			return gen(depth+1) + gen(depth+1) + gen(depth+1)
		case k == 5:
			return "(?:" + gen(depth+1) + ")" + []string{"?", "*", "+", "{2}", "{0,2}", "{1,3}"}[rng.IntN(6)]
		case k == 6:
			return "\\d"
		default:
			return gen(depth+1) + gen(depth+1)
		}
	}
	var all []string
	for n := 2; n <= 6; n++ {
		for i := range 1 << (2 * n) {
			s := make([]byte, n)
			for j := range s {
				s[j] = '0' + byte(i>>(2*j)&3)
			}
			all = append(all, string(s))
		}
	}
	for range 400 {
		re := regexp.MustCompile("^(?:" + gen(0) + ")$")
		p := firstPairs(re.String())
		for _, s := range all {
			if re.MatchString(s) && !p.has(s) {
				t.Fatalf("%s matches %q but its first pairs are %v", re, s, p)
			}
		}
	}
}
