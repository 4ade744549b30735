// Package jsonenc appends JSON strings byte for byte as the standard
// library's encoders write them, without reflection or allocation: the
// audit line (log/slog's JSON handler) and the fixed-shape provider bodies
// (encoding/json with SetEscapeHTML(false)) escape alike but for \b and
// \f, so one loop serves both. Its callers' fuzz tests hold it to the
// standard library (proxy/audit FuzzLineSameAsSlog, rewrite
// FuzzBodiesSameAsEncoders).
package jsonenc

import "unicode/utf8"

// AppendString appends s as encoding/json writes it with
// SetEscapeHTML(false): "<", ">" and "&" as they are, quotes, backslashes
// and \b \f \n \r \t escaped, other control characters as \u00XX,
// U+2028 and U+2029 escaped, each invalid UTF-8 byte as \ufffd.
func AppendString(dst []byte, s string) []byte { return appendString(dst, s, true) }

// AppendSlogString appends s as log/slog's JSON handler writes a string:
// as AppendString, but \b and \f as \u0008 and \u000c.
func AppendSlogString(dst []byte, s string) []byte { return appendString(dst, s, false) }

// AppendStrings appends list as encoding/json writes a []string: a JSON
// array of AppendString's strings, null when list is nil.
func AppendStrings(dst []byte, list []string) []byte {
	if list == nil {
		return append(dst, "null"...)
	}
	dst = append(dst, '[')
	for i, s := range list {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = AppendString(dst, s)
	}
	return append(dst, ']')
}

const hexDigits = "0123456789abcdef"

// plainASCII says which ASCII bytes a JSON string holds as they are: all
// but the control characters, the quote and the backslash. (A table: one
// load per byte instead of three comparisons, on the hottest loop of the
// audit line and the provider bodies.)
var plainASCII = func() (t [utf8.RuneSelf]bool) {
	for b := 0x20; b < utf8.RuneSelf; b++ {
		t[b] = b != '"' && b != '\\'
	}
	return t
}()

// appendString appends s as a JSON string. Both encoders at work in a
// slog JSON line escape alike — quotes, backslashes, control characters,
// U+2028 and U+2029, invalid UTF-8 as \ufffd, and never "<", ">" or "&" —
// except that encoding/json (jsonStyle, inside lists) writes \b and \f
// where slog writes \u0008 and \u000c.
func appendString(dst []byte, s string, jsonStyle bool) []byte {
	dst = append(dst, '"')
	start := 0
	// Eight plain bytes at a time while there are such words: most of an
	// audit line's strings (ids, hosts, reasons) have nothing to escape.
	// Past a word that is not plain, the next eight bytes go byte by byte,
	// so that text outside ASCII costs a test per word, not per byte.
	wordAt := 0
	for i := 0; i < len(s); {
		if i >= wordAt {
			for i+8 <= len(s) && plainWord(s[i:i+8]) {
				i += 8
			}
			if i >= len(s) {
				break
			}
			wordAt = i + 8
		}
		if b := s[i]; b < utf8.RuneSelf {
			if plainASCII[b] {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch {
			case b == '\\' || b == '"':
				dst = append(dst, '\\', b)
			case b == '\n':
				dst = append(dst, '\\', 'n')
			case b == '\r':
				dst = append(dst, '\\', 'r')
			case b == '\t':
				dst = append(dst, '\\', 't')
			case b == '\b' && jsonStyle:
				dst = append(dst, '\\', 'b')
			case b == '\f' && jsonStyle:
				dst = append(dst, '\\', 'f')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[b>>4], hexDigits[b&0xF])
			}
			i++
			start = i
			continue
		}
		c, size := utf8.DecodeRuneInString(s[i:])
		if c == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if c == '\u2028' || c == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[c&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// plainWord reports whether all eight bytes of w (len 8) are plainASCII:
// none is a control character, '"', '\\' or outside ASCII. It tests the
// word at once with the "has a byte less than n" and "has a zero byte" bit
// tricks, which may flag a plain byte after a flagged one but never miss
// one: a false answer only sends the word through the byte loop.
func plainWord(w string) bool {
	x := uint64(w[0]) | uint64(w[1])<<8 | uint64(w[2])<<16 | uint64(w[3])<<24 |
		uint64(w[4])<<32 | uint64(w[5])<<40 | uint64(w[6])<<48 | uint64(w[7])<<56
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	control := (x - 0x20*ones) &^ x                 // high bit set where a byte < 0x20 (or >= 0x80)
	quote, backslash := x^('"'*ones), x^('\\'*ones) // zero bytes where '"' or '\\'
	return (x|control|(quote-ones)&^quote|(backslash-ones)&^backslash)&highs == 0
}
