package rewrite

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"unicode/utf8"
)

// Provider replies are small JSON documents of a known shape. Decoding
// them with encoding/json costs reflection, a validation pass and a second
// scan for every field with its own UnmarshalJSON; these readers walk the
// document once and fill the same structs, calling the same UnmarshalJSON
// methods on the same bytes. They only take documents whose meaning is
// plain: strictly valid JSON, an object at the top, each known key exactly
// once and spelled exactly, the expected kind of value (object, array or
// null) where the struct has a struct, pointer or slice. Anything else —
// a key that differs from a field name only in case (encoding/json would
// take it), a repeated key (it would merge), a string key with escapes, a
// type mismatch, a syntax error — is handed to encoding/json, which
// decides as it always did. FuzzReplyDecodeSameAsJSON holds the two to
// the same result.

// maxFastDepth bounds the nesting the fast reader follows; deeper
// documents go to encoding/json.
const maxFastDepth = 32

// jsonReader walks one document. ok turns false at the first thing it does
// not decide.
type jsonReader struct {
	b  []byte
	i  int
	ok bool
}

func (r *jsonReader) fail() bool { r.ok = false; return false }

func (r *jsonReader) ws() {
	for r.i < len(r.b) {
		switch r.b[r.i] {
		case ' ', '\t', '\n', '\r':
			r.i++
		default:
			return
		}
	}
}

// peek returns the next byte after white space, 0 at the end.
func (r *jsonReader) peek() byte {
	r.ws()
	if r.i < len(r.b) {
		return r.b[r.i]
	}
	return 0
}

// expect consumes c after white space.
func (r *jsonReader) expect(c byte) bool {
	if r.peek() != c {
		return r.fail()
	}
	r.i++
	return true
}

// value skips one value and returns its bytes.
func (r *jsonReader) value(depth int) []byte {
	if depth > maxFastDepth {
		r.fail()
		return nil
	}
	c := r.peek()
	start := r.i
	switch {
	case c == '{':
		r.i++
		if r.peek() == '}' {
			r.i++
			break
		}
		for r.ok {
			if r.peek() != '"' {
				r.fail()
				break
			}
			r.str()
			r.expect(':')
			r.value(depth + 1)
			if r.peek() == ',' {
				r.i++
				continue
			}
			r.expect('}')
			break
		}
	case c == '[':
		r.i++
		if r.peek() == ']' {
			r.i++
			break
		}
		for r.ok {
			r.value(depth + 1)
			if r.peek() == ',' {
				r.i++
				continue
			}
			r.expect(']')
			break
		}
	case c == '"':
		r.str()
	case c == 't':
		r.literal("true")
	case c == 'f':
		r.literal("false")
	case c == 'n':
		r.literal("null")
	case c == '-' || c >= '0' && c <= '9':
		r.number()
	default:
		r.fail()
	}
	if !r.ok {
		return nil
	}
	return r.b[start:r.i]
}

func (r *jsonReader) literal(lit string) {
	if !bytes.HasPrefix(r.b[r.i:], []byte(lit)) {
		r.fail()
		return
	}
	r.i += len(lit)
}

// str skips a string: escapes as JSON defines them, no raw control
// characters; any other byte is data (encoding/json too accepts invalid
// UTF-8 there). It reports whether the string held an escape.
func (r *jsonReader) str() (escaped bool) {
	r.i++ // the opening quote
	for r.i < len(r.b) {
		// Eight bytes at a time while none is a quote, a backslash or
		// a control character: most of a reply is plain text.
		b, i := r.b, r.i
		for i+8 <= len(b) && plainWord(binary.LittleEndian.Uint64(b[i:])) {
			i += 8
		}
		r.i = i
		if r.i >= len(r.b) {
			break
		}
		c := r.b[r.i]
		switch {
		case c == '"':
			r.i++
			return escaped
		case c < 0x20:
			r.fail()
			return escaped
		case c == '\\':
			escaped = true
			if r.i+1 >= len(r.b) {
				r.fail()
				return escaped
			}
			switch r.b[r.i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				r.i += 2
			case 'u':
				if r.i+5 >= len(r.b) || !isHex(r.b[r.i+2]) || !isHex(r.b[r.i+3]) || !isHex(r.b[r.i+4]) || !isHex(r.b[r.i+5]) {
					r.fail()
					return escaped
				}
				r.i += 6
			default:
				r.fail()
				return escaped
			}
		default:
			r.i++
		}
	}
	r.fail()
	return escaped
}

