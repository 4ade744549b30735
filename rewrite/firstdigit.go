package rewrite

import (
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

// firstDigits is the digitSet of a pattern (as given to regexp.Compile).
func firstDigits(pattern string) digitSet {
	parsed, err := syntax.Parse(pattern, syntax.Perl)
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

// pairSet is the set of two-digit beginnings a pattern's matches of two
// or more digits can have, as a bit per pair ("74" is bit 74): a sharper
// filter than digitSet for the many type patterns that share a first
// digit with a number ("7[0-9]" mobile, "70" personal, "76" pager in GB).
// As with digitSet it may be larger than the truth, never smaller.
type pairSet [2]uint64

const pairCount = 100

func allPairs() (p pairSet) {
	for i := range pairCount {
		p[i>>6] |= 1 << (i & 63)
	}
	return p
}

// has reports whether s's first two bytes are in the set; a string
// without two leading digits is left to the expression.
func (p pairSet) has(s string) bool {
	if len(s) < 2 || s[0] < '0' || s[0] > '9' || s[1] < '0' || s[1] > '9' {
		return true
	}
	i := int(s[0]-'0')*10 + int(s[1]-'0')
	return p[i>>6]&(1<<(i&63)) != 0
}

func (p pairSet) union(q pairSet) pairSet { return pairSet{p[0] | q[0], p[1] | q[1]} }

// cross is every pair of a digit of a followed by a digit of b.
func cross(a, b digitSet) (p pairSet) {
	for x := range 10 {
		if a&(1<<x) == 0 {
			continue
		}
		for y := range 10 {
			if b&(1<<y) != 0 {
				i := x*10 + y
				p[i>>6] |= 1 << (i & 63)
			}
		}
	}
	return p
}

// firstPairs is the pairSet of a pattern that must match a whole number
// (anchored at both ends, as descMatcher's are).
func firstPairs(pattern string) pairSet {
	parsed, err := syntax.Parse(pattern, syntax.Perl)
	if err != nil {
		return allPairs()
	}
	return pairsOf(parsed.Simplify())
}

// pairsOf returns the two-digit beginnings of re's matches of length two
// or more. A match w of a concatenation u·v starts with u's pair when u
// has two characters or more, with u's only character and v's first when
// u has one (onesOf), and with v's pair when u is empty; repetitions are
// concatenations of their operand.
func pairsOf(re *syntax.Regexp) pairSet {
	switch re.Op {
	case syntax.OpNoMatch, syntax.OpEmptyMatch, syntax.OpBeginLine, syntax.OpEndLine, syntax.OpBeginText,
		syntax.OpEndText, syntax.OpWordBoundary, syntax.OpNoWordBoundary, syntax.OpCharClass:
		return pairSet{} // nothing two characters long
	case syntax.OpLiteral:
		if len(re.Rune) < 2 {
			return pairSet{}
		}
		return cross(runeDigits(re.Rune[0], re.Rune[0]), runeDigits(re.Rune[1], re.Rune[1]))
	case syntax.OpCapture, syntax.OpQuest:
		return pairsOf(re.Sub[0])
	case syntax.OpStar, syntax.OpPlus, syntax.OpRepeat:
		p := pairsOf(re.Sub[0])
		if re.Op == syntax.OpRepeat && re.Max == 1 {
			return p
		}
		first, _ := firstOf(re.Sub[0])
		return p.union(cross(onesOf(re.Sub[0]), first))
	case syntax.OpConcat:
		return pairsOfSeq(re.Sub)
	case syntax.OpAlternate:
		var p pairSet
		for _, sub := range re.Sub {
			p = p.union(pairsOf(sub))
		}
		return p
	}
	return allPairs() // any character, ...
}

// pairsOfSeq is pairsOf for the concatenation of subs.
func pairsOfSeq(subs []*syntax.Regexp) pairSet {
	if len(subs) == 0 {
		return pairSet{}
	}
	head, rest := subs[0], subs[1:]
	p := pairsOf(head)
	restFirst, _ := firstOf(&syntax.Regexp{Op: syntax.OpConcat, Sub: rest})
	p = p.union(cross(onesOf(head), restFirst))
	if _, nullable := firstOf(head); nullable {
		p = p.union(pairsOfSeq(rest))
	}
	return p
}

// onesOf returns the digits re can match as a whole one-character string.
func onesOf(re *syntax.Regexp) digitSet {
	switch re.Op {
	case syntax.OpNoMatch, syntax.OpEmptyMatch, syntax.OpBeginLine, syntax.OpEndLine, syntax.OpBeginText,
		syntax.OpEndText, syntax.OpWordBoundary, syntax.OpNoWordBoundary:
		return 0
	case syntax.OpLiteral:
		if len(re.Rune) != 1 {
			return 0
		}
		return runeDigits(re.Rune[0], re.Rune[0])
	case syntax.OpCharClass:
		set, _ := firstOf(re)
		return set
	case syntax.OpCapture, syntax.OpQuest, syntax.OpStar, syntax.OpPlus, syntax.OpRepeat:
		return onesOf(re.Sub[0]) // one repetition of one character, the others empty
	case syntax.OpConcat:
		// One part of one character, every other part empty.
		var set digitSet
		for i, sub := range re.Sub {
			othersEmpty := true
			for j, o := range re.Sub {
				if _, nullable := firstOf(o); j != i && !nullable {
					othersEmpty = false
					break
				}
			}
			if othersEmpty {
				set |= onesOf(sub)
			}
		}
		return set
	case syntax.OpAlternate:
		var set digitSet
		for _, sub := range re.Sub {
			set |= onesOf(sub)
		}
		return set
	}
	return allDigits // any character, ...
}
