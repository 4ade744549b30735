package rewrite

import (
	"bytes"
	"fmt"
	"iter"
	"net/http"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Provider-supplied strings — error descriptions, error codes, message ids,
// and the provider bytes a transport error quotes — are not trusted: a
// provider may echo the message text back (in part, or in another case) or
// quote the recipient's number. Everything a provider says passes through
// the masker below before it reaches a Result, so the audit line, the logs
// and the reply to ISE all get the cleaned value.
const (
	// MaxProviderString is how many characters of one provider-supplied
	// string (a description, a code) survive, counted after masking.
	MaxProviderString = 200
	// MaxProviderErrorDetail bounds a transport error's text, which is
	// mostly postern's own context (URL, TLS and AIA explanation) around
	// whatever provider bytes it quotes.
	MaxProviderErrorDetail = 500
	// MaxTLSErrorDetail bounds a certificate verification error's text. It
	// quotes no provider reply, only names from the certificate and
	// postern's AIA explanation of a whole handshake (at most 4 fetches,
	// each naming its URL and why it failed, plus how many URLs were not
	// tried), which must reach the audit line whole.
	MaxTLSErrorDetail = 2000
	// MaxMessageIDLength is the longest message id postern accepts as
	// readable; a longer one makes the outcome unknown.
	MaxMessageIDLength = 64

	// minTextEcho is how many consecutive characters of the message text
	// count as an echo of it.
	minTextEcho = 5
	// minDigitRun is how many digits in a row may be a phone number.
	minDigitRun = 7
	// scanFactor bounds the work on a huge provider string: at most
	// scanFactor times the output limit is looked at. Masks shrink what they
	// cover only down to a marker, so a string that long cannot have
	// anything readable left for the limit beyond it.
	scanFactor = 4

	maskText   = "[text]"
	maskNumber = "[number]"
)

// SanitizeProviderString is what may be shown of a provider-supplied string
// s for a message with the given text: every run of 7 or more digits becomes
// "[number]", every case-insensitive occurrence of 5 or more consecutive
// characters of text becomes "[text]", and the result is cut to 200
// characters. The cut comes after masking, so a secret straddling it is not
// half revealed; invalid UTF-8 becomes U+FFFD. Only a bounded prefix of a
// huge s is examined.
func SanitizeProviderString(s, text string) string {
	return newMasker(text).clean(s, MaxProviderString)
}

// SanitizeProviderError wraps err so that its text is masked like
// SanitizeProviderString, cut at limit characters (MaxProviderErrorDetail,
// or MaxTLSErrorDetail for a certificate verification error); errors.Is and
// errors.As still see err. For transport errors, which may quote the
// provider's malformed reply.
func SanitizeProviderError(err error, text string, limit int) error {
	if err == nil {
		return nil
	}
	return &sanitizedError{msg: newMasker(text).clean(err.Error(), limit), err: err}
}

type sanitizedError struct {
	msg string
	err error
}

func (e *sanitizedError) Error() string { return e.msg }
func (e *sanitizedError) Unwrap() error { return e.err }

// ReadableMessageID reports whether id can be passed on as a message id: 1
// to 64 characters from [A-Za-z0-9._:-]. Anything else may carry message
// text, line breaks or markup into the reply to ISE and the audit line.
func ReadableMessageID(id string) bool {
	if id == "" || len(id) > MaxMessageIDLength {
		return false
	}
	for i := 0; i < len(id); i++ {
		switch c := id[i]; {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '.', c == '_', c == ':', c == '-':
		default:
			return false
		}
	}
	return true
}

// unreadableID is the outcome when a provider accepted a message but its id
// is not readable: it may well have been sent, so ISE must hear neither
// "delivered" nor "refused". The id itself is not quoted.
func unreadableID(name fmt.Stringer, status int, id string) *Error {
	return &Error{
		Status:      http.StatusBadGateway,
		Code:        CodeInternal,
		Description: "Provider reply unreadable, outcome unknown",
		Outcome:     Unknown,
		Cause: fmt.Errorf("%s: HTTP %d: message id is not readable (%d bytes; at most %d of A-Z a-z 0-9 . _ : -)",
			name, status, len(id), MaxMessageIDLength),
	}
}

// masker holds the message text case-folded, so one Read can clean many
// strings against it without folding the text again.
type masker struct {
	text []byte // the message text, folded (appendFolded); nil when too short to echo
}

func newMasker(text string) masker {
	return newMaskerInto(text, nil)
}

// newMaskerInto is newMasker folding the text into buf, which a caller
// may keep on its stack.
func newMaskerInto(text string, buf []byte) masker {
	// A text of minTextEcho*UTFMax bytes or more has minTextEcho runes:
	// only a shorter one is counted.
	if len(text) < minTextEcho*utf8.UTFMax && utf8.RuneCountInString(text) < minTextEcho {
		return masker{}
	}
	return masker{text: appendFolded(buf, text)}
}

// foldRune maps r to one representative of its simple case-folding orbit
// (the smallest), so two runes fold equal exactly when strings.EqualFold
// says they match: "K", "k" and the Kelvin sign all become "K".
func foldRune(r rune) rune {
	if r < utf8.RuneSelf {
		if 'a' <= r && r <= 'z' {
			r -= 'a' - 'A'
		}
		return r
	}
	least := r
	for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
		least = min(least, f)
	}
	return least
}

