package rewrite

import (
	"github.com/nyaruka/phonenumbers"
)

// NumberInfo is what libphonenumber's metadata says about an international
// number: the country it belongs to and what kind of line it is.
type NumberInfo struct {
	// Country is the ISO 3166-1 alpha-2 code ("US", "GB"), or "" when the
	// number fits no country's numbering plan.
	Country string
	// Type is "mobile", "fixed-line", "fixed-line-or-mobile", "toll-free",
	// "premium-rate", "shared-cost", "voip", "personal-number", "pager",
	// "uan", "voicemail" or "unknown".
	Type string
}

// Premium reports whether sending to the number would cost more than a
// normal text: the numbers SMS pumping fraud sends to.
func (n NumberInfo) Premium() bool { return n.Type == "premium-rate" }

// Known reports whether the number is a valid number of a known country.
func (n NumberInfo) Known() bool { return n.Country != "" && n.Type != "unknown" }

var numberTypeNames = map[phonenumbers.PhoneNumberType]string{
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

// LookupNumber classifies an international number given as digits without
// "+" (Message.To form, e.g. "447700900123"). A number the metadata cannot
// place gets Country "" and Type "unknown"; it is never an error, so callers
// decide what unknown means for them.
func LookupNumber(digits string) NumberInfo {
	unknown := NumberInfo{Type: "unknown"}
	if len(digits) < 7 || len(digits) > 15 {
		return unknown
	}
	// libphonenumber's Parse, IsValidNumber, GetRegionCodeForNumber and
	// GetNumberType, answered once each from precompiled patterns (see
	// numberTyper): the costliest step of a message otherwise.
	// TestLookupNumber_SameAsFullValidation holds this to the library.
	typer := sharedNumberTyper()
	cc, nsn, ok := typer.parseInternational(digits)
	if !ok {
		num, err := phonenumbers.Parse("+"+digits, "")
		if err != nil {
			return unknown
		}
		cc, nsn = int(num.GetCountryCode()), phonenumbers.GetNationalSignificantNumber(num)
	}
	region, typ, typed := typer.region(cc, nsn)
	if region == "" || region == "ZZ" || region == "001" {
		return unknown
	}
	// For a geographic region, valid means a type other than UNKNOWN.
	known := typed
	if !typed {
		typ, known = typer.numberType(region, nsn)
	}
	if !known || typ == phonenumbers.UNKNOWN {
		return unknown
	}
	t, ok := numberTypeNames[typ]
	if !ok {
		t = "unknown"
	}
	return NumberInfo{Country: region, Type: t}
}

// IsCountryCode reports whether code is a region libphonenumber knows
// ("US", "GB", ...), for validating allow_countries.
func IsCountryCode(code string) bool {
	return phonenumbers.GetSupportedRegions()[code]
}