// plainWord reports whether none of the eight bytes of w is a quote, a
// backslash or below 0x20: for each, a byte of x is zero exactly when the
// byte of w is the one sought (the usual "has a zero byte" test, exact in
// whether any byte matches), and w's bytes below 0x20 are found the same
// way.
func plainWord(w uint64) bool {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	quote, backslash := w^(ones*'"'), w^(ones*'\\')
	return ((quote-ones)&^quote|(backslash-ones)&^backslash|(w-ones*0x20)&^w)&highs == 0
}

// number skips a number in JSON's grammar:
// -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func (r *jsonReader) number() {
	b := r.b
	digits := func() bool {
		start := r.i
		for r.i < len(b) && b[r.i] >= '0' && b[r.i] <= '9' {
			r.i++
		}
		return r.i > start
	}
	if b[r.i] == '-' {
		r.i++
	}
	switch {
	case r.i < len(b) && b[r.i] == '0':
		r.i++
	case !digits():
		r.fail()
		return
	}
	if r.i < len(b) && b[r.i] == '.' {
		r.i++
		if !digits() {
			r.fail()
			return
		}
	}
	if r.i < len(b) && (b[r.i] == 'e' || b[r.i] == 'E') {
		r.i++
		if r.i < len(b) && (b[r.i] == '+' || b[r.i] == '-') {
			r.i++
		}
		if !digits() {
			r.fail()
		}
	}
}

// key reads an object key, which must be a string without escapes.
func (r *jsonReader) key() []byte {
	if r.peek() != '"' {
		r.fail()
		return nil
	}
	start := r.i + 1
	if r.str() {
		r.fail() // an escaped key needs decoding before matching
	}
	if !r.ok {
		return nil
	}
	return r.b[start : r.i-1]
}

// fields reads an object whose known keys are names: field(k) is called
// with the index of each known key, once each, positioned at its value,
// and must consume it; unknown keys' values are skipped. A repeated known
// key, or an unknown one that encoding/json would match to a name
// regardless of case, stops the reader.
func (r *jsonReader) fields(depth int, names []string, field func(k int) bool) {
	if depth > maxFastDepth || !r.expect('{') {
		r.fail()
		return
	}
	if r.peek() == '}' {
		r.i++
		return
	}
	var seen uint64
	for r.ok {
		key := r.key()
		if !r.expect(':') {
			return
		}
		k := -1
		// The names are ASCII: an ASCII key of another length cannot
		// equal one in any case.
		ascii := true
		for _, c := range key {
			if c >= utf8.RuneSelf {
				ascii = false
				break
			}
		}
		for j, name := range names {
			if string(key) == name {
				k = j
				break
			}
			if (!ascii || len(key) == len(name)) && bytes.EqualFold(key, []byte(name)) {
				r.fail()
				return
			}
		}
		switch {
		case k < 0:
			r.value(depth + 1)
		case seen&(1<<k) != 0:
			r.fail()
			return
		default:
			seen |= 1 << k
			r.ws()
			if !field(k) {
				r.fail()
				return
			}
		}
		if !r.ok {
			return
		}
		if r.peek() == ',' {
			r.i++
			continue
		}
		r.expect('}')
		return
	}
}

// The decode functions hand the next value's bytes to the field's
// UnmarshalJSON, as encoding/json would. (One per type, not one through an
// interface, so that the entries can stay on the caller's stack.)

