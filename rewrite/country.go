package rewrite

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

// lineType is libphonenumber's PhoneNumberType.
type lineType int8

const (
	lineUnknown lineType = iota
	lineFixed
	lineMobile
	lineFixedOrMobile
	lineTollFree
	linePremium
	lineSharedCost
	lineVoIP
	linePersonal
	linePager
	lineUAN
	lineVoicemail
)

// lineTypeNames are NumberInfo.Type's values.
var lineTypeNames = [...]string{
	lineUnknown:       "unknown",
	lineFixed:         "fixed-line",
	lineMobile:        "mobile",
	lineFixedOrMobile: "fixed-line-or-mobile",
	lineTollFree:      "toll-free",
	linePremium:       "premium-rate",
	lineSharedCost:    "shared-cost",
	lineVoIP:          "voip",
	linePersonal:      "personal-number",
	linePager:         "pager",
	lineUAN:           "uan",
	lineVoicemail:     "voicemail",
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
		var err error
		if cc, nsn, err = typer.parse(digits, ""); err != nil {
			return unknown
		}
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
	if !known || typ == lineUnknown {
		return unknown
	}
	return NumberInfo{Country: region, Type: lineTypeNames[typ]}
}

// IsCountryCode reports whether code is a region libphonenumber knows
// ("US", "GB", ...), for validating allow_countries.
func IsCountryCode(code string) bool {
	return geoMeta(code) != nil
}
