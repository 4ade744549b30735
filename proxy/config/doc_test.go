package config

import (
	"github.com/postern/postern/internal/testtool"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// configDoc is the config reference; every key postern accepts is there.
const configDoc = "../../docs/configuration.md"

var (
	// "### `[server]`", "### `[[route]]` (one or more; ...)"
	tableHeading = regexp.MustCompile("^#{2,6} `\\[\\[?([a-z_.]+)\\]\\]?`")
	// a key as a table row's first cell names it: `listen`, or several:
	// `cert_file`, `key_file`
	keyToken = regexp.MustCompile("`([a-z0-9_]+)`")
)

// documentedKeys reads docs/configuration.md into the keys each TOML
// table's section lists in its table's first column, by table name
// ("server", "route", "trust.pins"). A section starts at a heading that
// names a table and ends at the next heading.
func documentedKeys(t *testing.T, doc string) map[string][]string {
	t.Helper()
	sections := map[string][]string{}
	table, fence := "", false
	for _, line := range strings.Split(doc, "\n") {
		if strings.HasPrefix(line, "```") {
			fence = !fence
		}
		if fence {
			continue
		}
		if strings.HasPrefix(line, "#") {
			table = ""
			if m := tableHeading.FindStringSubmatch(line); m != nil {
				table = m[1]
				if _, dup := sections[table]; dup {
					t.Errorf("%s has two sections for [%s]", configDoc, table)
				}
				sections[table] = []string{}
			}
			continue
		}
		if table == "" || !strings.HasPrefix(line, "| ") {
			continue
		}
		first, _, _ := strings.Cut(strings.TrimPrefix(line, "| "), " | ")
		for _, m := range keyToken.FindAllStringSubmatch(first, -1) {
			sections[table] = append(sections[table], m[1])
		}
	}
	return sections
}

// configKeys walks the config file types by reflection, as the decoder
// does, into the keys of each table (by table name) and the names of the
// tables whose keys are the operator's own (maps such as [trust.pins]).
func configKeys(documented map[string][]string) (keys map[string][]string, open []string) {
	keys = map[string][]string{}
	var walk func(table string, typ reflect.Type)
	walk = func(table string, typ reflect.Type) {
		keys[table] = []string{}
		for _, f := range reflect.VisibleFields(typ) {
			if f.Anonymous {
				continue
			}
			key := strings.Split(f.Tag.Get("toml"), ",")[0]
			if key == "" || key == "-" {
				continue
			}
			path := strings.TrimPrefix(table+"."+key, ".")
			ft := f.Type
			for ft.Kind() == reflect.Slice || ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			_, textual := reflect.PointerTo(ft).MethodByName("UnmarshalText")
			switch {
			case ft.Kind() == reflect.Struct && !textual:
				walk(path, ft)
			case ft.Kind() == reflect.Map && documented[path] != nil:
				// A table of the operator's own keys, e.g. [trust.pins];
				// a map without a section of its own is a key whose value
				// is an inline table, e.g. a route's headers.
				open = append(open, path)
			default:
				keys[table] = append(keys[table], key)
			}
		}
	}
	walk("", reflect.TypeFor[fileConfig]())
	return keys, open
}

// TestEveryConfigKeyIsDocumented: docs/configuration.md has a section for
// every TOML table postern reads ("### `[server]`", "### `[[route]]`"),
// and every key of a table is in the first column of the table in that
// table's own section. A key documented under another table fails (as
// admin_listen and shutdown_grace once sat under [audit]), and so does a
// row for a key the table does not have.
func TestEveryConfigKeyIsDocumented(t *testing.T) {
	src, err := os.ReadFile(configDoc)
	if err != nil {
		t.Fatal(err)
	}
	documented := documentedKeys(t, string(src))
	keys, open := configKeys(documented)
	checkConfigDoc(t, keys, open, documented)
}

// checkConfigDoc reports every difference between the keys postern reads
// and the keys the reference documents, table by table.
func checkConfigDoc(t testing.TB, keys map[string][]string, open []string, documented map[string][]string) {
	t.Helper()
	owner := map[string][]string{} // key → the tables it belongs to
	for table, ks := range keys {
		for _, k := range ks {
			owner[k] = append(owner[k], table)
		}
	}
	for table, ks := range keys {
		if table == "" {
			if len(ks) > 0 {
				t.Errorf("top-level keys %v: %s documents keys only per table", ks, configDoc)
			}
			continue
		}
		doc, ok := documented[table]
		if !ok {
			t.Errorf("table [%s] has no section (\"### `[%s]`\") in %s", table, table, configDoc)
			continue
		}
		for _, k := range ks {
			if !slices.Contains(doc, k) {
				t.Errorf("key %s of [%s] is not in the table of %s's [%s] section", k, table, configDoc, table)
			}
		}
	}
	for table, doc := range documented {
		if slices.Contains(open, table) {
			if len(doc) > 0 {
				t.Errorf("%s's [%s] section lists keys %v, but [%s] takes the operator's own keys", configDoc, table, doc, table)
			}
			continue
		}
		if _, ok := keys[table]; !ok {
			t.Errorf("%s has a section for [%s], which postern does not read", configDoc, table)
			continue
		}
		for _, k := range doc {
			if slices.Contains(keys[table], k) {
				continue
			}
			if where := owner[k]; len(where) > 0 {
				t.Errorf("%s lists %s under [%s], but it is a key of [%s]", configDoc, k, table, strings.Join(where, "], ["))
			} else {
				t.Errorf("%s lists %s under [%s], but postern has no such key", configDoc, k, table)
			}
		}
	}
	for _, table := range open {
		if _, ok := documented[table]; !ok {
			t.Errorf("table [%s] has no section in %s", table, configDoc)
		}
	}
}

// TestConfigDocCheckFails: the check above fails for a key in the wrong
// table (the mistake it was written for), a missing key, a stale key and a
// missing section.
func TestConfigDocCheckFails(t *testing.T) {
	src, err := os.ReadFile(configDoc)
	if err != nil {
		t.Fatal(err)
	}
	good := string(src)
	// Move admin_listen's row from [server] to [audit], where it once was.
	var row string
	for _, line := range strings.Split(good, "\n") {
		if strings.HasPrefix(line, "| `admin_listen`") {
			row = line
		}
	}
	if row == "" {
		t.Fatal("no admin_listen row")
	}
	misplaced := strings.Replace(strings.Replace(good, row+"\n", "", 1), "| `queue` |", row+"\n| `queue` |", 1)
	for name, tc := range map[string]struct{ doc, want string }{
		"key in the wrong table": {misplaced, "lists admin_listen under [audit], but it is a key of [server]"},
		"key missing":            {strings.Replace(good, row+"\n", "", 1), "key admin_listen of [server] is not in the table"},
		"stale key":              {strings.Replace(good, "| `queue` |", "| `no_such_key` | x | x |\n| `queue` |", 1), "lists no_such_key under [audit], but postern has no such key"},
		"section missing":        {strings.Replace(good, "### `[intercept]`", "### Intercept", 1), "table [intercept] has no section"},
	} {
		rec := &testtool.Recorder{TB: t}
		documented := documentedKeys(t, tc.doc)
		keys, open := configKeys(documented)
		checkConfigDoc(rec, keys, open, documented)
		if !slices.ContainsFunc(rec.Errors, func(e string) bool { return strings.Contains(e, tc.want) }) {
			t.Errorf("%s: want an error containing %q, got %q", name, tc.want, rec.Errors)
		}
	}
}