func (r *jsonReader) decodeString(depth int, f *flexString) bool {
	v := r.value(depth)
	return r.ok && f.UnmarshalJSON(v) == nil
}

func (r *jsonReader) decodeBool(depth int, f *flexBool) bool {
	v := r.value(depth)
	return r.ok && f.UnmarshalJSON(v) == nil
}

func (r *jsonReader) decodeFault(depth int, f *clickatellFault) bool {
	v := r.value(depth)
	return r.ok && f.UnmarshalJSON(v) == nil
}

// decodeRecipient is decodeString for a "to": a plain string literal equal
// to one of recipients is that recipient (the same text, no copy).
func (r *jsonReader) decodeRecipient(depth int, to *flexString, recipients []string) bool {
	v := r.value(depth)
	if !r.ok {
		return false
	}
	if len(v) >= 2 && v[0] == '"' {
		if n, ok := knownRecipient(v[1:len(v)-1], recipients); ok {
			*to = flexString(n)
			return true
		}
	}
	return to.UnmarshalJSON(v) == nil
}

// isNull consumes a null.
func (r *jsonReader) isNull() bool {
	if r.peek() == 'n' {
		r.literal("null")
		return r.ok
	}
	return false
}

// end checks that only white space follows the document.
func (r *jsonReader) end() bool {
	r.ws()
	return r.ok && r.i == len(r.b)
}

var (
	clickatellReplyKeys = []string{"data", "messages", "error", "errorCode", "errorDescription"}
	clickatellDataKeys  = []string{"message"}
	clickatellEntryKeys = []string{"accepted", "apiMessageId", "to", "error", "errorCode", "errorDescription"}
	twilioReplyKeys     = []string{"sid", "status", "error_code", "error_message", "code", "message"}
)

// decodeClickatellReply is json.Unmarshal(b, &body) for a zero body, with
// body.Messages returned apart (messages) and left nil in body, so that
// the entries can stay on the caller's stack: they are appended to spare.
// An entry's "to" that is one of the strings in recipients is that
// string, not a copy.
func decodeClickatellReply(b []byte, recipients []string, spare []clickatellEntry) (body clickatellReply, messages []clickatellEntry, err error) {
	if id, to, ok := oneAccepted(b); ok {
		if spare == nil {
			spare = make([]clickatellEntry, 0, 1)
		}
		return body, append(spare, clickatellEntry{
			Accepted:     flexBool{val: true, set: true},
			APIMessageID: flexString(id),
			To:           flexString(recipientOr(to, recipients)),
		}), nil
	}
	r := jsonReader{b: b, ok: true}
	r.fields(0, clickatellReplyKeys, func(k int) bool {
		switch k {
		case 0:
			if r.isNull() {
				return true
			}
			body.Data = &struct {
				Message []clickatellEntry `json:"message"`
			}{}
			r.fields(1, clickatellDataKeys, func(int) bool {
				body.Data.Message = r.entries(2, recipients, nil)
				return r.ok
			})
			return r.ok
		case 1:
			messages = r.entries(1, recipients, spare)
			return r.ok
		case 2:
			return r.decodeFault(1, &body.Error)
		case 3:
			return r.decodeString(1, &body.ErrorCode)
		default:
			return r.decodeString(1, &body.ErrorDescription)
		}
	})
	if !r.end() {
		var slow clickatellReply
		err := json.Unmarshal(b, &slow)
		messages, slow.Messages = slow.Messages, nil
		return slow, messages, err
	}
	return body, messages, nil
}

// The One API's reply for one message it accepted, as its documentation
// gives it, to the byte: {"messages":[{"apiMessageId":"…","accepted":true,
// "to":"…","error":null}],"error":null}.
const (
	oneAcceptedHead = `{"messages":[{"apiMessageId":"`
	oneAcceptedMid  = `","accepted":true,"to":"`
	oneAcceptedTail = `","error":null}],"error":null}`
)

