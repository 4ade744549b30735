package rewrite

import (
	"bytes"
	"strings"
	"testing"
)

// refEchoedWindows is how cleanID found the echoes of the text in an id
// before issue 13: one bytes.Contains over the folded text per window.
// echoedWindows is held to it.
func refEchoedWindows(mk masker, upper []byte) uint64 {
	var echoes uint64
	for i := 0; i+minTextEcho <= len(upper); i++ {
		if mk.text != nil && bytes.Contains(mk.text, upper[i:i+minTextEcho]) {
			echoes |= 1 << i
		}
	}
	return echoes
}

// readableUpper makes s a readable id (ReadableMessageID), upper-cased as
// cleanID folds it.
func readableUpper(s string) []byte {
	var id []byte
	for i := 0; i < len(s) && len(id) < MaxMessageIDLength; i++ {
		if ReadableMessageID(s[i : i+1]) {
			id = append(id, s[i])
		}
	}
	return bytes.ToUpper(id)
}

var echoCases = []struct{ id, text string }{
	{"a55b8f8d56f33440e993aa614c68bf8b", "Your guest password is Xk7!100000, valid for 24 hours."},
	{"a55b8f8d56f33440e993aa614c68bf8b", "code a55b8 and 68BF8B, then F33440E9"},
	{"SM0123456789abcdef0123456789abcdef", "sm0123 456789 ABCDEF0123"},
	{"guest-password.1", "Your GUEST-PASSWORD.1 is ready"},
	{strings.Repeat("ab", 32), "abababab"},
	{strings.Repeat("a", 64), strings.Repeat("a", 5)},
	{"abcde", "abcd"},
	{"abcde", "xabcdex"},
	{"abcde", "ABCDE"},
	{"abcd", "abcd abcd"},
	{"x:y_z.w-v", "X:Y_Z.W-V"},
	{"kelvin", "\u212Aelvin"}, // the Kelvin sign folds to K
	{"12345", "١٢٣٤٥ 12345"},
	// More of the text's windows than echoedWindows compares one by one
	// (directWindows): the table finds them.
	{"a55b8f8d56f33440e993aa614c68bf8b", "code " + strings.Repeat("0123456789ABCDEF", 4) + " a55b8f8d56"},
	{"12345678901234567890", strings.Repeat("1234567890", 3)},
	// Exactly directWindows of them (20 digits in a row: 16 windows), and one more.
	{"98765432109876543210", "x 98765432109876543210 y"},
	{"98765432109876543210", "x 987654321098765432109 y"},
}

// TestEchoedWindowsSameAsContains: the one pass over the text finds the
// same windows as a search of the text per window.
func TestEchoedWindowsSameAsContains(t *testing.T) {
	for _, tc := range echoCases {
		mk, id := newMasker(tc.text), readableUpper(tc.id)
		if got, want := mk.echoedWindows(id), refEchoedWindows(mk, id); got != want {
			t.Errorf("id %q, text %q: windows %b, want %b", id, tc.text, got, want)
		}
	}
	if mk := newMasker("code a55b8 here"); mk.echoedWindows([]byte("A55B8F8D")) != 1 {
		t.Error("the echo at the start of the id was not found")
	}
}

func FuzzEchoedWindowsSameAsContains(f *testing.F) {
	for _, tc := range echoCases {
		f.Add(tc.id, tc.text)
	}
	f.Fuzz(func(t *testing.T, rawID, text string) {
		text = strings.ToValidUTF8(text, "\uFFFD") // Message.Text is valid UTF-8
		mk := newMasker(text)
		// A random id, and ids made of the text's own bytes (echoes).
		for _, id := range [][]byte{readableUpper(rawID), readableUpper(rawID + text), readableUpper(text + rawID)} {
			if got, want := mk.echoedWindows(id), refEchoedWindows(mk, id); got != want {
				t.Fatalf("id %q, text %q: windows %b, want %b", id, text, got, want)
			}
		}
	})
}
