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
		if got := firstDigits(regexp.MustCompile(pattern)); got != want {
			t.Errorf("firstDigits(%s) = %010b, want %010b", pattern, got, want)
		}
	}
}

// TestFirstDigitsNeverRuleOutAMatch: for every pattern of every region,
// no example number and no random number the pattern matches is ruled
// out by its first digit.
func TestFirstDigitsNeverRuleOutAMatch(t *testing.T) {
	typer := sharedNumberTyper()
	rng := rand.New(rand.NewPCG(13, 13))
	var samples []string
	for region := range phonenumbers.GetSupportedRegions() {
		for typ := range numberTypeNames {
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
	for _, rp := range typer.regions {
		c := rp.compiled()
		descs := []descMatcher{c.general, c.premium, c.tollFree, c.sharedCost, c.voip, c.personal, c.pager, c.uan, c.voicemail, c.fixedLine, c.mobile}
		for _, nsn := range samples {
			for _, d := range descs {
				if d.pattern != nil && d.pattern.MatchString(nsn) && !d.first.has(nsn) {
					t.Fatalf("%s: %s matches %q but its first digits are %010b", rp.md.GetId(), d.pattern, nsn, d.first)
				}
			}
			if c.leadingDigits != nil && c.leadingDigits.MatchString(nsn) && !c.leadingFirst.has(nsn) {
				t.Fatalf("%s: leading digits %s match %q", rp.md.GetId(), c.leadingDigits, nsn)
			}
			if c.nationalPrefix != nil && c.nationalPrefix.MatchString(nsn) && !c.nationalPrefixFirst.has(nsn) {
				t.Fatalf("%s: national prefix %s matches %q", rp.md.GetId(), c.nationalPrefix, nsn)
			}
			checked++
		}
	}
	t.Logf("%d region × number pairs checked", checked)
}
