package rewrite

import (
	"bytes"
	"encoding/json"
	"strings"
	"unicode/utf8"
)

// flexString decodes a JSON string, number or boolean as its text and
// anything else (null, objects, arrays) as "". Clickatell sends codes both as
// "001" and as 1, and a reply we cannot fully type must still be readable.
type flexString string

func (f *flexString) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	*f = ""
	if len(b) == 0 {
		return nil
	}
	switch c := b[0]; {
	case c == '"':
		s, err := jsonString(b)
		if err != nil {
			return err
		}
		*f = flexString(s)
	case c == '-' || c >= '0' && c <= '9' || c == 't' || c == 'f':
		*f = flexString(b)
	}
	return nil
}

// jsonString decodes the JSON string literal b. Provider replies are mostly
// plain strings (ids, numbers, codes), which need no decoder at all: a
// literal without escapes, quotes or control characters and in valid UTF-8
// means exactly its bytes. Anything else goes to encoding/json, which
// decides errors and replacement characters as before.
func jsonString(b []byte) (string, error) {
	if len(b) >= 2 && b[0] == '"' && b[len(b)-1] == '"' {
		inner := b[1 : len(b)-1]
		plain, ascii := true, true
		for _, c := range inner {
			if c < 0x20 || c == '"' || c == '\\' {
				plain = false
				break
			}
			if c >= utf8.RuneSelf {
				ascii = false
			}
		}
		if plain && (ascii || utf8.Valid(inner)) {
			return string(inner), nil
		}
	}
	var s string
	err := json.Unmarshal(b, &s)
	return s, err
}

// flexBool decodes true/false, "true"/"false" and 1/0; set reports whether
// the field carried a recognisable value at all.
type flexBool struct{ val, set bool }

func (f *flexBool) UnmarshalJSON(b []byte) error {
	var s flexString
	if err := s.UnmarshalJSON(b); err != nil {
		return err
	}
	switch strings.ToLower(string(s)) {
	case "true", "1":
		*f = flexBool{val: true, set: true}
	case "false", "0":
		*f = flexBool{val: false, set: true}
	default:
		*f = flexBool{}
	}
	return nil
}
