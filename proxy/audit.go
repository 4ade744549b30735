package proxy

import (
	"context"
	"log/slog"
	"strings"
	"time"
)

// auditRecord is one line of the audit log: what happened to one message, or
// why a request was refused. It never holds message text or secrets:
// recipients are masked and causes are passed through the route's redactor.
type auditRecord struct {
	Client    string
	ProxyUser string // authenticated proxy user, when proxy_user is set
	Mode      string // "proxy" (absolute-form), "direct" (origin-form) or "intercept"
	Method    string
	Route     string
	Provider  string
	To        []string // masked
	Country   []string // each recipient's ISO country, "" when unknown
	Chars     int      // message length in characters
	Segments  int      // SMS parts the text needs (GSM-7 or UCS-2) per recipient
	Outcome   string   // delivered, refused, unknown, partial, sandbox
	Status    int      // HTTP status answered to the client
	Code      string   // legacy error code, when failed
	Reason    string   // why it was refused or failed (safe, redacted)
	IDs       []string // upstream message ids
	TLS       string   // upstream TLS version
	Leaf      string   // SHA-256 of the verified upstream leaf certificate
	Latency   time.Duration

	// Attempts lists each provider tried, in order (failover); its length
	// is the attempt count.
	Attempts []attemptRecord
	// ClientMsgID is the client message id passed to the provider (ISE's
	// climsgid, else derived from the request: see singleflight.go).
	ClientMsgID string
	// Joined: an identical request was in flight; this one was answered
	// with its outcome and sent nothing itself.
	Joined bool
	// Host and Path name what a request refused before routing asked for
	// (never the query, which holds credentials and message text); Target
	// is the host:port a refused CONNECT asked to reach.
	Host, Path, Target string

	refusal string // Refusal* reason when postern itself refused; metrics only
}

func (s *Server) writeAudit(ctx context.Context, a *auditRecord) {
	s.metrics.record(a)
	// Sized for the longest line, so building it never regrows the slice.
	attrs := make([]slog.Attr, 0, 20)
	attrs = append(attrs, slog.String("client", a.Client))
	if a.ProxyUser != "" {
		attrs = append(attrs, slog.String("proxy_user", a.ProxyUser))
	}
	attrs = append(attrs,
		slog.String("mode", a.Mode),
		slog.String("method", a.Method),
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
	add("tls", a.TLS)
	add("leaf_sha256", a.Leaf)
	attrs = append(attrs, slog.Float64("latency_ms", float64(a.Latency.Microseconds())/1000))
	s.audit.LogAttrs(ctx, slog.LevelInfo, "message", attrs...)
}

// maskNumber keeps the last four digits, enough to answer "did the guest
// with the number ending 4567 get it?" without building a phone book.
func maskNumber(n string) string {
	if len(n) <= 4 {
		return strings.Repeat("*", len(n))
	}
	return strings.Repeat("*", len(n)-4) + n[len(n)-4:]
}

func maskAll(numbers []string) []string {
	out := make([]string, len(numbers))
	for i, n := range numbers {
		out[i] = maskNumber(n)
	}
	return out
}

// redact replaces every secret value in s with <redacted>. It is the last
// line of defence for causes that quote a URL or a provider reply.
func (c *Config) redact(s string) string {
	for _, v := range c.secrets {
		if v != "" {
			s = strings.ReplaceAll(s, v, "<redacted>")
		}
	}
	return s
}
