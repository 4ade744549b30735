package config

import (
	"fmt"
	"reflect"
	"slices"
	"strings"

	"github.com/BurntSushi/toml"
)

// checkKeys rejects every key that does not name a field exactly. The TOML
// decoder alone is not enough: it leaves unknown keys in Undecoded, and it
// matches field names case-insensitively, so "TOKEN" would quietly fill
// token. Keys are compared with the struct tags, case-sensitively.
func (v *validator) checkKeys(md toml.MetaData) {
	counts := map[string]int{}
	var unknown []string
	for _, key := range md.Keys() {
		plain := strings.Join(key, ".")
		if md.Type(key...) == "ArrayHash" {
			counts[plain]++
		}
		if slices.ContainsFunc(unknown, func(u string) bool { return strings.HasPrefix(plain, u+".") }) {
			continue // already reported its table
		}
		if ok, known := keyKnown(reflect.TypeFor[fileConfig](), key); !ok {
			path := strings.Join(withIndices(key, counts, false), ".")
			if md.Type(key...) == "ArrayHash" {
				path = strings.Join(withIndices(key, counts, true), ".")
			}
			msg := fmt.Sprintf("unknown key %q", plain)
			if known != "" {
				msg += fmt.Sprintf(" (did you mean %q?)", known)
			}
			v.at(path, "%s", msg)
			unknown = append(unknown, plain)
		}
	}
}

// keyKnown walks key through t by exact toml tag. When the last step fails
// it also returns a known key that differs only in case or by one typo
// class, to help the operator.
func keyKnown(t reflect.Type, key []string) (bool, string) {
	for _, k := range key {
		for t.Kind() == reflect.Slice || t.Kind() == reflect.Pointer {
			t = t.Elem()
		}
		switch t.Kind() {
		case reflect.Map:
			t = t.Elem()
			continue
		case reflect.Struct:
		default:
			return false, "" // a key below a plain value
		}
		if _, ok := reflect.PointerTo(t).MethodByName("UnmarshalText"); ok {
			return false, ""
		}
		found := false
		var near string
		for _, f := range reflect.VisibleFields(t) {
			if f.Anonymous {
				continue // its fields are promoted and visited themselves
			}
			tag := strings.Split(f.Tag.Get("toml"), ",")[0]
			if tag == k {
				t, found = f.Type, true
				break
			}
			if tag != "" && editDistance(strings.ToLower(tag), strings.ToLower(k)) <= 2 {
				near = tag
			}
		}
		if !found {
			return false, near
		}
	}
	return true, ""
}

// editDistance is the Levenshtein distance, for "did you mean" hints.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}
