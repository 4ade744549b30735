package jsonenc

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
	"time"
)

// stdJSON is s as encoding/json writes it with SetEscapeHTML(false).
func stdJSON(t testing.TB, s string) string {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(s); err != nil {
		t.Fatal(err)
	}
	return strings.TrimSuffix(b.String(), "\n")
}

// slogJSON is s as log/slog's JSON handler writes an attribute's value.
func slogJSON(t testing.TB, s string) string {
	var b bytes.Buffer
	r := slog.NewRecord(time.Time{}, slog.LevelInfo, "", 0)
	r.AddAttrs(slog.String("k", s))
	if err := slog.NewJSONHandler(&b, &slog.HandlerOptions{ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
		if a.Key != "k" {
			return slog.Attr{}
		}
		return a
	}}).Handle(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	return strings.TrimSuffix(strings.TrimPrefix(b.String(), `{"k":`), "}\n")
}

var hostile = []string{
	"", "plain", `He said "hi"`, `C:\temp\new \" \u0041`, "a&b=c<script>", "1+1=2 100% #1",
	"line1\nline2\r\nline3\ttab", "\b\f\x00\x01\x1f\x7f", "Café 🔑 👨‍👩‍👧", "كلمة المرور",
	"sep\u2028para\u2029", "bad \xff\xfe utf8 \xc3", strings.Repeat("long ", 400),
}

// TestSameAsStandardLibrary: both appenders write exactly what the
// encoder they stand in for writes, for hostile strings.
func TestSameAsStandardLibrary(t *testing.T) {
	for _, s := range hostile {
		if got, want := string(AppendString(nil, s)), stdJSON(t, s); got != want {
			t.Errorf("AppendString(%q) = %s, encoding/json %s", s, got, want)
		}
		if got, want := string(AppendSlogString(nil, s)), slogJSON(t, s); got != want {
			t.Errorf("AppendSlogString(%q) = %s, slog %s", s, got, want)
		}
	}
}

func FuzzSameAsStandardLibrary(f *testing.F) {
	for _, s := range hostile {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if got, want := string(AppendString(nil, s)), stdJSON(t, s); got != want {
			t.Errorf("AppendString(%q) = %s, encoding/json %s", s, got, want)
		}
		if got, want := string(AppendSlogString(nil, s)), slogJSON(t, s); got != want {
			t.Errorf("AppendSlogString(%q) = %s, slog %s", s, got, want)
		}
	})
}

// TestStringsSameAsEncodingJSON: lists, nil and empty included, as
// encoding/json writes a []string.
func TestStringsSameAsEncodingJSON(t *testing.T) {
	for _, list := range [][]string{nil, {}, {""}, hostile, {"a", "b"}} {
		var b bytes.Buffer
		enc := json.NewEncoder(&b)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(list); err != nil {
			t.Fatal(err)
		}
		if got, want := string(AppendStrings(nil, list)), strings.TrimSuffix(b.String(), "\n"); got != want {
			t.Errorf("AppendStrings(%q) = %s, encoding/json %s", list, got, want)
		}
	}
}

// TestPlainWordIsPlainASCIIOfEachByte: the word-wide test agrees with the
// byte table for every byte at every position, and for every pair of
// bytes at neighbouring and distant positions (where a borrow from one
// byte could hide or invent another).
func TestPlainWordIsPlainASCIIOfEachByte(t *testing.T) {
	plain := func(w []byte) bool {
		for _, b := range w {
			if b >= 0x80 || !plainASCII[b] {
				return false
			}
		}
		return true
	}
	w := []byte("abcdefgh")
	for pos := range 8 {
		for b := range 256 {
			v := []byte(string(w))
			v[pos] = byte(b)
			if got := plainWord(string(v)); got != plain(v) {
				t.Fatalf("plainWord(%q) = %v", v, got)
			}
		}
	}
	for _, pair := range [][2]int{{0, 1}, {3, 4}, {6, 7}, {0, 7}, {2, 5}} {
		for a := range 256 {
			for b := range 256 {
				v := []byte(string(w))
				v[pair[0]], v[pair[1]] = byte(a), byte(b)
				if got := plainWord(string(v)); got != plain(v) {
					t.Fatalf("plainWord(%q) = %v", v, got)
				}
			}
		}
	}
}

// BenchmarkAppendString: an ASCII text and id (the word-at-a-time path),
// Arabic (byte by byte, one word test per eight bytes) and a hostile mix.
//
//	go test -run='^$' -bench=AppendString ./internal/jsonenc/
func BenchmarkAppendString(b *testing.B) {
	for _, tc := range []struct{ name, s string }{
		{"ascii160", strings.Repeat("Your password is Kx9-", 8)},
		{"id27", "pst0123456789abcdef01234567"},
		{"arabic70", strings.Repeat("كلمة المرور ", 6)},
		{"mixed", "Your password: \"a&b\" \\ <c>\n كلمة 😀 " + strings.Repeat("x", 40)},
	} {
		b.Run(tc.name, func(b *testing.B) {
			buf := make([]byte, 0, 1024)
			b.ReportAllocs()
			for b.Loop() {
				buf = AppendString(buf[:0], tc.s)
			}
		})
	}
}
