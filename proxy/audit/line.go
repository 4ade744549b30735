package audit

import (
	"github.com/postern/postern/internal/jsonenc"
	"io"
	"log/slog"
	"math"
	"strconv"
	"sync"
	"time"
)

// NewLogger returns the audit logger that writes JSON lines to w: Write's
// audit lines are appended by appendLine, anything else logged through it
// is written by slog's JSON handler. Both are one w.Write per line, one at
// a time.
func NewLogger(w io.Writer) *slog.Logger {
	out := &lineWriter{w: w}
	return slog.New(&lineHandler{JSONHandler: slog.NewJSONHandler(out, nil), out: out})
}

// lineHandler is slog's JSON handler with a way around it for audit
// lines. A logger derived from it (With, WithGroup) is a plain JSON
// handler, and Write then takes the attributes path: the same bytes.
type lineHandler struct {
	*slog.JSONHandler
	out *lineWriter
}

// lineWriter serialises the lines of both paths onto w.
type lineWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (lw *lineWriter) Write(p []byte) (int, error) {
	lw.mu.Lock()
	defer lw.mu.Unlock()
	return lw.w.Write(p)
}

// linePool holds line buffers; an audit line is a few hundred bytes.
var linePool = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

// writeRecord writes a's line stamped t. It reports false, writing
// nothing, for a time slog would flag as outside RFC 3339's years.
func (lw *lineWriter) writeRecord(t time.Time, a *Record) bool {
	if y := t.Year(); y < 0 || y >= 10000 {
		return false
	}
	bp := linePool.Get().(*[]byte)
	line := appendLine((*bp)[:0], t, a)
	// A sink that is down does not stop delivery; Sinks counts its drops.
	_, _ = lw.Write(line)
	if cap(line) <= 16<<10 {
		*bp = line
		linePool.Put(bp)
	}
	return true
}

// appendLine appends a's audit line, stamped t, to dst: the one place a
// line's bytes are made. They are exactly what slog's JSON handler writes
// for the attributes of attrs(a) at time t — top-level strings escaped as
// slog escapes them, the lists (to, country, ids, attempts) as
// encoding/json encodes them without HTML escaping, latency_ms as
// encoding/json formats a float64 — and a newline.
func appendLine(dst []byte, t time.Time, a *Record) []byte {
	dst = append(dst, `{"time":"`...)
	dst = t.Round(0).AppendFormat(dst, time.RFC3339Nano)
	dst = append(dst, `","level":"INFO","msg":"message"`...)
	dst = appendStringAttr(dst, "client", a.Client)
	if a.ProxyUser != "" {
		dst = appendStringAttr(dst, "proxy_user", a.ProxyUser)
	}
	dst = appendStringAttr(dst, "mode", a.Mode)
	dst = appendStringAttr(dst, "method", a.Method)
	dst = appendOptional(dst, "mail_from", a.MailFrom)
	dst = appendStringAttr(dst, "outcome", a.Outcome)
	dst = appendIntAttr(dst, "status", a.Status)
	dst = appendOptional(dst, "route", a.Route)
	dst = appendOptional(dst, "provider", a.Provider)
	if len(a.To) > 0 {
		dst = appendKey(dst, "to")
		dst = jsonenc.AppendStrings(dst, a.To)
		dst = appendKey(dst, "country")
		dst = jsonenc.AppendStrings(dst, a.Country)
		dst = appendIntAttr(dst, "chars", a.Chars)
		dst = appendIntAttr(dst, "segments", a.Segments)
	}
	dst = appendOptional(dst, "code", a.Code)
	dst = appendOptional(dst, "reason", a.Reason)
	dst = appendOptional(dst, "host", a.Host)
	dst = appendOptional(dst, "path", a.Path)
	dst = appendOptional(dst, "target", a.Target)
	if len(a.IDs) > 0 {
		dst = appendKey(dst, "ids")
		dst = jsonenc.AppendStrings(dst, a.IDs)
	}
	if len(a.Attempts) > 0 {
		dst = appendKey(dst, "attempts")
		dst = appendAttempts(dst, a.Attempts)
	}
	dst = appendOptional(dst, "client_msg_id", a.ClientMsgID)
	if a.Joined {
		dst = append(dst, `,"joined":true`...)
	}
	dst = appendOptional(dst, "store", a.Store)
	dst = appendOptional(dst, "tls", a.TLS)
	dst = appendOptional(dst, "leaf_sha256", a.Leaf)
	dst = appendOptional(dst, "upstream_host", a.Upstream)
	dst = appendKey(dst, "latency_ms")
	dst = appendFloat(dst, latencyMS(a.Latency))
	return append(dst, '}', '\n')
}

// appendKey appends `,"key":` for a key that needs no escaping.
func appendKey(dst []byte, key string) []byte {
	dst = append(dst, ',', '"')
	dst = append(dst, key...)
	return append(dst, '"', ':')
}

func appendStringAttr(dst []byte, key, v string) []byte {
	return appendString(appendKey(dst, key), v, false)
}

func appendOptional(dst []byte, key, v string) []byte {
	if v == "" {
		return dst
	}
	return appendStringAttr(dst, key, v)
}

func appendIntAttr(dst []byte, key string, n int) []byte {
	return strconv.AppendInt(appendKey(dst, key), int64(n), 10)
}

// appendAttempts appends the attempts as encoding/json encodes []Attempt
// by its struct tags.
func appendAttempts(dst []byte, list []Attempt) []byte {
	dst = append(dst, '[')
	for i, at := range list {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, `{"route":`...)
		dst = appendString(dst, at.Route, true)
		dst = append(dst, `,"provider":`...)
		dst = appendString(dst, at.Provider, true)
		dst = append(dst, `,"outcome":`...)
		dst = appendString(dst, at.Outcome, true)
		if at.Code != "" {
			dst = append(dst, `,"code":`...)
			dst = appendString(dst, at.Code, true)
		}
		if at.Retry != "" {
			dst = append(dst, `,"retry":`...)
			dst = appendString(dst, at.Retry, true)
		}
		if at.RetryInMS != 0 {
			dst = append(dst, `,"retry_in_ms":`...)
			dst = strconv.AppendInt(dst, at.RetryInMS, 10)
		}
		dst = append(dst, '}')
	}
	return append(dst, ']')
}

// appendFloat appends f as encoding/json formats a float64 (slog hands
// floats to it): the shortest form, in exponent notation only below 1e-6
// or from 1e21, with a one-digit negative exponent unpadded.
func appendFloat(dst []byte, f float64) []byte {
	format := byte('f')
	if abs := math.Abs(f); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	dst = strconv.AppendFloat(dst, f, format, -1, 64)
	if format == 'e' {
		// clean up e-09 to e-9
		if n := len(dst); n >= 4 && dst[n-4] == 'e' && dst[n-3] == '-' && dst[n-2] == '0' {
			dst[n-2] = dst[n-1]
			dst = dst[:n-1]
		}
	}
	return dst
}

// appendString appends s as a JSON string: as encoding/json writes it in
// the lists (jsonStyle), as slog writes it at the top level otherwise.
func appendString(dst []byte, s string, jsonStyle bool) []byte {
	if jsonStyle {
		return jsonenc.AppendString(dst, s)
	}
	return jsonenc.AppendSlogString(dst, s)
}
