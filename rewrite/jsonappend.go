package rewrite

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"

	"github.com/postern/postern/internal/jsonenc"
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
		case queryUnreserved[c]:
			dst = append(dst, c)
		case c == ' ':
			dst = append(dst, '+')
		default:
			dst = append(dst, '%', upperHex[c>>4], upperHex[c&15])
		}
	}
	return dst
}

// queryUnreserved is the bytes url.QueryEscape leaves as they are:
// letters, digits and "-_.~".
var queryUnreserved = func() (t [256]bool) {
	for c := range t {
		t[c] = 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.' || c == '~'
	}
	return t
}()

// fixedHeader is a provider's request header values, made once at start:
// every request's Header map refers to the same one-element slices. They
// are never written to: Header.Set replaces a key's slice and Header.Add
// grows a full one into a new array; net/http only reads them.
type fixedHeader struct {
	contentType, accept, auth []string // auth nil: no Authorization
	version                   []string // X-Version (Clickatell REST); nil: none
	all                       http.Header
}

func newFixedHeader(contentType, auth string) fixedHeader {
	h := fixedHeader{contentType: []string{contentType}, accept: []string{"application/json"}}
	if auth != "" {
		h.auth = []string{auth}
	}
	return h.withAll()
}

// withVersion adds an X-Version header.
func (h fixedHeader) withVersion(v string) fixedHeader {
	h.version = []string{v}
	return h.withAll()
}

// withAll fills all: the headers as one map, for Poster.PostTarget.
func (h fixedHeader) withAll() fixedHeader {
	h.all = http.Header{}
	h.fill(h.all)
	return h
}

// fill sets h's headers in dst, sharing h's value slices.
func (h *fixedHeader) fill(dst http.Header) {
	dst["Content-Type"] = h.contentType
	dst["Accept"] = h.accept
	if h.auth != nil {
		dst["Authorization"] = h.auth
	}
	if h.version != nil {
		dst["X-Version"] = h.version
	}
}

// postTemplate is a provider's POST to its endpoint as
// http.NewRequestWithContext makes it from the endpoint's string, made
// once at start: each request copies it instead of parsing the URL again.
type postTemplate struct {
	req *http.Request // no body, no header, context.Background()
	err error         // what NewRequestWithContext said, returned by every post
}

func newPostTemplate(endpoint *url.URL) postTemplate {
	req, err := http.NewRequestWithContext(context.Background(), http.MethodPost, endpoint.String(), nil)
	return postTemplate{req: req, err: err}
}

// target is what Poster.PostTarget says for provider name: the endpoint
// as every request's URL has it, and h's headers. Both are shared and read
// only.
func (t *postTemplate) target(h *fixedHeader, name fmt.Stringer) (*url.URL, http.Header, error) {
	if t.err != nil {
		return nil, nil, buildErrorFor(name, t.err)
	}
	return t.req.URL, h.all, nil
}

// build is a Poster's Build: the request for body, which PostBody made
// (or refused with err), with h's headers.
func (t *postTemplate) build(ctx context.Context, h *fixedHeader, name fmt.Stringer, body []byte, err error) (*http.Request, error) {
	if err != nil {
		return nil, err
	}
	req, err := t.post(ctx, h, body)
	if err != nil {
		return nil, buildErrorFor(name, err)
	}
	return req, nil
}

// postParts are a request with its own URL and body reader, allocated
// together.
type postParts struct {
	req  http.Request
	url  url.URL
	body bytes.Reader
}

// post is the POST of body with h's Content-Type, Accept and
// Authorization: field for field what http.NewRequestWithContext builds
// from the endpoint's string and a bytes.Reader (URL, Host, Proto,
// Content-Length, a Body that is io.NopCloser of the reader, GetBody),
// with a URL of its own that a sender may change, without parsing the
// URL per request (FuzzBodiesSameAsEncoders compares the two).
func (t *postTemplate) post(ctx context.Context, h *fixedHeader, body []byte) (*http.Request, error) {
	if t.err != nil {
		return nil, t.err
	}
	if ctx == nil {
		return nil, errors.New("net/http: nil Context")
	}
	parts := &postParts{url: *t.req.URL}
	// WithContext's copy is inlined and kept off the heap: the request
	// lives in parts.
	parts.req = *t.req.WithContext(ctx)
	req := &parts.req
	parts.body.Reset(body)
	req.URL = &parts.url
	req.Header = make(http.Header, 5) // room for the sender's User-Agent
	h.fill(req.Header)
	req.ContentLength = int64(len(body))
	if len(body) == 0 {
		req.Body = http.NoBody
		req.GetBody = func() (io.ReadCloser, error) { return http.NoBody, nil }
		return req, nil
	}
	req.Body = io.NopCloser(&parts.body)
	req.GetBody = func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(body)), nil
	}
	return req, nil
}
