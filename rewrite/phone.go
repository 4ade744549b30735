package rewrite

import (
	"errors"
	"strings"
)

// Number errors name the rule that failed, never the number: callers may log
// them, and a guest's phone number is personal data.
var (
	errNumberChars  = errors.New("number contains characters other than digits, \"+\", spaces, dashes, dots and parentheses")
	errNumberPlus   = errors.New("number has a \"+\" that is not at the start")
	errNumberLength = errors.New("number must have 7 to 15 digits")
	errNumberZero   = errors.New("number is not in international format (starts with 0 after the country prefix)")
)

// NormalizeNumber turns a phone number as a sponsor typed it into the
// international digits-only form every Clickatell API wants ("+1 (555)
// 123-4567" → "15551234567"). ISE substitutes $mobilenumber$ verbatim, so the
// number can arrive with "+", a leading "00", spaces, dashes, dots and
// parentheses; those are stripped. The result must be 7 to 15 ASCII digits
// (the E.164 range) and must not start with 0, because no country code does:
// a leading 0 means a national number that no provider can route reliably.
// Anything else (letters, other punctuation, non-ASCII digits) is an error.
func NormalizeNumber(s string) (string, error) {
	var b strings.Builder
	plus := false
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c >= '0' && c <= '9':
			if b.Len() == 17 {
				// Stop early so a hostile megabyte of digits costs nothing:
				// 18 digits fail the length rule even after a "00" prefix.
				return "", errNumberLength
			}
			b.WriteByte(c)
		case c == ' ' || c == '-' || c == '.' || c == '(' || c == ')':
		case c == '+':
			if plus || b.Len() > 0 {
				return "", errNumberPlus
			}
			plus = true
		default:
			return "", errNumberChars
		}
	}
	d := b.String()
	if !plus && strings.HasPrefix(d, "00") {
		d = d[2:]
	}
	if len(d) < 7 || len(d) > 15 {
		return "", errNumberLength
	}
	if d[0] == '0' {
		return "", errNumberZero
	}
	return d, nil
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
