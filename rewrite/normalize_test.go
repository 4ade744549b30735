package rewrite

import (
	"errors"
	"math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/nyaruka/phonenumbers"
)

// parseBoth parses the same recipient parameter through both dialects, as a
// GET query and as a POST form body, with default country cc, and fails
// unless all four agree. It returns the recipients, or the error's code.
func parseBoth(t *testing.T, rawTo, cc string) ([]string, string) {
	t.Helper()
	q, err := NewQuery(DialectConfig{DefaultCountry: cc}, QueryConfig{ToParam: "phone", TextParam: "msg"})
	if err != nil {
		t.Fatal(err)
	}
	var results []string
	var to []string
	var code string
	for _, tc := range []struct {
		d        Dialect
		toKey    string
		textKey  string
		viaBody  bool
		describe string
	}{
		{ClickatellHTTP{DefaultCountry: cc}, "to", "text", false, "clickatell-http GET"},
		{ClickatellHTTP{DefaultCountry: cc}, "to", "text", true, "clickatell-http POST"},
		{q, "phone", "msg", false, "query GET"},
		{q, "phone", "msg", true, "query POST"},
	} {
		form := tc.toKey + "=" + rawTo + "&" + tc.textKey + "=Your+password+is+k7Q2"
		in := Inbound{Method: http.MethodGet, RawQuery: form}
		if tc.viaBody {
			in = Inbound{Method: http.MethodPost, RawQuery: "user=u", ContentType: formContentType, Body: []byte(form)}
		}
		m, err := tc.d.Parse(in)
		var e *Error
		switch {
		case err == nil:
			to, code = m.To, ""
		case errors.As(err, &e):
			to, code = nil, e.Code
		default:
			t.Fatalf("%s: %v is not an *Error", tc.describe, err)
		}
		results = append(results, strings.Join(to, ",")+"/"+code)
	}
	for _, r := range results[1:] {
		if r != results[0] {
			t.Fatalf("to=%s in %q: the dialects and methods disagree: %q", rawTo, cc, results)
		}
	}
	return to, code
}

// TestLiteralPlusIsInternational_EveryDefaultCountry is issue 10 item 1: for
// every default_country libphonenumber knows, a recipient written with a
// literal "+" (which form decoding turns into a space), with "%2B" and with
// "00" reaches the same handset, never a national number of the route's
// country; the country's own national form still works. Each through both
// dialects, in a GET query and a POST body.
func TestLiteralPlusIsInternational_EveryDefaultCountry(t *testing.T) {
	regions := slices.Sorted(func(yield func(string) bool) {
		for r := range phonenumbers.GetSupportedRegions() {
			if !yield(r) {
				return
			}
		}
	})
	if len(regions) < 240 {
		t.Fatalf("only %d regions", len(regions))
	}
	// Foreign handsets: the German and French mobiles, and others
	// whose digits look national in many countries.
	foreign := []string{"4915112345678", "33612345678", "447400123456", "12015550123", "61491570156", "390612345678"}
	checked := 0
	for _, cc := range regions {
		own := phonenumbers.GetExampleNumberForType(cc, phonenumbers.MOBILE)
		if own == nil {
			own = phonenumbers.GetExampleNumber(cc)
		}
		targets := slices.Clone(foreign)
		if own != nil {
			targets = append(targets, strconv.Itoa(int(own.GetCountryCode()))+phonenumbers.GetNationalSignificantNumber(own))
		}
		for _, d := range targets {
			want := canonicalDigits(d)
			for _, raw := range []string{"+" + d, "%2B" + d, "00" + d} {
				got, code := parseBoth(t, raw, cc)
				if code != "" || len(got) != 1 || got[0] != want {
					t.Errorf("default_country %s, to=%s: got %v (error %q), want [%s]", cc, raw, got, code, want)
				}
				checked++
			}
		}
		if own == nil {
			continue
		}
		// The country's own number written nationally, as a sponsor types
		// it, read as libphonenumber reads it (for AR the library's own
		// national format does not read back as the example number).
		national := phonenumbers.Format(own, phonenumbers.NATIONAL)
		pn, err := phonenumbers.Parse(national, cc)
		if err != nil {
			t.Fatalf("libphonenumber cannot read its own national format %q of %s: %v", national, cc, err)
		}
		want := canonicalDigits(strconv.Itoa(int(pn.GetCountryCode())) + phonenumbers.GetNationalSignificantNumber(pn))
		got, code := parseBoth(t, url.QueryEscape(national), cc)
		if code != "" || len(got) != 1 || got[0] != want {
			t.Errorf("default_country %s, national %q: got %v (error %q), want [%s]", cc, national, got, code, want)
		}
		checked++
	}
	t.Logf("%d regions, %d recipients checked", len(regions), checked)
}

