package rewrite

import (
	"regexp"
	"regexp/syntax"
)

// digitSet is the set of digits a pattern's match can start with, as a
// bit per digit. Numbers reach the patterns as digits only, so a number
// whose first digit is not in the set cannot match, and the regular
// expression need not run: most of a region's type patterns are ruled out
// this way ("premium rate starts with 9"). The set may be larger than the
// truth (allDigits when unsure), never smaller; TestLookupNumber_SameAsFullValidation
// holds the answers to libphonenumber's.
type digitSet uint16

const allDigits digitSet = 1<<10 - 1

// has reports whether s's first byte is in the set; a string without a
// first digit is left to the expression.
func (d digitSet) has(s string) bool {
	if s == "" || s[0] < '0' || s[0] > '9' {
		return true
	}
	return d&(1<<(s[0]-'0')) != 0
}

// firstDigits is the digitSet of a compiled pattern.
func firstDigits(re *regexp.Regexp) digitSet {
	parsed, err := syntax.Parse(re.String(), syntax.Perl)
	if err != nil {
		return allDigits
	}
	set, nullable := firstOf(parsed.Simplify())
	if nullable {
		return allDigits // it may match the empty string: anything may follow
	}
	return set
}

// firstOf returns the digits a match of re can start with, and whether re
// can match the empty string (then what follows it can start the match).
func firstOf(re *syntax.Regexp) (set digitSet, nullable bool) {
	switch re.Op {
	case syntax.OpNoMatch:
		return 0, false
	case syntax.OpEmptyMatch, syntax.OpBeginLine, syntax.OpEndLine, syntax.OpBeginText, syntax.OpEndText,
		syntax.OpWordBoundary, syntax.OpNoWordBoundary:
		return 0, true
	case syntax.OpLiteral:
		if len(re.Rune) == 0 {
			return 0, true
		}
		return runeDigits(re.Rune[0], re.Rune[0]), false
	case syntax.OpCharClass:
		for i := 0; i+1 < len(re.Rune); i += 2 {
			set |= runeDigits(re.Rune[i], re.Rune[i+1])
		}
		return set, false
	case syntax.OpCapture:
		return firstOf(re.Sub[0])
	case syntax.OpStar, syntax.OpQuest:
		set, _ = firstOf(re.Sub[0])
		return set, true
	case syntax.OpPlus:
		return firstOf(re.Sub[0])
	case syntax.OpRepeat:
		set, nullable = firstOf(re.Sub[0])
		return set, nullable || re.Min == 0
	case syntax.OpConcat:
		for _, sub := range re.Sub {
			s, n := firstOf(sub)
			set |= s
			if !n {
				return set, false
			}
		}
		return set, true
	case syntax.OpAlternate:
		for _, sub := range re.Sub {
			s, n := firstOf(sub)
			set |= s
			nullable = nullable || n
		}
		return set, nullable
	}
	// Anything else (any character, ...) may start with any digit.
	return allDigits, true
}

// runeDigits is the digits in the rune range lo-hi.
func runeDigits(lo, hi rune) digitSet {
	var set digitSet
	for d := max(lo, '0'); d <= min(hi, '9'); d++ {
		set |= 1 << (d - '0')
	}
	return set
}
