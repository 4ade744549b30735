package inbound

import (
	"bytes"
	"io"
	"net/http"
	"net/textproto"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// answer runs the request whose head is buf[r:r+n] through the handler and
// writes the response. It reports whether the connection may carry
// another request.
func (c *conn) answer(h head, n int) (keep bool) {
	req := h.req
	bodyStart := c.r + n
	if h.contentLength > 0 {
		req.Body = io.NopCloser(bytes.NewReader(bytes.Clone(c.buf[bodyStart : bodyStart+h.contentLength])))
	}
	c.r = bodyStart + h.contentLength
	if c.remoteAddr == "" {
		c.remoteAddr = c.c.RemoteAddr().String()
	}
	req.RemoteAddr = c.remoteAddr
	if d := c.s.WriteTimeout; d > 0 {
		c.setWriteDeadline(time.Now().Add(d), d)
	}
	c.s.served.Add(1)
	resp := c.handle(req)
	if resp == nil {
		return false // the handler panicked: close, as net/http does
	}
	keep = !req.Close && !resp.Close && !c.s.closing.Load()
	c.body.Reset()
	if resp.Body != nil {
		// io.Copy: a body that writes itself out (the pipeline's answers,
		// a strings.Reader) is copied once, without ReadFrom's reads.
		_, err := io.Copy(&c.body, resp.Body)
		resp.Body.Close()
		if err != nil {
			return false
		}
	}
	c.out = appendResponse(c.out[:0], resp.StatusCode, resp.Header, c.body.Bytes(), keep, c.s.dates.now())
	if _, err := c.io.Write(c.out); err != nil {
		return false
	}
	if !keep {
		c.closeAfterReply()
	}
	return keep
}

// handle calls the handler, recovering a panic as net/http does: the
// connection closes, the server goes on. Only the stack is logged: the
// panic's value could quote the request.
func (c *conn) handle(req *http.Request) (resp *http.Response) {
	defer func() {
		if v := recover(); v != nil {
			if c.s.Log != nil {
				c.s.Log.Error("panic serving a request; the connection is closed", "stack", string(debug.Stack()))
			}
			resp = nil
		}
	}()
	return c.s.Handler(req)
}

// closeAfterReply ends a connection whose last reply was just written, as
// net/http does: it half-closes, then reads and discards what the client
// still sends for a moment, so that a reset does not destroy the reply.
func (c *conn) closeAfterReply() {
	if cw, ok := c.c.(interface{ CloseWrite() error }); ok {
		cw.CloseWrite()
	}
	c.c.SetReadDeadline(time.Now().Add(closeLinger))
	io.CopyN(io.Discard, c.c, closeLingerBytes)
}

// bufferBeforeChunking is net/http's: a body it is given in one write
// larger than this goes out chunked, as one chunk.
const bufferBeforeChunking = 2048

// appendResponse appends the response as net/http's server writes a
// handler's reply whose body was written in one piece before the handler
// returned: the status line, the handler's headers sorted, then Date,
// Content-Length (or one chunk past 2 KiB), a sniffed Content-Type when
// none was set, and "Connection: close" when the connection ends.
//
// date is the Date header's value for now (dateCache); nil formats it here.
func appendResponse(b []byte, status int, hdr http.Header, body []byte, keep bool, date []byte) []byte {
	b = append(b, "HTTP/1.1 "...)
	if text := http.StatusText(status); text != "" {
		b = strconv.AppendInt(b, int64(status), 10)
		b = append(b, ' ')
		b = append(b, text...)
	} else {
		b = append(b, strconv.Itoa(1000 + status)[1:]...) // %03d
		b = append(b, " status code "...)
		b = strconv.AppendInt(b, int64(status), 10)
	}
	b = append(b, "\r\n"...)

	bodyAllowed := !(status >= 100 && status <= 199) && status != http.StatusNoContent && status != http.StatusNotModified
	_, hasCL := hdr["Content-Length"]
	_, hasType := hdr["Content-Type"]
	hasDate := len(hdr["Date"]) > 0
	chunked := bodyAllowed && !hasCL && len(body) > bufferBeforeChunking
	var keys [16]string
	ks := keys[:0]
	for k := range hdr {
		switch {
		case k == "Transfer-Encoding",
			k == "Connection" && !keep,
			k == "Content-Length" && (!bodyAllowed || chunked),
			k == "Content-Type" && status == http.StatusNotModified,
			!validFieldName(k):
			continue
		}
		ks = append(ks, k)
	}
	slices.Sort(ks)
	for _, k := range ks {
		for _, v := range hdr[k] {
			b = append(b, k...)
			b = append(b, ": "...)
			if strings.IndexByte(v, '\r') >= 0 || strings.IndexByte(v, '\n') >= 0 {
				v = strings.NewReplacer("\n", " ", "\r", " ").Replace(v)
			}
			b = append(b, textproto.TrimString(v)...)
			b = append(b, "\r\n"...)
		}
	}
	if !hasDate {
		b = append(b, "Date: "...)
		if date != nil {
			b = append(b, date...)
		} else {
			b = time.Now().UTC().AppendFormat(b, http.TimeFormat)
		}
		b = append(b, "\r\n"...)
	}
	if bodyAllowed && !hasCL && !chunked {
		b = append(b, "Content-Length: "...)
		b = strconv.AppendInt(b, int64(len(body)), 10)
		b = append(b, "\r\n"...)
	}
	if bodyAllowed && !hasType && len(body) > 0 {
		b = append(b, "Content-Type: "...)
		b = append(b, http.DetectContentType(body)...)
		b = append(b, "\r\n"...)
	}
	if !keep {
		b = append(b, "Connection: close\r\n"...)
	}
	if chunked {
		b = append(b, "Transfer-Encoding: chunked\r\n\r\n"...)
		b = strconv.AppendInt(b, int64(len(body)), 16)
		b = append(b, "\r\n"...)
		b = append(b, body...)
		return append(b, "\r\n0\r\n\r\n"...)
	}
	b = append(b, "\r\n"...)
	if bodyAllowed {
		b = append(b, body...)
	}
	return b
}

func validFieldName(k string) bool {
	if k == "" {
		return false
	}
	for i := 0; i < len(k); i++ {
		if !isTokenByte(k[i]) {
			return false
		}
	}
	return true
}

// dateCache is the Date header's value, formatted once a second instead of
// once a response (as fasthttp's server does; net/http formats it each
// time, to the same second).
type dateCache struct {
	v atomic.Pointer[dateValue]
}

type dateValue struct {
	sec  int64
	date []byte // never changed once stored
}

// now is the Date header's value for this second.
func (d *dateCache) now() []byte {
	t := time.Now()
	if v := d.v.Load(); v != nil && v.sec == t.Unix() {
		return v.date
	}
	v := &dateValue{sec: t.Unix(), date: t.UTC().AppendFormat(nil, http.TimeFormat)}
	d.v.Store(v)
	return v.date
}