// TestLiteralPlus_Cases: the examples and the edges of the rule
// "a literal + before the first digit of an entry marks it international".
func TestLiteralPlus_Cases(t *testing.T) {
	for _, tc := range []struct {
		cc, raw string
		want    []string // nil: refused
		code    string
	}{
		// The issue: the password went to 494915112345678 and friends.
		{"DE", "+4915112345678", []string{"4915112345678"}, ""},
		{"AT", "+33612345678", []string{"33612345678"}, ""},
		{"IT", "+33612345678", []string{"33612345678"}, ""},
		// Spaces after the "+", encoded either way.
		{"DE", "+49+151+1234+5678", []string{"4915112345678"}, ""},
		{"DE", "+49%20151%201234%205678", []string{"4915112345678"}, ""},
		{"DE", "(+44)+20+7946+0958", []string{"442079460958"}, ""},
		// Several recipients, however the comma and the "+" arrive.
		{"DE", "+4915112345678,+4917612345678", []string{"4915112345678", "4917612345678"}, ""},
		{"DE", "+4915112345678%2C+4917612345678", []string{"4915112345678", "4917612345678"}, ""},
		{"DE", "%2B4915112345678%2C+%2B4917612345678", []string{"4915112345678", "4917612345678"}, ""}, // ", +49..." form-encoded
		{"DE", "+4915112345678,+015112345678", nil, CodeInvalidDestination},
		{"GB", "07700+900123,+33+6+12+34+56+78", []string{"447700900123", "33612345678"}, ""},
		{"DE", "015112345678,+4917612345678", []string{"4915112345678", "4917612345678"}, ""},
		// A space that did not come from a "+" leaves a national number
		// national.
		{"DE", "%2015112345678", []string{"4915112345678"}, ""},
		{"DE", "%204915112345678", []string{"494915112345678"}, ""},
		{"GB", "%2007700900123", []string{"447700900123"}, ""},
		// A "+" before a national number is refused, as "%2B" is: no
		// calling code starts with 0.
		{"GB", "+07700900123", nil, CodeInvalidDestination},
		{"GB", "%2B07700900123", nil, CodeInvalidDestination},
		// A literal "+" that was an encoded space before another marker.
		{"DE", "+%2B4915112345678", []string{"4915112345678"}, ""},
		{"DE", "+004915112345678", []string{"4915112345678"}, ""},
		// A "+" after the first digit is a space, as always.
		{"GB", "07700+900123", []string{"447700900123"}, ""},
		{"DE", "49+151+1234+5678", []string{"494915112345678"}, ""},
		// An escaped digit is a digit: the "+" after it is a space.
		{"GB", "%307700+900123", []string{"447700900123"}, ""},
		// No default country: international either way.
		{"", "+15551234567", []string{"15551234567"}, ""},
		{"", "15551234567", []string{"15551234567"}, ""},
		// A lone "+" is blank, as it always was.
		{"DE", "+,4915112345678", []string{"494915112345678"}, ""},
		{"DE", "+", nil, CodeMissingParams},
	} {
		got, code := parseBoth(t, tc.raw, tc.cc)
		if code != tc.code || !slices.Equal(got, tc.want) {
			t.Errorf("default_country %q, to=%s: got %v (error %q), want %v (error %q)", tc.cc, tc.raw, got, code, tc.want, tc.code)
		}
	}
}

// TestSameHandsetSameNumber is issue 10 item 2: every way of writing one
// handset becomes the same E.164 digits, so rate limits, single-flight keys,
// the audit line and the provider all see one number.
func TestSameHandsetSameNumber(t *testing.T) {
	for _, tc := range []struct {
		cc   string
		raws []string
		want string
	}{
		{"", []string{"447700900555", "%2B4407700900555", "+4407700900555", "004407700900555", "44+0+7700900555", "%2B44+(0)+7700+900555"}, "447700900555"},
		{"GB", []string{"447700900555", "%2B4407700900555", "004407700900555", "44+0+7700900555", "07700900555", "07700+900+555"}, "447700900555"},
		{"DE", []string{"%2B49015112345678", "+49+0+151+12345678", "0049015112345678", "015112345678"}, "4915112345678"},
		{"", []string{"%2B33+0+6+12+34+56+78", "33612345678"}, "33612345678"},
		{"", []string{"%2B61+0+491+570+156", "61491570156"}, "61491570156"},
		// Italy's leading 0 is part of the number.
		{"", []string{"%2B39+06+1234+5678", "390612345678"}, "390612345678"},
		{"IT", []string{"06+1234+5678", "%2B390612345678", "00390612345678"}, "390612345678"},
		// Russia's 8 is a trunk prefix; 800 is a toll-free range, kept.
		{"", []string{"%2B7+8+800+123+4567", "78001234567"}, "78001234567"},
		// Digits libphonenumber cannot read are kept as they are.
		{"", []string{"99912345678", "%2B999+1234+5678"}, "99912345678"},
		{"", []string{"15551234567", "%2B1+555+123+4567", "%2B1+1+555+123+4567"}, "15551234567"},
	} {
		for _, raw := range tc.raws {
			got, code := parseBoth(t, raw, tc.cc)
			if code != "" || len(got) != 1 || got[0] != tc.want {
				t.Errorf("default_country %q, to=%s: got %v (error %q), want [%s]", tc.cc, raw, got, code, tc.want)
			}
		}
		// All of them at once are one recipient.
		got, code := parseBoth(t, strings.Join(tc.raws, ","), tc.cc)
		if code != "" || len(got) != 1 {
			t.Errorf("default_country %q, all forms at once: got %v (error %q), want one recipient", tc.cc, got, code)
		}
	}
}

