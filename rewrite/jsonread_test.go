package rewrite

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

// FuzzReplyDecodeSameAsJSON: whatever a provider answers, the reply
// readers fill the same structs as encoding/json and fail exactly when it
// fails.
func FuzzReplyDecodeSameAsJSON(f *testing.F) {
	for _, s := range []string{
		`{"messages":[{"apiMessageId":"a55b8f8d56f33440e993aa614c68bf8b","accepted":true,"to":"15551234567","error":null}],"error":null}`,
		// The One API's accepted reply, which oneAccepted reads by
		// comparison, and its near misses.
		"{\"messages\":[{\"apiMessageId\":\"\",\"accepted\":true,\"to\":\"x\\\\\",\"error\":null}],\"error\":null} \r\n\t",
		`{"messages":[{"apiMessageId":"a\u0035","accepted":true,"to":"1","error":null}],"error":null}`,
		"{\"messages\":[{\"apiMessageId\":\"caf\xc3\xa9\",\"accepted\":true,\"to\":\"1\",\"error\":null}],\"error\":null}",
		"{\"messages\":[{\"apiMessageId\":\"\xff\",\"accepted\":true,\"to\":\"1\",\"error\":null}],\"error\":null}",
		`{"messages":[{"apiMessageId":"a","accepted":true,"to":"1","error":null}],"error":null}x`,
		` {"messages":[{"apiMessageId":"a","accepted":true,"to":"1","error":null}],"error":null}`,
		`{"messages":[{"apiMessageId":"a","accepted":true,"to":"1","error":null}],"error":null`,
		`{"messages":[{"apiMessageId":"a","accepted":true,"to":"1","error":null}],"error":{"code":"1"}}`,
		`{"messages":[{"apiMessageId":"a","accepted":true,"to":"1","error":null}],"error":null,"error":null}`,
		`{"data":{"message":[{"accepted":true,"to":"15551234567","apiMessageId":"x"}]}}`,
		`{"messages":[{"accepted":false,"to":"+447700900123","error":"Invalid destination address."}],"error":null}`,
		`{"error":{"code":43,"description":"Rate limit"},"errorCode":[1],"errorDescription":{}}`,
		`{"error":[null,{"code":"001"}]}`,
		`{"messAges":[{"ACCepted":true}]}`,
		`{"messages":[],"data":null,"x":[1,-0.5e+3,true,false,null,{"a":"\u00e9\n"}]}`,
		`{"messages":[{"to":"1"}],"messages":[{"accepted":"1"}]}`,
		`{"data":{"message":null,"message":[]}} `,
		` {"sid":"SM0123","status":"queued","error_code":null,"subresource_uris":{"media":"/x"},"body":"caf\u00e9 \"q\""}`,
		`{"code":20429,"message":"Too Many Requests","status":429}`,
		`{"s\u0069d":"x"}`, `{"SID":"x"}`, `{"sid":"x"}x`, `{"sid":01}`, `{"sid":"\x01"}`, `[]`, `null`, `"x"`, `{"data":[]}`,
		`{"messages":[null]}`, `{"messages":{}}`, `{"sid":"x",}`, `{"sid":1.}`, `{"sid":-}`, `{"error":tru}`,
	} {
		f.Add([]byte(s))
	}
	for _, dir := range []string{"FuzzProviderRead", "FuzzClickatellRead"} {
		files, _ := filepath.Glob(filepath.Join("testdata", "fuzz", dir, "*"))
		for _, name := range files {
			b, err := os.ReadFile(name)
			if err != nil {
				f.Fatal(err)
			}
			lines := strings.Split(strings.TrimSpace(string(b)), "\n")
			if s, ok := strings.CutPrefix(lines[len(lines)-1], "[]byte("); ok {
				if body, err := strconv.Unquote(strings.TrimSuffix(s, ")")); err == nil {
					f.Add([]byte(body))
				}
			}
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var slow clickatellReply
		serr := json.Unmarshal(b, &slow)
		for _, recipients := range [][]string{nil, {"15551234567", "447700900123", "1", "x\\"}} {
			fast, messages, ferr := decodeClickatellReply(b, recipients, make([]clickatellEntry, 0, len(recipients)))
			if fast.Messages != nil {
				t.Fatalf("clickatell %q: messages left in the body", b)
			}
			fast.Messages = messages
			if (ferr == nil) != (serr == nil) || ferr != nil && ferr.Error() != serr.Error() || !reflect.DeepEqual(fast, slow) {
				t.Fatalf("clickatell %q:\n%+v %v\nencoding/json:\n%+v %v", b, fast, ferr, slow, serr)
			}
		}
		var tslow twilioReply
		tfast, ferr := decodeTwilioReply(b)
		serr = json.Unmarshal(b, &tslow)
		if (ferr == nil) != (serr == nil) || ferr != nil && ferr.Error() != serr.Error() || tfast != tslow {
			t.Fatalf("twilio %q:\n%+v %v\nencoding/json:\n%+v %v", b, tfast, ferr, tslow, serr)
		}
	})
}

// plainWordReference is plainWord byte by byte.
func plainWordReference(w uint64) bool {
	for i := range 8 {
		if c := byte(w >> (8 * i)); c < 0x20 || c == '"' || c == '\\' {
			return false
		}
	}
	return true
}

// TestPlainWord: every byte value in every position, among plain bytes
// and among the other special ones (a borrow from one byte must not hide
// or invent another).
func TestPlainWord(t *testing.T) {
	for _, fill := range []byte{'a', 0x7f, 0x80, 0xff, ' ', 0x1f, '"', '\\', 0x21, 0x5d} {
		for pos := range 8 {
			for c := range 256 {
				var w uint64
				for i := range 8 {
					b := fill
					if i == pos {
						b = byte(c)
					}
					w |= uint64(b) << (8 * i)
				}
				if plainWord(w) != plainWordReference(w) {
					t.Fatalf("plainWord(%#016x) = %v", w, plainWord(w))
				}
			}
		}
	}
}

func FuzzPlainWord(f *testing.F) {
	f.Add(uint64(0x6161616161616161))
	f.Add(uint64(0x2261616161616161))
	f.Fuzz(func(t *testing.T, w uint64) {
		if plainWord(w) != plainWordReference(w) {
			t.Fatalf("plainWord(%#016x) = %v", w, plainWord(w))
		}
	})
}
