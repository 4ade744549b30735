package inbound

import (
	"bytes"
	"net/http"
	"net/textproto"
	"net/url"
	"strconv"
	"strings"
)

// headEnd returns the length of the request head at the start of b (up to
// and including the empty line that ends it), or -1 when b holds no
// complete head yet. Any empty line ends it, "\r\n" or a bare "\n": a head
// with bare line feeds is complete here, and parseHead hands it off.
func headEnd(b []byte) int {
	start := 0
	for {
		i := bytes.IndexByte(b[start:], '\n')
		if i < 0 {
			return -1
		}
		line := b[start : start+i]
		start += i + 1
		if len(line) == 0 || (len(line) == 1 && line[0] == '\r') {
			return start
		}
	}
}

// head is a request head in the strict subset the front serves.
type head struct {
	req           *http.Request
	contentLength int
}

// Limits bound what the front takes itself; larger requests are handed off.
type Limits struct {
	MaxURLBytes  int // request target
	MaxBodyBytes int // Content-Length
}

// Headers whose meaning the front would have to implement (a body framing,
// a protocol switch, an interim response): a request naming them is handed
// off, whatever their value.
var handOffHeaders = map[string]bool{
	"Transfer-Encoding": true, "Expect": true, "Upgrade": true, "Http2-Settings": true, "Trailer": true, "Te": true,
}

// Headers that must appear at most once: the ones a server or the
// pipeline reads a single value of. A repeated one is handed off, so that
// net/http decides what two values mean.
var onceHeaders = map[string]bool{
	"Host": true, "Content-Length": true, "Connection": true, "Content-Type": true,
	"Proxy-Authorization": true, "Authorization": true, "Pragma": true, "Cache-Control": true,
}

// parseHead parses a complete head (as delimited by headEnd) if it is in
// the strict subset: "GET" or "POST", an origin-form or http:// target,
// HTTP/1.1, CRLF line ends, token header names, values of visible ASCII,
// space and tab, no folded lines, exactly one Host, at most one
// Content-Length of digits only, no Transfer-Encoding. ok false means
// "not for the front", never "malformed": the fallback decides that.
// The request it builds is what net/http's server would build for the same
// bytes (FuzzParseAgreesWithNetHTTP checks it), except for the fields the
// server sets per connection (context, RemoteAddr). The request is a copy
// of base (nil: a zero request) with those fields set, so that it carries
// base's context. With a room, the request, its header map and the values'
// array are the room's, reused (see requestRoom); without, new.
func parseHead(b []byte, lim Limits, base *http.Request, room *requestRoom) (h head, ok bool) {
	lineEnd := bytes.Index(b, crlf)
	if lineEnd < 0 {
		return h, false
	}
	line := b[:lineEnd]
	var method string
	switch {
	case bytes.HasPrefix(line, []byte("GET ")):
		method, line = http.MethodGet, line[4:]
	case bytes.HasPrefix(line, []byte("POST ")):
		method, line = http.MethodPost, line[5:]
	default:
		return h, false
	}
	sp := bytes.IndexByte(line, ' ')
	if sp <= 0 || string(line[sp+1:]) != "HTTP/1.1" {
		return h, false
	}
	target := line[:sp]
	if len(target) > lim.MaxURLBytes || !(target[0] == '/' || bytes.HasPrefix(target, []byte("http://"))) {
		return h, false
	}
	for _, c := range target {
		if c <= ' ' || c >= 0x7f || c == '#' {
			return h, false
		}
	}
	// One string for the whole head: the target, every name and every
	// value are parts of it (one allocation instead of two per line).
	str := string(b)
	targetAt := lineEnd - len(line) // line is the request line after the method
	rawURL := str[targetAt : targetAt+sp]
	var u *url.URL
	if room != nil {
		u = &room.url
	} else {
		u = new(url.URL)
	}
	if !parsePlainTarget(u, rawURL) {
		parsed, err := url.ParseRequestURI(rawURL)
		if err != nil {
			return h, false
		}
		*u = *parsed
	}
	if u.IsAbs() && (u.Host == "" || u.User != nil || u.Opaque != "") {
		return h, false
	}

	// A name's first value is a one-element slice of values, as in
	// net/textproto.
	var hdr http.Header
	var values []string
	if room != nil {
		hdr, values = room.header(bytes.Count(b, crlf))
	} else {
		hdr, values = make(http.Header, 8), make([]string, bytes.Count(b, crlf))
	}
	rest := b[lineEnd+2:]
	for {
		e := bytes.Index(rest, crlf)
		if e < 0 {
			return h, false
		}
		if e == 0 {
			if len(rest) != 2 {
				return h, false // bytes after the empty line: not a head from headEnd
			}
			break
		}
		off := len(b) - len(rest)
		name, value, ok := headerLine(str[off : off+e])
		if !ok {
			return h, false
		}
		rest = rest[e+2:]
		key := textproto.CanonicalMIMEHeaderKey(name)
		if handOffHeaders[key] {
			return h, false
		}
		vs, dup := hdr[key]
		if dup && onceHeaders[key] {
			return h, false
		}
		if dup {
			hdr[key] = append(vs, value)
		} else {
			values[0] = value
			hdr[key], values = values[:1:1], values[1:]
		}
	}

	hosts := hdr["Host"]
	if len(hosts) != 1 || !validHost(hosts[0]) {
		return h, false
	}
	host := hosts[0]
	if u.IsAbs() {
		host = u.Host // an absolute target's host wins over the header, as in net/http
	}
	delete(hdr, "Host")

	cl := 0
	if v, ok := hdr["Content-Length"]; ok {
		if len(v[0]) == 0 || len(v[0]) > 9 {
			return h, false
		}
		for _, c := range []byte(v[0]) {
			if c < '0' || c > '9' {
				return h, false
			}
		}
		cl, _ = strconv.Atoi(v[0])
		if cl > lim.MaxBodyBytes {
			return h, false
		}
	}

	closeAfter := false
	if v, ok := hdr["Connection"]; ok {
		switch {
		case asciiEqualFold(v[0], "close"):
			closeAfter = true
		case asciiEqualFold(v[0], "keep-alive"):
		default:
			return h, false
		}
	}
	// net/http reads "Pragma: no-cache" as "Cache-Control: no-cache" too.
	if p, ok := hdr["Pragma"]; ok && p[0] == "no-cache" {
		if _, ok := hdr["Cache-Control"]; !ok {
			hdr["Cache-Control"] = []string{"no-cache"}
		}
	}

	var req *http.Request
	if room != nil {
		req = &room.req
		*req = http.Request{}
	} else {
		req = new(http.Request)
	}
	if base != nil {
		// The context comes with the copy: WithContext would allocate the
		// request a second time.
		*req = *base
	}
	req.Method, req.URL, req.Host, req.RequestURI = method, u, host, rawURL
	req.Proto, req.ProtoMajor, req.ProtoMinor = "HTTP/1.1", 1, 1
	req.Header, req.Body, req.ContentLength, req.Close = hdr, http.NoBody, int64(cl), closeAfter
	h.req = req
	h.contentLength = cl
	return h, true
}

