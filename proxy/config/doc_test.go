package config

import (
	"os"
	"reflect"
	"strings"
	"testing"
)

// TestEveryConfigKeyIsDocumented: each key postern accepts appears in
// README.md's config reference as `key` in a table row, so a new key cannot
// land undocumented.
func TestEveryConfigKeyIsDocumented(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	ref := string(readme)
	if i := strings.Index(ref, "## Config reference"); i >= 0 {
		ref = ref[i:]
	} else {
		t.Fatal("README.md has no \"## Config reference\" section")
	}
	var walk func(prefix string, typ reflect.Type)
	walk = func(prefix string, typ reflect.Type) {
		for typ.Kind() == reflect.Slice || typ.Kind() == reflect.Pointer {
			typ = typ.Elem()
		}
		if typ.Kind() != reflect.Struct {
			return
		}
		if _, ok := reflect.PointerTo(typ).MethodByName("UnmarshalText"); ok {
			return
		}
		for _, f := range reflect.VisibleFields(typ) {
			if f.Anonymous {
				continue
			}
			key := strings.Split(f.Tag.Get("toml"), ",")[0]
			if key == "" || key == "-" {
				continue
			}
			path := prefix + key
			ft := f.Type
			for ft.Kind() == reflect.Slice || ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			_, textual := reflect.PointerTo(ft).MethodByName("UnmarshalText")
			if ft.Kind() == reflect.Struct && !textual {
				if !strings.Contains(ref, "`["+path+"]`") && !strings.Contains(ref, "`[["+path+"]]`") {
					t.Errorf("table [%s] has no heading in README.md's config reference", path)
				}
				walk(path+".", ft)
				continue
			}
			if ft.Kind() == reflect.Map && strings.Contains(ref, "`["+path+"]`") {
				continue // a table of the operator's own keys, e.g. [trust.pins]
			}
			if !strings.Contains(ref, "| `"+key+"`") && !strings.Contains(ref, ", `"+key+"`") {
				t.Errorf("key %s is not in README.md's config reference", path)
			}
		}
	}
	walk("", reflect.TypeFor[fileConfig]())
}