// oneAccepted reads the One API's reply for one accepted message by
// comparison, when b is exactly that (white space may follow) and its id
// and recipient are printable ASCII without escapes, so that their bytes
// are their text. Any other document is the reader's.
func oneAccepted(b []byte) (id, to []byte, ok bool) {
	rest, ok := bytes.CutPrefix(b, []byte(oneAcceptedHead))
	if !ok {
		return nil, nil, false
	}
	if id, rest, ok = plainASCIIString(rest); !ok {
		return nil, nil, false
	}
	if rest, ok = bytes.CutPrefix(rest, []byte(oneAcceptedMid)); !ok {
		return nil, nil, false
	}
	if to, rest, ok = plainASCIIString(rest); !ok {
		return nil, nil, false
	}
	if rest, ok = bytes.CutPrefix(rest, []byte(oneAcceptedTail)); !ok {
		return nil, nil, false
	}
	for _, c := range rest {
		if c != ' ' && c != '\t' && c != '\n' && c != '\r' {
			return nil, nil, false
		}
	}
	return id, to, true
}

// plainASCIIString cuts b at its first quote: s is what comes before it,
// rest starts with it. ok is false when there is no quote or s has a byte
// outside printable ASCII or a backslash.
func plainASCIIString(b []byte) (s, rest []byte, ok bool) {
	for i, c := range b {
		switch {
		case c == '"':
			return b[:i], b[i:], true
		case c < 0x20 || c > 0x7e || c == '\\':
			return nil, nil, false
		}
	}
	return nil, nil, false
}

// recipientOr is to as a string: the recipient it equals, if one does (no
// copy), else a copy.
func recipientOr(to []byte, recipients []string) string {
	if n, ok := knownRecipient(to, recipients); ok {
		return n
	}
	return string(to)
}

// knownRecipient is the one of recipients that to's bytes spell, if any.
func knownRecipient(to []byte, recipients []string) (string, bool) {
	for _, n := range recipients {
		if string(to) == n {
			return n, true
		}
	}
	return "", false
}

// entries reads null or an array of entry objects, appended to list (a new
// one when nil).
func (r *jsonReader) entries(depth int, recipients []string, list []clickatellEntry) []clickatellEntry {
	if r.isNull() {
		return nil
	}
	if !r.expect('[') {
		return nil
	}
	if list == nil {
		list = make([]clickatellEntry, 0, 1)
	}
	if r.peek() == ']' {
		r.i++
		return list
	}
	for r.ok {
		list = append(list, clickatellEntry{})
		e := &list[len(list)-1]
		r.fields(depth+1, clickatellEntryKeys, func(k int) bool {
			switch k {
			case 0:
				return r.decodeBool(depth+2, &e.Accepted)
			case 1:
				return r.decodeString(depth+2, &e.APIMessageID)
			case 2:
				return r.decodeRecipient(depth+2, &e.To, recipients)
			case 3:
				return r.decodeFault(depth+2, &e.Error)
			case 4:
				return r.decodeString(depth+2, &e.ErrorCode)
			default:
				return r.decodeString(depth+2, &e.ErrorDescription)
			}
		})
		if r.peek() == ',' {
			r.i++
			continue
		}
		r.expect(']')
		break
	}
	return list
}

// decodeTwilioReply is json.Unmarshal(b, &body) for a zero body.
func decodeTwilioReply(b []byte) (twilioReply, error) {
	var body twilioReply
	r := jsonReader{b: b, ok: true}
	fields := [...]*flexString{&body.SID, &body.Status, &body.ErrorCode, &body.ErrorMessage, &body.Code, &body.Message}
	r.fields(0, twilioReplyKeys, func(k int) bool { return r.decodeString(1, fields[k]) })
	if !r.end() {
		var slow twilioReply
		err := json.Unmarshal(b, &slow)
		return slow, err
	}
	return body, nil
}