// libraryE164 is what libphonenumber makes of international digits: its
// E.164 form re-parsed until it no longer changes, or d itself when the
// library cannot read it or its reading breaks the 7-15 digit rule.
func libraryE164(d string) string {
	for range 8 {
		pn, err := phonenumbers.Parse("+"+d, "")
		if err != nil {
			return d
		}
		e := strings.TrimPrefix(phonenumbers.Format(pn, phonenumbers.E164), "+")
		if e == d || len(e) < 7 || len(e) > 15 || e[0] == '0' {
			return d
		}
		d = e
	}
	return d
}

// TestCanonicalDigits_SameAsLibrary: the shortcut (no libphonenumber parse
// for a number whose digits after the calling code cannot hold a trunk
// prefix) gives the library's answer, for libphonenumber's example numbers
// of every type and region, the same with their trunk prefix written after
// the calling code, and pseudo-random digits behind every calling code. The
// result is a fixed point, so a normalised number stays one on re-checks
// (Clickatell providers refuse a Message.To that NormalizeNumber changes).
func TestCanonicalDigits_SameAsLibrary(t *testing.T) {
	var inputs []string
	add := func(pn *phonenumbers.PhoneNumber, trunk string) {
		if pn != nil {
			inputs = append(inputs, strconv.Itoa(int(pn.GetCountryCode()))+trunk+phonenumbers.GetNationalSignificantNumber(pn))
		}
	}
	for region := range phonenumbers.GetSupportedRegions() {
		ndd := phonenumbers.GetNddPrefixForRegion(region, true)
		for typ := range libraryTypeNames {
			pn := phonenumbers.GetExampleNumberForType(region, typ)
			add(pn, "")
			add(pn, ndd)
			add(pn, "0")
		}
	}
	for cc := range phonenumbers.GetSupportedGlobalNetworkCallingCodes() {
		add(phonenumbers.GetExampleNumberForNonGeoEntity(cc), "")
	}
	rng := rand.New(rand.NewPCG(10, 2))
	for cc := range phonenumbers.GetSupportedCallingCodes() {
		for _, start := range []string{"", "", "", "0", "00", "000", "1", "8", "9", "15", "01"} {
			d := strconv.Itoa(cc) + start
			for len(d) < 7+rng.IntN(9) {
				d += strconv.Itoa(rng.IntN(10))
			}
			inputs = append(inputs, d)
		}
	}
	inputs = append(inputs, "1234567", "999999999", "4400770090055", "440000000000000", "9991234567")
	changed := 0
	for _, d := range inputs {
		if len(d) < 7 || len(d) > 15 {
			continue // canonicalDigits only ever sees 7-15 digits
		}
		want := libraryE164(d)
		got := canonicalDigits(d)
		if got != want {
			t.Errorf("canonicalDigits(%s) = %s, libphonenumber says %s", d, got, want)
		}
		if again := canonicalDigits(got); again != got {
			t.Errorf("canonicalDigits(%s) = %s, and again %s: not a fixed point", d, got, again)
		}
		if n, err := NormalizeNumber(got); err != nil || n != got {
			t.Errorf("NormalizeNumber(%s) = %s, %v: a normalised number changed", got, n, err)
		}
		if got != d {
			changed++
		}
	}
	if changed < 100 {
		t.Errorf("only %d of %d inputs changed: the trunk-prefix cases did not exercise the library path", changed, len(inputs))
	}
	t.Logf("%d inputs, %d changed", len(inputs), changed)
}

