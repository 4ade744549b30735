// Package audit is postern's audit trail: the one Record schema that the
// server fills, the writer renders as a JSON line, `postern report` reads
// back and tests decode; masking and redaction of what a line may repeat;
// and the sinks (console, file, syslog) lines are written to.
package audit

import (
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"time"
)

// Record is one line of the audit log: what happened to one message, or
// why a request was refused. It never holds message text or secrets:
// recipients are masked and causes are passed through the route's redactor.
// The JSON tags are the line's keys; Write decides their order.
type Record struct {
	Client    string   `json:"client"`
	ProxyUser string   `json:"proxy_user,omitempty"` // authenticated proxy user, when proxy_user is set
	Mode      string   `json:"mode"`                 // "proxy" (absolute-form), "direct" (origin-form) or "intercept"
	Method    string   `json:"method"`
	MailFrom  string   `json:"mail_from,omitempty"` // SMTP envelope sender (mode "smtp")
	Route     string   `json:"route,omitempty"`
	Provider  string   `json:"provider,omitempty"`
	To        []string `json:"to,omitempty"`       // masked
	Country   []string `json:"country,omitempty"`  // each recipient's ISO country, "" when unknown
	Chars     int      `json:"chars,omitempty"`    // message length in characters
	Segments  int      `json:"segments,omitempty"` // SMS parts the text needs (GSM-7 or UCS-2) per recipient
	Outcome   string   `json:"outcome"`            // delivered, refused, unknown, partial, sandbox
	Status    int      `json:"status"`             // HTTP status answered to the client
	Code      string   `json:"code,omitempty"`     // legacy error code, when failed
	Reason    string   `json:"reason,omitempty"`   // why it was refused or failed (safe, redacted)
	IDs       []string `json:"ids,omitempty"`      // upstream message ids
	TLS       string   `json:"tls,omitempty"`      // upstream TLS version
	Leaf      string   `json:"leaf_sha256,omitempty"`
	// Upstream is the provider host the verified TLS connection went to.
	Upstream string `json:"upstream_host,omitempty"`
	// Latency is written as latency_ms (see Line.LatencyMS).
	Latency time.Duration `json:"-"`

	// Attempts lists each provider tried, in order (failover); its length
	// is the attempt count.
	Attempts []Attempt `json:"attempts,omitempty"`
	// ClientMsgID is the client message id passed to the provider (ISE's
	// climsgid, else derived from the request).
	ClientMsgID string `json:"client_msg_id,omitempty"`
	// Joined: an identical request was in flight; this one was answered
	// with its outcome and sent nothing itself.
	Joined bool `json:"joined,omitempty"`
	// Store says whose counters and duplicate suppression applied, with
	// [cluster]: "redis" (shared) or "local" (the store was unavailable).
	Store string `json:"store,omitempty"`
	// Host and Path name what a request refused before routing asked for
	// (never the query, which holds credentials and message text); Target
	// is the host:port a refused CONNECT asked to reach.
	Host   string `json:"host,omitempty"`
	Path   string `json:"path,omitempty"`
	Target string `json:"target,omitempty"`

	// Refusal is the reason label when postern itself refused (see
	// metrics.Refusal*); it is counted, never written.
	Refusal string `json:"-"`
}

// Attempt is one provider attempt, for the audit line's "attempts".
type Attempt struct {
	Route    string `json:"route"`
	Provider string `json:"provider"`
	Outcome  string `json:"outcome"`        // delivered, refused, unknown, partial, sandbox
	Code     string `json:"code,omitempty"` // legacy code of the first failure
	// Retry says why this attempt was repeated ("not sent", "HTTP 429
	// Retry-After"), RetryInMS after how long; empty when it was not.
	Retry     string `json:"retry,omitempty"`
	RetryInMS int64  `json:"retry_in_ms,omitempty"`
}

// OutcomeSandbox is the audit outcome of a message the sandbox provider
// took: answered like a delivery, but nothing was sent.
const OutcomeSandbox = "sandbox"

