package rewrite

import (
	"fmt"
	"net/http"
	"regexp"
)

// Legacy error classes. Each upstream failure is mapped onto one of these
// fixed code/description pairs so ISE sees the legacy vocabulary and never
// provider wording.
type errClass int

const (
	classOther errClass = iota
	classAuth
	classCredit
	classDestination
	classSource
	classThrottled
)

var httpStatusClasses = map[int]errClass{
	http.StatusUnauthorized:    classAuth,
	http.StatusPaymentRequired: classCredit,
	http.StatusGone:            classDestination,
	http.StatusTooManyRequests: classThrottled,
}

// legacyError is an upstream refusal in the legacy vocabulary: 502 with the
// fixed code/description of its class, and whether another provider may try.
func legacyError(class errClass, status int, providerBody bool, cause error) *Error {
	e := &Error{Status: http.StatusBadGateway, Outcome: Refused, Cause: cause}
	switch class {
	case classAuth:
		e.Code, e.Description = CodeAuthFailed, "Authentication failed"
	case classCredit:
		e.Code, e.Description = CodeNoCredit, "No credit left"
	case classDestination:
		e.Code, e.Description = CodeInvalidDestination, "Invalid destination address"
	case classSource:
		e.Code, e.Description = CodeInvalidSource, "Invalid source address"
	case classThrottled:
		e.Code, e.Description = CodeThrottled, "Maximum MT limit exceeded"
	default:
		e.Code, e.Description = CodeInternal, "Upstream error"
	}
	e.Failover = failoverClass(class, status, providerBody)
	return e
}

// failoverClass decides whether a refusal lets another provider try: the
// account-level and provider-side failures do, a bad message does not. A 5xx
// counts only with the provider's own error body, which proves the provider
// itself answered and refused; a bare 5xx from something in between does not.
func failoverClass(class errClass, status int, providerBody bool) bool {
	switch class {
	case classThrottled, classAuth, classCredit:
		return true
	case classDestination, classSource:
		return false
	}
	return status >= 500 && status <= 599 && providerBody
}

// unknownError is the answer when the provider may have taken the message
// but its reply does not say so readably: ISE must not be told it was
// refused (it might resend a password SMS), nor that it was delivered.
func unknownError(api fmt.Stringer, status int, why string) *Error {
	return &Error{
		Status:      http.StatusBadGateway,
		Code:        CodeInternal,
		Description: "Upstream reply unclear, outcome unknown",
		Outcome:     Unknown,
		Cause:       fmt.Errorf("%s: HTTP %d: %s", api, status, why),
	}
}

// numberRE finds phone-number-like digit runs written with separators
// ("+1 (555) 123-4567"), which the digit-run rule alone does not catch.
var numberRE = regexp.MustCompile(`\+?[0-9][0-9 ().-]{5,}[0-9]`)

// maxCodeDetail bounds a provider's error code in the audit log.
const maxCodeDetail = 20

// upstreamCause keeps the provider's own code and description for the audit
// log only, each sanitised (SanitizeProviderString: the message text and
// long digit runs masked, cut at 200 characters).
func upstreamCause(api fmt.Stringer, status int, code, desc string, mk masker) error {
	if code == "" && desc == "" {
		return fmt.Errorf("%s: HTTP %d, no error detail", api, status)
	}
	// Masked before quoting: %q escapes quotes and would hide an echo of
	// the text from the match.
	code = mk.clean(code, maxCodeDetail)
	// Providers quote the recipient back ("The 'To' number +1 555... is
	// not valid"); a guest's number must not reach the log unmasked.
	desc = numberRE.ReplaceAllString(mk.clean(desc, MaxProviderString), maskNumber)
	return fmt.Errorf("%s: HTTP %d, code %q, %q", api, status, code, desc)
}
