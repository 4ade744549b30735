package rewrite

import (
	"encoding/json"
	"testing"
)

// FuzzJSONString: jsonString, the decoder's shortcut for plain string
// literals, answers exactly what encoding/json answers for any input —
// the same string, and an error whenever encoding/json has one.
func FuzzJSONString(f *testing.F) {
	for _, s := range []string{`"a55b8f8d56f33440e993aa614c68bf8b"`, `""`, `"001"`, `"Invalid destination address."`,
		`"caf\u00e9"`, `"tab\there"`, `"quote\"d"`, `"back\\slash"`, `"a"b"`, `"unterminated`, `"`, `x"`, "\"\xff\xfe\"",
		"\"ctl\x01\"", `"é"`, `"😀"`, `"\ud800"`, `null`, `"a" `} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		got, gotErr := jsonString(b)
		var want string
		wantErr := json.Unmarshal(b, &want)
		if (gotErr != nil) != (wantErr != nil) || got != want {
			t.Fatalf("jsonString(%q) = %q, %v; encoding/json: %q, %v", b, got, gotErr, want, wantErr)
		}
	})
}