// TestRecipientsCountedBeforeParsing is issue 10 item 7: max_recipients
// is checked on the list as written, so thousands of numbers cost no
// libphonenumber work, and duplicates count. The 5,000 numbers here are
// all invalid: had any been parsed, the answer would be 105, not 101.
func TestRecipientsCountedBeforeParsing(t *testing.T) {
	q, err := NewQuery(DialectConfig{DefaultCountry: "GB", MaxRecipients: 3}, QueryConfig{})
	if err != nil {
		t.Fatal(err)
	}
	many := strings.Repeat("0000x%2C", 5000)
	for _, d := range []Dialect{ClickatellHTTP{DefaultCountry: "GB", MaxRecipients: 3}, q} {
		for _, tc := range []struct {
			to, code string
		}{
			{many, CodeMissingParams},
			{"07700900123,07700900123,07700900123,07700900123", CodeMissingParams}, // duplicates count
			{"07700900123,+4407700900123,004407700900123", ""},                     // three written, one sent
			{"07700900123,,+,%20,07700900124,07700900125", ""},                     // blanks do not count
			{"07700900123,07700900124,07700900125,0770090012x", CodeMissingParams}, // counted before checked
		} {
			for _, in := range []Inbound{
				{Method: http.MethodGet, RawQuery: "to=" + tc.to + "&text=hi"},
				{Method: http.MethodPost, ContentType: formContentType, Body: []byte("to=" + tc.to + "&text=hi")},
			} {
				_, err := d.Parse(in)
				var e *Error
				switch {
				case tc.code == "" && err != nil:
					t.Errorf("%T %s: %v", d, in.Method, err)
				case tc.code == "":
				case !errors.As(err, &e) || e.Code != tc.code || e.Status != http.StatusBadRequest:
					t.Errorf("%T %s %.40s: got %v, want 400 %s", d, in.Method, tc.to, err, tc.code)
				case e.Description != descTooMany:
					t.Errorf("%T %s: description %q, want %q", d, in.Method, e.Description, descTooMany)
				}
			}
		}
	}
	// Without a limit (MaxRecipients 0) the list is read whole.
	if _, err := (ClickatellHTTP{}).Parse(Inbound{Method: http.MethodGet, RawQuery: "to=" + strings.Repeat("15551234567,", 20) + "&text=hi"}); err != nil {
		t.Errorf("no limit: %v", err)
	}
}

// TestTextControlCharacters is issue 10 item 7: NUL, the other control
// characters except tab, line feed and carriage return, and Unicode
// noncharacters are refused with 116, also when they arrive as unicode=1
// hex; ordinary text, including U+FFFD and emoji, is not.
func TestTextControlCharacters(t *testing.T) {
	q, err := NewQuery(DialectConfig{}, QueryConfig{})
	if err != nil {
		t.Fatal(err)
	}
	refused := []string{"a%00b", "%00", "a%01", "x%0By", "x%0Cy", "%1B", "%1F", "a%7Fb", "a%C2%80", "a%C2%85", "a%C2%9F",
		"a%EF%BF%BEb", "a%EF%BF%BF", "%EF%B7%90", "%EF%B7%AF", "%F0%9F%BF%BE", "%F4%8F%BF%BF", "%FF", "%ED%A0%80"}
	allowed := []string{"a%09b", "a%0Ab", "a%0D%0Ab", "caf%C3%A9", "%EF%BF%BD", "%F0%9F%94%91", "%C2%A0nbsp", "%E2%80%8D", "%EF%B7%8F", "%EF%B7%B0", "%EF%BF%BC"}
	for _, d := range []Dialect{ClickatellHTTP{}, q} {
		for _, text := range refused {
			_, err := d.Parse(Inbound{Method: http.MethodGet, RawQuery: "to=15551234567&text=" + text})
			var e *Error
			if !errors.As(err, &e) || e.Code != CodeInvalidUnicode || e.Status != http.StatusBadRequest || e.Description != descUnicode {
				t.Errorf("%T text=%s: got %v, want 400 ERR: 116", d, text, err)
			}
		}
		for _, text := range allowed {
			if _, err := d.Parse(Inbound{Method: http.MethodGet, RawQuery: "to=15551234567&text=" + text}); err != nil {
				t.Errorf("%T text=%s: %v", d, text, err)
			}
		}
	}
	for hex, ok := range map[string]bool{
		"0000": false, "00480000": false, "FFFE": false, "FFFF": false, "0048FFFF": false, "0007": false, "009B": false,
		"FDD0": false, "D83FDFFE": false, // U+1FFFE
		"00480069": true, "0048000A0069": true, "0009": true, "FFFD": true, "D83DDD11": true,
	} {
		_, err := ClickatellHTTP{}.Parse(Inbound{Method: http.MethodGet, RawQuery: "to=15551234567&unicode=1&text=" + hex})
		var e *Error
		switch {
		case ok && err != nil:
			t.Errorf("unicode=1 text=%s: %v", hex, err)
		case !ok && (!errors.As(err, &e) || e.Code != CodeInvalidUnicode):
			t.Errorf("unicode=1 text=%s: got %v, want ERR: 116", hex, err)
		}
	}
}
