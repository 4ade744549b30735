package config

import (
	"strconv"
	"strings"
)

// Position is a place in a config file, 1-based.
type Position struct {
	Line, Col int
}

// keyIndex maps every key and table header of a TOML document to where it
// was written. BurntSushi/toml keeps key positions private, and the positions
// it does report for arrays of tables point at the last [[route]] rather than
// the one at fault, so postern scans the text itself. Paths carry the index
// of each array-of-tables element: "route.1.endpoint".
//
// The scanner only needs to find keys in a document the TOML parser has
// already accepted, so it can be forgiving: it skips values, including
// multi-line strings, arrays and inline tables, without judging them.
type keyIndex map[string]Position

func indexKeys(src string) keyIndex {
	idx := keyIndex{}
	counts := map[string]int{} // array-of-tables path (no indices) -> elements seen
	var table []string         // current table path, with indices
	lines := strings.Split(src, "\n")
	for i := 0; i < len(lines); i++ {
		line := lines[i]
		trimmed := strings.TrimLeft(line, " \t")
		col := len(line) - len(trimmed) + 1
		switch {
		case trimmed == "" || trimmed[0] == '#':
			continue
		case strings.HasPrefix(trimmed, "[["):
			keys, _ := scanKey(trimmed[2:])
			plain := strings.Join(keys, ".")
			counts[plain]++
			table = withIndices(keys, counts, true)
			setOnce(idx, strings.Join(table, "."), Position{i + 1, col})
		case trimmed[0] == '[':
			keys, _ := scanKey(trimmed[1:])
			table = withIndices(keys, counts, false)
			setOnce(idx, strings.Join(table, "."), Position{i + 1, col})
		default:
			keys, rest := scanKey(trimmed)
			if len(keys) == 0 {
				continue
			}
			path := append(append([]string{}, table...), keys...)
			setOnce(idx, strings.Join(path, "."), Position{i + 1, col})
			// Skip the continuation lines of a multi-line value.
			rest = strings.TrimLeft(strings.TrimPrefix(strings.TrimLeft(rest, " \t"), "="), " \t")
			i += valueExtraLines(rest, lines[i+1:])
		}
	}
	return idx
}

func setOnce(idx keyIndex, k string, p Position) {
	if _, ok := idx[k]; !ok {
		idx[k] = p
	}
}

// withIndices inserts the current element index after every prefix of keys
// that names an array of tables. For a [[header]] the last component gets the
// index of the element just opened.
func withIndices(keys []string, counts map[string]int, isArray bool) []string {
	var out []string
	for n := range keys {
		out = append(out, keys[n])
		plain := strings.Join(keys[:n+1], ".")
		if c, ok := counts[plain]; ok && (n < len(keys)-1 || isArray) {
			out = append(out, strconv.Itoa(c-1))
		}
	}
	return out
}

// scanKey reads a dotted key (bare or quoted parts) and returns its parts and
// the text after it.
func scanKey(s string) ([]string, string) {
	var keys []string
	for {
		s = strings.TrimLeft(s, " \t")
		if s == "" {
			return keys, s
		}
		switch s[0] {
		case '"', '\'':
			end := strings.IndexByte(s[1:], s[0])
			if end < 0 {
				return keys, ""
			}
			k := s[1 : end+1]
			if s[0] == '"' {
				if u, err := strconv.Unquote(s[:end+2]); err == nil {
					k = u
				}
			}
			keys = append(keys, k)
			s = s[end+2:]
		default:
			n := 0
			for n < len(s) && isBareKeyChar(s[n]) {
				n++
			}
			if n == 0 {
				return keys, s
			}
			keys = append(keys, s[:n])
			s = s[n:]
		}
		s = strings.TrimLeft(s, " \t")
		if s == "" || s[0] != '.' {
			return keys, s
		}
		s = s[1:]
	}
}

func isBareKeyChar(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-'
}

// valueExtraLines reports how many of the following lines belong to a value
// that starts with first: open brackets/braces or a multi-line string.
func valueExtraLines(first string, next []string) int {
	for _, q := range []string{`"""`, `'''`} {
		if strings.HasPrefix(first, q) {
			if strings.Contains(first[3:], q) {
				return 0
			}
			for n, l := range next {
				if strings.Contains(l, q) {
					return n + 1
				}
			}
			return len(next)
		}
	}
	depth := bracketDepth(first)
	n := 0
	for depth > 0 && n < len(next) {
		depth += bracketDepth(next[n])
		n++
	}
	return n
}

// bracketDepth counts unbalanced [ and { outside strings and comments.
func bracketDepth(s string) int {
	depth := 0
	var quote byte
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case quote != 0:
			if c == '\\' && quote == '"' {
				i++
			} else if c == quote {
				quote = 0
			}
		case c == '"' || c == '\'':
			quote = c
		case c == '#':
			return depth
		case c == '[' || c == '{':
			depth++
		case c == ']' || c == '}':
			depth--
		}
	}
	return depth
}
