package rewrite

import (
	"bytes"
	"context"
	"github.com/postern/postern/internal/jsonenc"
	"net/http"
	"strconv"
)

// The fixed-shape provider bodies (Clickatell's, Twilio's form) are
// appended byte by byte instead of going through encoding/json's
// reflection or url.Values: the same bytes (FuzzBodiesSameAsEncoders holds
// them to encoding/json and net/url), a tenth of the work. A template
// provider's body, whose shape is the operator's, still goes through
// encoding/json.

// appendJSONString appends s as a JSON string exactly as encoding/json
// writes it with SetEscapeHTML(false) (a password reaches the handset
// unchanged; jsonenc.AppendString).
func appendJSONString(dst []byte, s string) []byte { return jsonenc.AppendString(dst, s) }

// appendJSONField appends `,"key":` (without the comma for the first
// field, first) and the string value.
func appendJSONField(dst []byte, first bool, key, value string) []byte {
	if !first {
		dst = append(dst, ',')
	}
	dst = append(dst, '"')
	dst = append(dst, key...)
	dst = append(dst, '"', ':')
	return appendJSONString(dst, value)
}

// appendJSONInt appends `,"key":n`.
func appendJSONInt(dst []byte, key string, n int) []byte {
	dst = append(dst, ',', '"')
	dst = append(dst, key...)
	dst = append(dst, '"', ':')
	return strconv.AppendInt(dst, int64(n), 10)
}

// jsonSize estimates the encoded length of s, so a body is allocated once:
// escapes are rare, and a longer body only grows.
func jsonSize(s string) int { return len(s) + len(s)/8 + 2 }

// appendQueryEscape appends url.QueryEscape(s): letters, digits and
// "-_.~" as they are, a space as "+", every other byte as %XX.
func appendQueryEscape(dst []byte, s string) []byte {
	const upperHex = "0123456789ABCDEF"
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '-', c == '_', c == '.', c == '~':
			dst = append(dst, c)
		case c == ' ':
			dst = append(dst, '+')
		default:
			dst = append(dst, '%', upperHex[c>>4], upperHex[c&15])
		}
	}
	return dst
}

// fixedHeader is a provider's request header values, made once at start:
// every request's Header map refers to the same one-element slices. They
// are never written to: Header.Set replaces a key's slice and Header.Add
// grows a full one into a new array; net/http only reads them.
type fixedHeader struct {
	contentType, accept, auth []string // auth nil: no Authorization
}

func newFixedHeader(contentType, auth string) fixedHeader {
	h := fixedHeader{contentType: []string{contentType}, accept: []string{"application/json"}}
	if auth != "" {
		h.auth = []string{auth}
	}
	return h
}

// postRequest is the POST of body to endpoint (a URL string the provider
// formatted once, at start) with h's Content-Type, Accept and
// Authorization, as http.NewRequestWithContext builds it from a
// bytes.Reader (Content-Length and GetBody set).
func postRequest(ctx context.Context, endpoint string, h *fixedHeader, body []byte) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header["Content-Type"] = h.contentType
	req.Header["Accept"] = h.accept
	if h.auth != nil {
		req.Header["Authorization"] = h.auth
	}
	return req, nil
}
