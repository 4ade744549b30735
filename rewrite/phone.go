package rewrite

import (
	"errors"
	"strconv"
	"strings"
)

// Number errors name the rule that failed, never the number: callers may log
// them, and a guest's phone number is personal data.
var (
	errNumberChars    = errors.New("number contains characters other than digits, \"+\", spaces, dashes, dots and parentheses")
	errNumberPlus     = errors.New("number has a \"+\" that is not at the start")
	errNumberLength   = errors.New("number must have 7 to 15 digits")
	errNumberZero     = errors.New("number is not in international format (starts with 0 after the country prefix)")
	errNumberNational = errors.New("national number cannot be read in the configured default_country")
)

// Number is a normalised recipient: the international digits every provider
// starts from, and the country they belong to. Issue-5 guardrails (country
// allowlists) use Country; providers use Digits or E164.
type Number struct {
	// Digits is the international number, digits only, no "+" or "00"
	// ("15551234567"), 7 to 15 digits. This is Message.To's form.
	Digits string
	// Country is the ISO 3166-1 alpha-2 region the number belongs to
	// ("US", "GB"), or "" when the calling code names none (e.g. "+800").
	// For a number the metadata calls invalid it is the main region of its
	// calling code, so a new number range still gets a country.
	Country string
}

// E164 is the number with a leading "+", as Twilio and most REST gateways
// want it.
func (n Number) E164() string { return "+" + n.Digits }

// NormalizeNumber is ParseNumber without a default country: the number must
// already be international. It returns Number.Digits.
func NormalizeNumber(s string) (string, error) {
	return numberDigits(s, "")
}

// ParseNumber turns a phone number as a sponsor typed it into a Number. ISE
// substitutes $mobilenumber$ verbatim, so the number can arrive with "+", a
// leading "00", spaces, dashes, dots and parentheses; those are stripped.
// Anything else (letters, other punctuation, non-ASCII digits) is an error.
//
// A number with "+" or "00" is international. Without them:
//   - with no defaultCountry the digits are taken as international (the
//     legacy Clickatell convention ISE templates follow), and a leading 0,
//     which no country code has, is refused as a national number;
//   - with a defaultCountry (ISO code, e.g. "GB") the digits are read as that
//     country's national number by libphonenumber, which also recognises the
//     country's own calling code typed without "+" ("44 7700 900123" in GB).
//     When that reading is not even a possible length for the country and
//     the digits do not start with 0, they are taken as international, so
//     "33612345678" still reaches France from a "GB" route.
//
// The result is the E.164 digits libphonenumber gives for the number, so
// "+44 (0)7700 900555" and "447700900555" are one number (canonicalDigits).
// It must be 7 to 15 digits. It is never refused because the
// library's metadata calls it invalid: metadata lags new number ranges, and a
// guest who gets no password is an outage. Country rules belong to
// guardrails, not here.
func ParseNumber(s, defaultCountry string) (Number, error) {
	d, err := numberDigits(s, defaultCountry)
	if err != nil {
		return Number{}, err
	}
	return Number{Digits: d, Country: countryOf(d)}, nil
}

// numberDigits is ParseNumber without the country lookup: Number.Digits.
// The lookup is the expensive part of libphonenumber (a regexp search
// through every region of the calling code) and the request path only
// needs the digits, so parsing and re-checking a message skip it; the
// guardrails look each recipient up once (LookupNumber).
func numberDigits(s, defaultCountry string) (string, error) {
	return recipientDigits(s, defaultCountry, false)
}

// recipientDigits is numberDigits for a recipient whose raw form carried a
// "+" that form decoding turned into a space (plus): such a number is
// international, exactly as if the "+" had survived, so a default_country
// never reads it as national.
func recipientDigits(s, defaultCountry string, plus bool) (string, error) {
	d, international, err := stripNumber(s)
	if err != nil {
		return "", err
	}
	return finishDigits(d, international || plus, defaultCountry)
}

// recipientDigitsBytes is recipientDigits of string(b), without that copy:
// b is raw decoded, and when the digits stand in raw as they are (the usual
// "%2B15551234567"), the result is that part of raw.
func recipientDigitsBytes(b []byte, raw, defaultCountry string, plus bool) (string, error) {
	d, international, err := stripNumberBytes(b, raw)
	if err != nil {
		return "", err
	}
	return finishDigits(d, international || plus, defaultCountry)
}

// finishDigits is recipientDigits after stripNumber.
func finishDigits(d string, international bool, defaultCountry string) (string, error) {
	if !international && defaultCountry != "" {
		if n, ok := nationalNumber(d, defaultCountry); ok {
			return canonicalDigits(n), nil
		}
		if d[0] == '0' {
			return "", errNumberNational
		}
	}
	if len(d) < 7 || len(d) > 15 {
		return "", errNumberLength
	}
	if d[0] == '0' {
		return "", errNumberZero
	}
	return canonicalDigits(d), nil
}

