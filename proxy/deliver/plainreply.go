package deliver

import (
	"bytes"
	"net/http"
	"strings"
	"unsafe"

	"golang.org/x/net/http/httpguts"
)

// plainHead is a reply head in the shape providers send: HTTP/1.1, a final
// status other than 204 and 304, well-formed header lines and one
// Content-Length within maxProviderReply, no Transfer-Encoding or Trailer.
// For such a head every reading is unambiguous, and net/http's parser reads
// it the same way (FuzzPlainHeadReadsAsNetHTTP holds the two together);
// every other head, well-formed or not, is left to net/http's parser, which
// also gives the errors.
type plainHead struct {
	len           int // bytes of the head, blank line included
	status        int
	header        http.Header // as keep says (see parsePlainHead)
	contentLength int64
	close         bool // Connection: close
}

var headEnd = []byte("\r\n\r\n")

// parsePlainHead reads the head at the start of b, a connection's buffered
// bytes. ok is false when b does not begin with a whole plain head. Every
// line is checked whatever the status; keep says for which status the
// header map is made (keepAll, or wantHeader for ExchangePost and
// ExchangeMessage).
func parsePlainHead(b []byte, keep func(status int) bool) (h plainHead, ok bool) {
	end := bytes.Index(b, headEnd)
	if end < 0 {
		return h, false
	}
	status, ok := plainStatus(b)
	if !ok {
		return h, false
	}
	// One string for the whole head when its headers are kept: every name
	// and value is a part of it. Otherwise the head is only read, in
	// place: nothing of it outlives this call, and b is not changed during
	// it.
	var s string
	withHeader := keep(status)
	if withHeader {
		s = string(b[:end+2])
	} else {
		s = unsafe.String(&b[0], end+2)
	}
	line, rest, _ := strings.Cut(s, "\r\n")
	if len(line) < len("HTTP/1.1 200") || line[:len("HTTP/1.1 ")] != "HTTP/1.1 " || (len(line) > 12 && line[12] != ' ') {
		return h, false
	}
	for _, c := range []byte(line[12:]) { // the reason: no line end, no control
		if c < ' ' && c != '\t' || c == 0x7f {
			return h, false
		}
	}
	h.status = status
	if h.status < 200 || h.status > 599 || h.status == http.StatusNoContent || h.status == http.StatusNotModified {
		return h, false
	}
	// One array for the values, as net/textproto does: a name seen once
	// (nearly all) takes a one-element slice of it.
	var values []string
	if withHeader {
		n := strings.Count(rest, "\r\n") + 1
		h.header = make(http.Header, n)
		values = make([]string, n)
	}
	h.contentLength = -1
	for rest != "" {
		line, rest, _ = strings.Cut(rest, "\r\n")
		name, value, found := strings.Cut(line, ":")
		// A name that is not a token (empty, with a space before the
		// colon, a continuation line) is net/http's to refuse.
		if !found || !httpguts.ValidHeaderFieldName(name) {
			return h, false
		}
		value = strings.Trim(value, " \t")
		if !httpguts.ValidHeaderFieldValue(value) {
			return h, false
		}
		switch framingHeader(name) {
		case "Content-Length":
			if h.contentLength >= 0 || value == "" || len(value) > 7 {
				return h, false // repeated, empty or over the bound: net/http decides
			}
			var n int64
			for _, c := range []byte(value) {
				if c < '0' || c > '9' {
					return h, false
				}
				n = n*10 + int64(c-'0')
			}
			if n > maxProviderReply {
				return h, false
			}
			h.contentLength = n
		case "Transfer-Encoding", "Trailer":
			return h, false
		case "Connection":
			// As net/http: "close" closes the connection, and the
			// Connection header that said so is not reported.
			h.close = h.close || httpguts.HeaderValuesContainsToken([]string{value}, "close")
		}
		if !withHeader {
			continue
		}
		key := http.CanonicalHeaderKey(name)
		if vs, seen := h.header[key]; seen {
			h.header[key] = append(vs, value)
		} else {
			values[0] = value
			h.header[key], values = values[:1:1], values[1:]
		}
	}
	if h.close {
		delete(h.header, "Connection")
	}
	if h.contentLength < 0 {
		return h, false // a body to the end of the connection: net/http's
	}
	h.len = end + len(headEnd)
	return h, true
}

// framingHeader is the canonical name of the header name (a token) when it
// is one of those that decide how a reply is framed or whether its
// connection is kept, "" otherwise. It does not canonicalize the others:
// a 2xx reply's headers are not kept (wantHeader).
func framingHeader(name string) string {
	var canonical string
	switch len(name) {
	case len("Content-Length"):
		canonical = "Content-Length"
	case len("Transfer-Encoding"):
		canonical = "Transfer-Encoding"
	case len("Trailer"):
		canonical = "Trailer"
	case len("Connection"):
		canonical = "Connection"
	default:
		return ""
	}
	// ASCII only: a token has no other bytes, and strings.EqualFold would
	// also match the Kelvin sign to k.
	for i := 0; i < len(name); i++ {
		if c := name[i]; c|0x20 != canonical[i]|0x20 || (c < 'A' && c != '-') {
			return ""
		}
	}
	return canonical
}

// plainStatus reads the status code of the status line at the start of b,
// "HTTP/1.1 NNN", which parsePlainHead checks in full.
func plainStatus(b []byte) (int, bool) {
	if len(b) < len("HTTP/1.1 200") {
		return 0, false
	}
	status := 0
	for _, c := range b[9:12] {
		if c < '0' || c > '9' {
			return 0, false
		}
		status = status*10 + int(c-'0')
	}
	return status, true
}

// keepAll keeps every reply's headers: Exchange's replies (a Client's
// reply has them).
func keepAll(int) bool { return true }

// wantHeader keeps only the headers of a reply that is not 2xx:
// ExchangePost's and ExchangeMessage's replies, whose only reader is
// markThrottled (a 429's or 503's Retry-After).
func wantHeader(status int) bool { return status < 200 || status > 299 }
