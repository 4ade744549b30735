package rewrite

import (
	"errors"
	"net/url"
	"strings"
)

// formPair is one k=v of a form-encoded string: the key decoded, the value
// as received. Values are decoded when asked for (form.first), so a
// request costs no copy of the parameters nobody reads (user, password)
// and no map.
type formPair struct {
	key, raw string
}

// form is a form's pairs in the order received. A key may repeat.
type form []formPair

// maxFormPairs sizes the array a request's pairs are collected in without
// allocating: ISE sends 5 to 8 parameters; more only cost an allocation.
const maxFormPairs = 16

var errFormEscape = errors.New("invalid URL escape")

// appendForm splits s into k=v pairs ("+" and "%20" are spaces) and appends
// them to dst. Unlike url.ParseQuery it treats ";" as data, since ISE leaves
// it unescaped in text, and it fails on the first bad escape, in a key or a
// value, instead of dropping the pair — exactly where url.QueryUnescape of
// every key and value would fail.
func appendForm(dst form, s string) (form, error) {
	for s != "" {
		var pair string
		pair, s = cutByte(s, '&')
		if pair == "" {
			continue
		}
		k, v := cutByte(pair, '=')
		if !validEscapes(k) || !validEscapes(v) {
			return nil, errFormEscape
		}
		dst = append(dst, formPair{key: unescapeValid(k), raw: v})
	}
	return dst, nil
}

// cutByte is strings.Cut for a one-byte separator.
func cutByte(s string, sep byte) (before, after string) {
	if i := strings.IndexByte(s, sep); i >= 0 {
		return s[:i], s[i+1:]
	}
	return s, ""
}

// unescapeValid is url.QueryUnescape of a string validEscapes accepted, so
// it cannot fail. It returns s itself, without allocating, when s holds
// neither "%" nor "+".
func unescapeValid(s string) string {
	for i := 0; i < len(s); i++ {
		if s[i] == '%' || s[i] == '+' {
			if len(s) > maxStackUnescape {
				v, _ := url.QueryUnescape(s)
				return v
			}
			// Decoded on the stack in one pass (url.QueryUnescape makes
			// two and grows a strings.Builder byte by byte); the string
			// is the one allocation.
			var buf [maxStackUnescape]byte
			n := copy(buf[:], s[:i])
			for ; i < len(s); i++ {
				c := s[i]
				switch c {
				case '+':
					c = ' '
				case '%':
					c = unhex(s[i+1])<<4 | unhex(s[i+2])
					i += 2
				}
				buf[n] = c
				n++
			}
			return string(buf[:n])
		}
	}
	return s
}

// maxStackUnescape is the longest value unescapeValid decodes on its
// stack: ISE's texts and credentials fit.
const maxStackUnescape = 512

// has reports whether key is present, with any value.
func (f form) has(key string) bool {
	for i := range f {
		if f[i].key == key {
			return true
		}
	}
	return false
}

// hasAny reports whether any of keys is present.
func (f form) hasAny(keys []string) bool {
	for _, k := range keys {
		if f.has(k) {
			return true
		}
	}
	return false
}

// first returns the first non-empty decoded value of key, so an ISE
// template with a stray empty duplicate ("text=&text=...") still works.
func (f form) first(key string) string {
	for i := range f {
		if f[i].key != key || f[i].raw == "" {
			continue
		}
		if v := unescapeValid(f[i].raw); v != "" {
			return v
		}
	}
	return ""
}

// params are a request's parameters: the query's and, for a form POST, the
// body's, which win key by key (the whole list of a key the body names
// replaces the query's).
type params struct {
	query, body form
}

// of is the form that holds key's values.
func (p params) of(key string) form {
	if p.body.has(key) {
		return p.body
	}
	return p.query
}

// first is form.first over the merged parameters.
func (p params) first(key string) string { return p.of(key).first(key) }