// appendFolded appends s with every rune folded.
func appendFolded(b []byte, s string) []byte {
	if b == nil {
		b = make([]byte, 0, len(s)+8)
	}
	// ASCII, most texts whole, folds byte by byte.
	i := 0
	for ; i < len(s) && s[i] < utf8.RuneSelf; i++ {
		c := s[i]
		if 'a' <= c && c <= 'z' {
			c -= 'a' - 'A'
		}
		b = append(b, c)
	}
	for _, r := range s[i:] {
		b = utf8.AppendRune(b, foldRune(r))
	}
	return b
}

// echoes reports whether the runes w (minTextEcho of them, unfolded) occur
// in the text, ignoring case. It does not allocate.
func (mk masker) echoes(w []rune) bool {
	if mk.text == nil {
		return false
	}
	var buf [minTextEcho * utf8.UTFMax]byte
	b := buf[:0]
	for _, r := range w {
		b = utf8.AppendRune(b, foldRune(r))
	}
	return bytes.Contains(mk.text, b)
}

// clean is SanitizeProviderString against mk's text, cut at limit
// characters. A string that needs no change is returned as it is, without
// allocating.
func (mk masker) clean(s string, limit int) string {
	if mk.untouched(s, limit) {
		return s
	}
	// Look at a bounded prefix only. Its last runes cannot be decided (a
	// digit run or an echo may continue past it), so they are dropped
	// rather than shown.
	maxScan := scanFactor*limit + minDigitRun
	rs := make([]rune, 0, min(len(s), maxScan))
	truncated := false
	for _, r := range s { // invalid bytes arrive as U+FFFD
		if len(rs) == maxScan {
			truncated = true
			break
		}
		rs = append(rs, r)
	}
	decided := len(rs)
	if truncated {
		decided -= max(minDigitRun, minTextEcho) - 1
	}

	const (
		none = iota
		number
		text
	)
	masked := make([]uint8, len(rs))
	for i := 0; i < len(rs); {
		j := i
		for j < len(rs) && unicode.IsDigit(rs[j]) {
			j++
		}
		if j-i >= minDigitRun {
			for k := i; k < j; k++ {
				masked[k] = number
			}
		}
		i = max(j, i+1)
	}
	for i := 0; i+minTextEcho <= len(rs); i++ {
		if mk.echoes(rs[i : i+minTextEcho]) {
			for k := i; k < i+minTextEcho; k++ {
				masked[k] = text
			}
		}
	}

	var b strings.Builder
	b.Grow(min(len(s), 4*limit))
	n := 0 // characters written
	for i := 0; i < decided; {
		if masked[i] == none {
			if n+1 > limit {
				break
			}
			b.WriteRune(rs[i])
			n, i = n+1, i+1
			continue
		}
		mark := maskNumber
		j := i
		for ; j < len(rs) && masked[j] != none; j++ {
			if masked[j] == text {
				mark = maskText
			}
		}
		if n+len(mark) > limit {
			break
		}
		b.WriteString(mark)
		n, i = n+len(mark), j
	}
	return b.String()
}