var crlf = []byte("\r\n")

// requestRoom is a connection's room for the request it is serving: the
// request, its header map and the array its header values are slices of.
// Its requests are served one after the other, and the handler is done with
// a request when it returns (Server.Handler), so each request is parsed
// into the same room: three allocations and about 450 bytes less a
// message than new ones (the map's first group alone is 336).
type requestRoom struct {
	req    http.Request
	url    url.URL
	hdr    http.Header
	values []string
}

// header is the room's map, emptied, and n value slots (the lines of the
// head bound the header count).
func (r *requestRoom) header(n int) (http.Header, []string) {
	if r.hdr == nil {
		r.hdr = make(http.Header, 8)
	}
	clear(r.hdr)
	if cap(r.values) < n {
		r.values = make([]string, n)
	}
	// The last request's strings are dropped, not kept alive in the room.
	clear(r.values[:cap(r.values)])
	return r.hdr, r.values[:n]
}

// parsePlainTarget reads the usual origin-form target — a path of
// letters, digits and "-._~/", then a non-empty query — into u, as
// url.ParseRequestURI would (FuzzParseAgreesWithNetHTTP holds the two
// together). It reports false for any other target, left to
// url.ParseRequestURI.
func parsePlainTarget(u *url.URL, target string) bool {
	path, query, hasQuery := strings.Cut(target, "?")
	if len(path) == 0 || path[0] != '/' || strings.HasPrefix(path, "//") || (hasQuery && query == "") ||
		strings.IndexByte(query, '?') >= 0 {
		return false
	}
	for i := 0; i < len(path); i++ {
		switch c := path[i]; {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-', c == '.', c == '_', c == '~', c == '/':
		default:
			return false
		}
	}
	*u = url.URL{Path: path, RawQuery: query}
	return true
}

// headerLine splits "Name: value" with a token name directly before the
// colon and a value of visible ASCII, spaces and tabs, trimmed of both.
func headerLine(line string) (name, value string, ok bool) {
	colon := strings.IndexByte(line, ':')
	if colon <= 0 {
		return "", "", false
	}
	for _, c := range []byte(line[:colon]) {
		if !isTokenByte(c) {
			return "", "", false
		}
	}
	v := line[colon+1:]
	for _, c := range []byte(v) {
		if (c < ' ' && c != '\t') || c >= 0x7f {
			return "", "", false
		}
	}
	return line[:colon], strings.Trim(v, " \t"), true
}

// isTokenByte reports whether c may appear in an RFC 9110 token.
func isTokenByte(c byte) bool {
	switch {
	case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		return true
	}
	switch c {
	case '!', '#', '$', '%', '&', '\'', '*', '+', '-', '.', '^', '_', '`', '|', '~':
		return true
	}
	return false
}

// validHost accepts a non-empty host[:port] of letters, digits, dots,
// dashes, colons and brackets: every name and address ISE can use, and a
// subset of what net/http's server accepts.
func validHost(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '.', c == '-', c == ':', c == '[', c == ']':
		default:
			return false
		}
	}
	return true
}

func asciiEqualFold(s, t string) bool {
	if len(s) != len(t) {
		return false
	}
	for i := 0; i < len(s); i++ {
		a, b := s[i], t[i]
		if 'A' <= a && a <= 'Z' {
			a += 'a' - 'A'
		}
		if a != b {
			return false
		}
	}
	return true
}