// canonicalDigits turns international digits into the E.164 digits
// libphonenumber gives for them, so every way of writing one handset is one
// rate-limit key, one single-flight key and one provider recipient: above
// all it drops a national trunk prefix written after the calling code
// ("+44 (0)7700 900555" is 447700900555) where the region's rules drop it
// (Italy's leading 0 is part of the number and stays). Digits the library
// cannot parse, or whose reading would break the 7-15 digit rule, are kept
// as they are: well-formed digits are never refused for the metadata.
//
// The usual number costs no libphonenumber parse: when the digits after the
// calling code do not start with what the region's
// national_prefix_for_parsing matches, the library would return them
// unchanged (numberTyper.parseInternational; TestCanonicalDigits_SameAsLibrary
// holds the two together).
func canonicalDigits(d string) string {
	typer := sharedNumberTyper()
	if _, _, ok := typer.parseInternational(d); ok {
		return d
	}
	// Each step strips something, so this settles within a few rounds;
	// the bound only guards against a metadata surprise.
	for range 8 {
		cc, nsn, err := typer.parse(d, "")
		if err != nil {
			return d
		}
		e := strconv.Itoa(cc) + nsn
		if e == d || len(e) < 7 || len(e) > 15 || e[0] == '0' {
			return d
		}
		d = e
	}
	return d
}

// stripNumber removes the punctuation sponsors type and an international
// prefix, reporting whether the number was marked international.
func stripNumber(s string) (digits string, international bool, err error) {
	var buf [17]byte
	n, plus, err := stripInto(&buf, s)
	if err != nil {
		return "", false, err
	}
	d := s // already bare digits, the usual case: no copy
	if n != len(s) {
		d = string(buf[:n])
	}
	return finishStrip(d, plus)
}

// stripNumberBytes is stripNumber of string(b). The digits are taken from
// within, when they stand there in one piece, instead of copied.
func stripNumberBytes(b []byte, within string) (digits string, international bool, err error) {
	var buf [17]byte
	n, plus, err := stripInto(&buf, b)
	if err != nil {
		return "", false, err
	}
	var d string
	if i := strings.Index(within, string(buf[:n])); i >= 0 && n > 0 {
		d = within[i : i+n]
	} else {
		d = string(buf[:n])
	}
	return finishStrip(d, plus)
}

// stripInto collects the digits of s in buf, reporting their count and
// whether a leading "+" marked the number international.
func stripInto[T string | []byte](buf *[17]byte, s T) (n int, plus bool, err error) {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c >= '0' && c <= '9':
			if n == len(buf) {
				// Stop early so a hostile megabyte of digits costs nothing:
				// 18 digits fail the length rule even after a "00" prefix.
				return 0, false, errNumberLength
			}
			buf[n] = c
			n++
		case c == ' ' || c == '-' || c == '.' || c == '(' || c == ')':
		case c == '+':
			if plus || n > 0 {
				return 0, false, errNumberPlus
			}
			plus = true
		default:
			return 0, false, errNumberChars
		}
	}
	return n, plus, nil
}

// finishStrip drops a "00" international prefix and checks the length.
func finishStrip(d string, plus bool) (string, bool, error) {
	if !plus && strings.HasPrefix(d, "00") {
		d, plus = d[2:], true
	}
	// The 7-15 digit rule is the caller's, on the international result:
	// a national number of a small country has as few as 4 digits.
	if len(d) == 0 || len(d) > 15 {
		return "", false, errNumberLength
	}
	return d, plus, nil
}

// nationalNumber reads d as a national number of region and returns its
// international digits. It reports false when libphonenumber cannot read it
// or the reading is not a possible length there; validity (known ranges) is
// deliberately not required.
func nationalNumber(d, region string) (string, bool) {
	typer := sharedNumberTyper()
	cc, nsn, err := typer.parse(d, region)
	if err != nil || !typer.possible(cc, nsn) {
		return "", false
	}
	e164 := strconv.Itoa(cc) + nsn
	if len(e164) < 7 || len(e164) > 15 || e164[0] == '0' {
		return "", false
	}
	return e164, true
}

// countryOf names the region of international digits: the one the metadata
// assigns, else the main region of the calling code.
func countryOf(digits string) string {
	typer := sharedNumberTyper()
	cc, nsn, err := typer.parse(digits, "")
	if err != nil {
		return ""
	}
	// GetRegionCodeForNumber, else GetRegionCodeForCountryCode.
	if r, _, _ := typer.region(cc, nsn); r != "" && r != "001" {
		return r
	}
	if ids := regionsForCode(cc); len(ids) > 0 && ids[0] != "001" {
		return ids[0]
	}
	return ""
}

// ValidCountry reports whether code is a region libphonenumber knows, for
// validating default_country (and guardrails' country lists).
func ValidCountry(code string) bool {
	return geoMeta(code) != nil
}

// normalizeSender accepts a sender as the legacy "from" parameter or
// Config.From carries it: a phone number (normalised like a recipient) or an
// alphanumeric sender id of at most 11 characters (the GSM limit), which also
// covers short codes. It reports false for anything else, so callers can
// ignore or reject it.
func normalizeSender(s string) (string, bool) {
	if n, err := NormalizeNumber(s); err == nil {
		return n, true
	}
	if s == "" || len(s) > 11 || strings.TrimSpace(s) != s {
		return "", false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == ' ') {
			return "", false
		}
	}
	return s, true
}