// untouched reports, without allocating and reading at most limit+1
// characters, whether s is valid UTF-8 of at most limit characters with
// nothing to mask.
func (mk masker) untouched(s string, limit int) bool {
	var win [minTextEcho]rune
	n, digits := 0, 0
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			return false
		}
		i += size
		if n++; n > limit {
			return false
		}
		if unicode.IsDigit(r) {
			if digits++; digits >= minDigitRun {
				return false
			}
		} else {
			digits = 0
		}
		copy(win[:], win[1:])
		win[minTextEcho-1] = r
		if n >= minTextEcho && mk.echoes(win[:]) {
			return false
		}
	}
	return true
}

// cleanID masks a readable message id (see ReadableMessageID) for the
// reply and the audit line: echoes of the text become "[text]", and a run
// of 7 or more digits becomes "[number]" when it holds one of the message's
// recipients (see holdsRecipient), also when separators split it into
// groups ("06-12-34-59-931"). Other digit runs are kept: ids are
// random tokens (Clickatell's and Twilio's are hex, a third of them with 7
// digits in a row; some gateways' are plain numbers), and masking them
// would leave nothing to look the message up by at the provider.
func (mk masker) cleanID(id string, to []string) string {
	var masked [MaxMessageIDLength]uint8 // 0 none, 1 number, 2 text
	found := false
	var digits [MaxMessageIDLength]byte
	for i := 0; i < len(id); {
		// A run is digits, possibly split by single separators
		// ("06-12-34-59-931", "33.6123.459932"): a number written in
		// groups is still the number.
		j, n := i, 0
		for j < len(id) {
			if isDigit(id[j]) {
				digits[n] = id[j]
				n++
				j++
				continue
			}
			if n > 0 && j+1 < len(id) && isIDSeparator(id[j]) && isDigit(id[j+1]) {
				j++
				continue
			}
			break
		}
		if n >= minDigitRun && holdsRecipient(string(digits[:n]), to) {
			for k := i; k < j; k++ {
				masked[k] = 1
			}
			found = true
		}
		i = max(j, i+1)
	}
	// A readable id is ASCII: folded once, each window is a slice of it
	// (foldRune of an ASCII letter is its upper case).
	var upper [MaxMessageIDLength]byte
	for i := 0; i < len(id); i++ {
		c := id[i]
		if 'a' <= c && c <= 'z' {
			c -= 'a' - 'A'
		}
		upper[i] = c
	}
	if echoes := mk.echoedWindows(upper[:len(id)]); echoes != 0 {
		for i := 0; i+minTextEcho <= len(id); i++ {
			if echoes&(1<<i) != 0 {
				for k := i; k < i+minTextEcho; k++ {
					masked[k] = 2
				}
			}
		}
		found = true
	}
	if !found {
		return id
	}
	var b strings.Builder
	for i := 0; i < len(id); {
		if masked[i] == 0 {
			b.WriteByte(id[i])
			i++
			continue
		}
		mark := maskNumber
		j := i
		for ; j < len(id) && masked[j] != 0; j++ {
			if masked[j] == 2 {
				mark = maskText
			}
		}
		b.WriteString(mark)
		i = j
	}
	return b.String()
}

