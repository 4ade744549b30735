package rewrite

import (
	"encoding/binary"
	"regexp/syntax"
	"slices"
)

// digitDFA is a number pattern as a deterministic automaton over the ten
// digits: matching a national number is one table step per digit, where
// the regexp package's backtracker (patterns this small always take it)
// costs tens of nanoseconds per digit and allocates now and then. Its
// tables hold no pointers, so the collector does not scan them either.
//
// libphonenumber's patterns are made of digit classes, alternation,
// concatenation and counted repetition, which is exactly what such an
// automaton can be built for. A pattern with anything else (an anchor
// inside it, a class beyond the digits that a number could use), or whose
// automaton would grow past maxDFAStates, gets none and stays with its
// regexp.
type digitDFA struct {
	// next[s*10+d] is the state after digit d in state s; 0 is the dead
	// state, which no digit leaves and no match reaches.
	next   []uint16
	accept []bool // accept[s]: the digits read so far are a match
	start  uint16
}

// maxDFAStates bounds an automaton: a region's patterns need tens to a
// few hundred states; past this, the regexp is kept.
const maxDFAStates = 2048

// newDigitDFA builds the automaton of pattern (unanchored: the match is
// whole, or a prefix with prefixMatch below). ok is false when the pattern
// cannot be turned into one (see digitDFA).
func newDigitDFA(pattern string) (dfa *digitDFA, ok bool) {
	// Parsed as the regexps are built around it ("^(?:" + pattern +
	// ...), and on its own: a pattern that parses both ways is whole
	// (its groups balanced), so the regexps anchor exactly it.
	if _, err := syntax.Parse(pattern, syntax.Perl); err != nil {
		return nil, false
	}
	re, err := syntax.Parse("(?:"+pattern+")", syntax.Perl)
	if err != nil {
		return nil, false
	}
	prog, err := syntax.Compile(re.Simplify())
	if err != nil {
		return nil, false
	}
	for _, in := range prog.Inst {
		switch in.Op {
		case syntax.InstAlt, syntax.InstAltMatch, syntax.InstCapture, syntax.InstNop, syntax.InstMatch, syntax.InstFail:
		case syntax.InstRune, syntax.InstRune1:
			// Every rune it takes must be an ASCII digit: then a string
			// with any other byte cannot match, and the automaton, which
			// reads digits only, answers for every string.
			if !onlyDigits(in.Rune) {
				return nil, false
			}
		default: // any rune, an anchor or a word boundary
			return nil, false
		}
	}
	b := dfaBuilder{prog: prog, index: map[string]uint16{}}
	b.dfa = &digitDFA{next: make([]uint16, 10), accept: []bool{false}} // the dead state
	start, ok := b.state(b.closure([]uint32{uint32(prog.Start)}))
	if !ok {
		return nil, false
	}
	b.dfa.start = start
	var outs []uint32
	for s := 1; s < len(b.dfa.accept); s++ { // states are added as they are found
		for d := range 10 {
			outs = outs[:0]
			for _, pc := range b.sets[s] {
				if in := &prog.Inst[pc]; in.MatchRune('0' + rune(d)) {
					outs = append(outs, in.Out)
				}
			}
			to, ok := b.state(b.closure(outs))
			if !ok {
				return nil, false
			}
			b.dfa.next[s*10+d] = to
		}
	}
	return b.dfa, true
}

// onlyDigits reports whether a rune instruction's runes — one rune, or
// pairs of the ends of ranges — are all ASCII digits.
func onlyDigits(runes []rune) bool {
	if len(runes) == 0 {
		return false
	}
	for _, r := range runes {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

// dfaBuilder is the subset construction: a state is the set of the
// program's rune instructions (and its match) the digits so far can be at.
type dfaBuilder struct {
	prog  *syntax.Prog
	dfa   *digitDFA
	sets  [][]uint32        // by state; sets[0] is the dead state's, empty
	index map[string]uint16 // a set's key -> its state
	seen  []bool            // closure's visited instructions, by pc
}

// closure is the set of instructions reachable from the ones at pcs
// without reading a digit: the rune instructions and the match. A pattern
// may loop without reading (an empty alternative under a repetition):
// each instruction is visited once.
func (b *dfaBuilder) closure(pcs []uint32) []uint32 {
	if b.seen == nil {
		b.seen = make([]bool, len(b.prog.Inst))
	}
	clear(b.seen)
	var set []uint32
	stack := append([]uint32(nil), pcs...)
	for len(stack) > 0 {
		pc := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if b.seen[pc] {
			continue
		}
		b.seen[pc] = true
		in := &b.prog.Inst[pc]
		switch in.Op {
		case syntax.InstAlt, syntax.InstAltMatch:
			stack = append(stack, in.Out, in.Arg)
		case syntax.InstCapture, syntax.InstNop:
			stack = append(stack, in.Out)
		case syntax.InstFail:
		default: // a rune instruction or the match
			set = append(set, pc)
		}
	}
	return set
}

// state is the state of set, added if new; ok is false past maxDFAStates.
func (b *dfaBuilder) state(set []uint32) (uint16, bool) {
	if len(set) == 0 {
		return 0, true
	}
	slices.Sort(set)
	key := make([]byte, 0, 4*len(set))
	for _, pc := range set {
		key = binary.LittleEndian.AppendUint32(key, pc)
	}
	if s, seen := b.index[string(key)]; seen {
		return s, true
	}
	s := len(b.dfa.accept)
	if s >= maxDFAStates {
		return 0, false
	}
	if len(b.sets) == 0 {
		b.sets = append(b.sets, nil) // the dead state's
	}
	b.sets = append(b.sets, set)
	b.index[string(key)] = uint16(s)
	accept := slices.ContainsFunc(set, func(pc uint32) bool { return b.prog.Inst[pc].Op == syntax.InstMatch })
	b.dfa.accept = append(b.dfa.accept, accept)
	b.dfa.next = append(b.dfa.next, make([]uint16, 10)...)
	return uint16(s), true
}

// fullMatch reports whether all of s matches. A byte that is not a digit
// cannot be part of a match (newDigitDFA).
func (m *digitDFA) fullMatch(s string) bool {
	st := m.start
	for i := 0; i < len(s); i++ {
		d := s[i] - '0'
		if d > 9 {
			return false
		}
		if st = m.next[int(st)*10+int(d)]; st == 0 {
			return false
		}
	}
	return m.accept[st]
}

// prefixMatch reports whether a prefix of s (the empty one included)
// matches.
func (m *digitDFA) prefixMatch(s string) bool {
	st := m.start
	for i := 0; !m.accept[st]; i++ {
		if i == len(s) || s[i]-'0' > 9 {
			return false
		}
		if st = m.next[int(st)*10+int(s[i]-'0')]; st == 0 {
			return false
		}
	}
	return true
}