// Write renders a as one audit line through log (whose handler makes it
// JSON), keys in a fixed order and empty optional ones left out. When log
// is an audit logger (NewLogger), the line is appended by appendLine
// straight into a pooled buffer — the same bytes slog's JSON handler would
// write (TestLineSameAsSlog), without its per-attribute boxing and
// reflection; any other logger gets the attributes.
func Write(ctx context.Context, log *slog.Logger, a *Record) {
	if h, ok := log.Handler().(*lineHandler); ok && h.Enabled(ctx, slog.LevelInfo) {
		if h.out.writeRecord(time.Now(), a) {
			return
		}
	}
	log.LogAttrs(ctx, slog.LevelInfo, "message", attrs(a)...)
}

// attrs are a's attributes for a logger other than an audit logger, in the
// line's order.
func attrs(a *Record) []slog.Attr {
	// Sized for the longest line, so building it never regrows the slice.
	attrs := make([]slog.Attr, 0, 21)
	attrs = append(attrs, slog.String("client", a.Client))
	if a.ProxyUser != "" {
		attrs = append(attrs, slog.String("proxy_user", a.ProxyUser))
	}
	attrs = append(attrs,
		slog.String("mode", a.Mode),
		slog.String("method", a.Method),
	)
	if a.MailFrom != "" {
		attrs = append(attrs, slog.String("mail_from", a.MailFrom))
	}
	attrs = append(attrs,
		slog.String("outcome", a.Outcome),
		slog.Int("status", a.Status),
	)
	add := func(k, v string) {
		if v != "" {
			attrs = append(attrs, slog.String(k, v))
		}
	}
	add("route", a.Route)
	add("provider", a.Provider)
	if len(a.To) > 0 {
		attrs = append(attrs, slog.Any("to", a.To), slog.Any("country", a.Country), slog.Int("chars", a.Chars), slog.Int("segments", a.Segments))
	}
	add("code", a.Code)
	add("reason", a.Reason)
	add("host", a.Host)
	add("path", a.Path)
	add("target", a.Target)
	if len(a.IDs) > 0 {
		attrs = append(attrs, slog.Any("ids", a.IDs))
	}
	if len(a.Attempts) > 0 {
		attrs = append(attrs, slog.Any("attempts", a.Attempts))
	}
	add("client_msg_id", a.ClientMsgID)
	if a.Joined {
		attrs = append(attrs, slog.Bool("joined", true))
	}
	add("store", a.Store)
	add("tls", a.TLS)
	add("leaf_sha256", a.Leaf)
	add("upstream_host", a.Upstream)
	attrs = append(attrs, slog.Float64("latency_ms", latencyMS(a.Latency)))
	return attrs
}

// latencyMS is the line's latency_ms: milliseconds with microsecond
// precision.
func latencyMS(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// Line is one audit line read back: the Record and what slog adds to it.
type Line struct {
	Time      time.Time `json:"time"`
	Level     string    `json:"level"`
	Msg       string    `json:"msg"`
	LatencyMS float64   `json:"latency_ms"`
	Record
}

// parseLine decodes one audit line. ok is false for anything that is not
// a message line postern wrote (other JSON, or not JSON).
func parseLine(b []byte) (l Line, ok bool) {
	if err := json.Unmarshal(b, &l); err != nil || l.Msg != "message" || l.Outcome == "" {
		return Line{}, false
	}
	return l, true
}

// maskNumber keeps the last four digits, enough to answer "did the guest
// with the number ending 4567 get it?" without building a phone book.
func maskNumber(n string) string {
	const stars = "****************" // one concatenation, not a Repeat and a concatenation
	if len(n) <= 4 {
		return strings.Repeat("*", len(n))
	}
	hide := len(n) - 4
	if hide > len(stars) {
		return strings.Repeat("*", hide) + n[hide:]
	}
	return stars[:hide] + n[hide:]
}

// MaskAll masks every number.
func MaskAll(numbers []string) []string {
	out := make([]string, len(numbers))
	for i, n := range numbers {
		out[i] = maskNumber(n)
	}
	return out
}

// Redact replaces every secret value in s with <redacted>. It is the last
// line of defence for causes that quote a URL or a provider reply.
func Redact(secrets []string, s string) string {
	for _, v := range secrets {
		if v != "" {
			s = strings.ReplaceAll(s, v, "<redacted>")
		}
	}
	return s
}
