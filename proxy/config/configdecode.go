package config

import (
	"encoding"
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/BurntSushi/toml"
)

// decode fills fc from src one key at a time, so that every wrong type in
// the file is reported in one run. BurntSushi/toml's Decode stops at the
// first value it cannot store; here the document is first parsed into
// toml.Primitive values (which can fail only on syntax), and then each key
// is decoded on its own into its field. A key that fails is recorded as a
// problem at its own line, its field stays zero, and decoding goes on.
//
// Keys that name no field are skipped: checkKeys reports them, with a
// "did you mean" hint. The second result is false when src is not TOML at
// all; the parser stops at the first syntax error, so that is all there is
// to report.
func (v *validator) decode(src string, fc *fileConfig) (toml.MetaData, bool) {
	var top map[string]toml.Primitive
	md, err := toml.Decode(src, &top)
	if err != nil {
		var pe toml.ParseError
		if errors.As(err, &pe) {
			v.problems = append(v.problems, Problem{Pos: Position{pe.Position.Line, pe.Position.Col}, Msg: pe.Message})
		} else {
			v.problems = append(v.problems, Problem{Msg: err.Error()})
		}
		return md, false
	}
	v.decodeTable(&md, top, reflect.ValueOf(fc).Elem(), nil)
	return md, true
}

var textUnmarshalerType = reflect.TypeFor[encoding.TextUnmarshaler]()

// isTable reports whether values of t are decoded key by key (a struct that
// is a TOML table) rather than whole (a scalar, a list, a map, or a type
// that parses its own text, such as Duration or Secret).
func isTable(t reflect.Type) bool {
	return t.Kind() == reflect.Struct && !reflect.PointerTo(t).Implements(textUnmarshalerType)
}

// decodeTable stores each of keys into the struct dst. path is where dst
// sits in the document, with the index of each [[array]] element.
func (v *validator) decodeTable(md *toml.MetaData, keys map[string]toml.Primitive, dst reflect.Value, path []string) {
	for k, prim := range keys {
		f, ok := fieldByTag(dst.Type(), k)
		if !ok {
			continue // unknown: checkKeys reports it
		}
		fv := dst.FieldByIndex(f.Index)
		kp := append(slices.Clip(path), k)
		switch {
		case isTable(f.Type):
			if sub, ok := v.subTable(md, prim, kp); ok {
				v.decodeTable(md, sub, fv, kp)
			}
		case f.Type.Kind() == reflect.Slice && isTable(f.Type.Elem()):
			var elems []toml.Primitive
			if err := md.PrimitiveDecode(prim, &elems); err != nil {
				v.typeError(kp, err)
				continue
			}
			fv.Set(reflect.MakeSlice(f.Type, len(elems), len(elems)))
			for i, e := range elems {
				ep := append(slices.Clip(kp), strconv.Itoa(i))
				if sub, ok := v.subTable(md, e, ep); ok {
					v.decodeTable(md, sub, fv.Index(i), ep)
				}
			}
		default:
			if err := md.PrimitiveDecode(prim, fv.Addr().Interface()); err != nil {
				fv.SetZero() // a half-decoded list or map must not be validated
				v.typeError(kp, err)
			}
		}
	}
}

// subTable returns the keys of the table prim, or records a type error
// when prim is not a table. (The decoder itself quietly decodes a plain
// value into an empty table, so the type is checked here.)
func (v *validator) subTable(md *toml.MetaData, prim toml.Primitive, path []string) (map[string]toml.Primitive, bool) {
	var raw any
	if err := md.PrimitiveDecode(prim, &raw); err != nil {
		v.typeError(path, err)
		return nil, false
	}
	if _, ok := raw.(map[string]any); !ok {
		v.typeError(path, fmt.Errorf("incompatible types: TOML value has type %s; destination has type map", goTypeName(raw)))
		return nil, false
	}
	var sub map[string]toml.Primitive
	if err := md.PrimitiveDecode(prim, &sub); err != nil {
		v.typeError(path, err)
		return nil, false
	}
	return sub, true
}

// goTypeName names the Go type of a decoded TOML value as the decoder's
// own messages do.
func goTypeName(raw any) string {
	return strings.ReplaceAll(fmt.Sprintf("%T", raw), "interface {}", "any")
}

// fieldByTag finds the field of struct t, promoted fields included, whose
// toml tag is exactly key.
func fieldByTag(t reflect.Type, key string) (reflect.StructField, bool) {
	for _, f := range reflect.VisibleFields(t) {
		if f.Anonymous || !f.IsExported() {
			continue
		}
		if strings.Split(f.Tag.Get("toml"), ",")[0] == key {
			return f, true
		}
	}
	return reflect.StructField{}, false
}

// typeError records that the value at path (with array indices, e.g.
// ["route", "1", "max_recipients"]) could not be stored, and remembers the
// path so that validation does not pile a second, misleading problem on
// the same key (such as "provider is required" after `provider = 5`).
func (v *validator) typeError(path []string, err error) {
	indexed := strings.Join(path, ".")
	v.badTypes = append(v.badTypes, indexed)
	var plain []string
	for _, p := range path {
		if _, err := strconv.Atoi(p); err != nil {
			plain = append(plain, p)
		}
	}
	v.problems = append(v.problems, Problem{Pos: v.pos(indexed), Msg: strings.Join(plain, ".") + ": " + decodeMessage(err)})
}

// hadTypeError reports whether path, or a table holding it, failed to decode.
func (v *validator) hadTypeError(path string) bool {
	return slices.ContainsFunc(v.badTypes, func(b string) bool { return path == b || strings.HasPrefix(path, b+".") })
}

// decodeErrRE matches the decoder's plain type errors:
// `toml: line 2 (last key "trust.aia"): incompatible types: ...`.
var (
	decodeErrRE    = regexp.MustCompile(`^toml: (?:line \d+ )?\(last key "[^"]*"\): (.*)$`)
	incompatibleRE = regexp.MustCompile(`^incompatible types: TOML value has type (.+); destination has type (.+)$`)
)

// decodeMessage says what was wrong with a value, in TOML's words rather
// than Go's: `wrong type: the value is a string, want a boolean`.
func decodeMessage(err error) string {
	var pe toml.ParseError
	if errors.As(err, &pe) {
		return pe.Message // from the value's own parser, e.g. an invalid duration
	}
	msg := err.Error()
	if m := decodeErrRE.FindStringSubmatch(msg); m != nil {
		msg = m[1]
	}
	if m := incompatibleRE.FindStringSubmatch(msg); m != nil {
		return fmt.Sprintf("wrong type: the value is %s, want %s", tomlTypeName(m[1]), tomlTypeName(m[2]))
	}
	return msg
}

// tomlTypeName turns the decoder's Go type names into TOML's, with an
// article.
func tomlTypeName(goType string) string {
	switch goType {
	case "string":
		return "a string"
	case "int64", "integer":
		return "an integer"
	case "float64", "float":
		return "a float"
	case "bool", "boolean":
		return "a boolean"
	case "map[string]any", "map":
		return "a table"
	case "[]map[string]any":
		return "an array of tables"
	case "[]any", "slice", "array":
		return "an array"
	case "time.Time", "datetime":
		return "a date-time"
	}
	return goType
}