// echoedWindows is the set (bit i for the window at i) of id's windows of
// minTextEcho bytes that occur in the text: window i is in it exactly when
// bytes.Contains(mk.text, id[i:i+minTextEcho]). id is a readable id,
// upper-cased, at most MaxMessageIDLength bytes. Instead of searching the
// text once per window, the text is passed over once, looking only at the
// stretches made of bytes the id has: a hex id shares few with a text, so
// the text's windows there are few, and each is compared with the id's
// windows. A text with many such windows (long numbers, hex) is looked up
// in a table of the id's windows instead (echoedWindowsTable).
func (mk masker) echoedWindows(id []byte) uint64 {
	if mk.text == nil || len(id) < minTextEcho {
		return 0
	}
	var (
		inID    [256 / 64]uint64
		windows [MaxMessageIDLength - minTextEcho + 1]uint64 // window i's bytes
	)
	var k uint64
	for i, c := range id {
		inID[c>>6] |= 1 << (c & 63)
		k = (k<<8 | uint64(c)) & windowMask
		if i >= minTextEcho-1 {
			windows[i-(minTextEcho-1)] = k
		}
	}
	idWindows := windows[:len(id)-(minTextEcho-1)]
	var found [directWindows]uint64 // the text's windows of the id's bytes
	n := 0
	for k := range mk.windowsOf(&inID) {
		if n == len(found) {
			return mk.echoedWindowsTable(id, &inID)
		}
		found[n] = k
		n++
	}
	var echoes uint64
	for _, w := range found[:n] {
		for i, iw := range idWindows {
			if iw == w {
				echoes |= 1 << i
			}
		}
	}
	return echoes
}

// windowMask keeps the last minTextEcho bytes of a window's key.
const windowMask = 1<<(8*minTextEcho) - 1

// directWindows is how many of the text's candidate windows echoedWindows
// compares with the id's one by one before it builds a table instead.
const directWindows = 16

// echoedWindowsTable is echoedWindows with the id's windows in a small
// hash table, for a text with many windows made of the id's bytes (inID).
func (mk masker) echoedWindowsTable(id []byte, inID *[256 / 64]uint64) uint64 {
	const slots = 128 // a power of two, over twice the windows an id has
	var (
		keys  [slots]uint64 // a window's bytes, 0 for an empty slot (an id has no NUL)
		where [slots]uint64 // the windows holding those bytes
	)
	slot := func(k uint64) uint64 {
		h := (k * 0x9e3779b97f4a7c15) >> (64 - 7)
		for keys[h] != 0 && keys[h] != k {
			h = (h + 1) & (slots - 1)
		}
		return h
	}
	var k uint64
	for i, c := range id {
		k = (k<<8 | uint64(c)) & windowMask
		if i >= minTextEcho-1 {
			h := slot(k)
			keys[h] = k
			where[h] |= 1 << (i - (minTextEcho - 1))
		}
	}
	var echoes uint64
	for k := range mk.windowsOf(inID) {
		if h := slot(k); keys[h] == k {
			echoes |= where[h]
		}
	}
	return echoes
}

// windowsOf yields the text's windows of minTextEcho bytes that are all
// in the set inID, each as a key of its bytes (windowMask).
func (mk masker) windowsOf(inID *[256 / 64]uint64) iter.Seq[uint64] {
	return func(yield func(uint64) bool) {
		var k uint64
		run := 0 // bytes in a row the id has
		for _, c := range mk.text {
			if inID[c>>6]&(1<<(c&63)) == 0 {
				run = 0
				continue
			}
			run++
			k = (k<<8 | uint64(c)) & windowMask
			if run >= minTextEcho && !yield(k) {
				return
			}
		}
	}
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// isIDSeparator is what may group the digits of a number inside a readable
// message id.
func isIDSeparator(c byte) bool { return c == '.' || c == '-' || c == '_' || c == ':' }

// holdsRecipient reports whether the digit run holds one of the
// recipients' numbers, in international form or without its country code
// (the 1 to 3 leading digits), as a national form would show it. Shorter
// overlaps are left alone: a random id's digits share 7 in a row with some
// number now and then, and masking them would only lose the id.
func holdsRecipient(run string, to []string) bool {
	for _, n := range to {
		for k := 0; k <= 3 && len(n)-k >= minDigitRun; k++ {
			if strings.Contains(run, n[k:]) {
				return true
			}
		}
	}
	return false
}

// messageID is what a provider's Read does with the id of an accepted
// recipient: an unreadable one makes the outcome unknown, a readable one is
// masked for recipient number to.
func (mk masker) messageID(name fmt.Stringer, status int, id string, to []string) (string, *Error) {
	if !ReadableMessageID(id) {
		return "", unreadableID(name, status, id)
	}
	return mk.cleanID(id, to), nil
}
