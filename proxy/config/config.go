// Package config turns config.toml into plain runtime values in three
// phases: a strict decode that knows every key's position (configdecode.go,
// configpos.go, keys.go), a pure validation that reports every problem at
// once (one file per TOML table), and provisioning, the only step that
// reads files or the environment (provision.go). Its Config knows nothing
// of senders or the server; all defaults are in defaults.go.
package config

import (
	"net"
	"net/netip"
	"net/url"
	"strings"
	"time"

	"github.com/postern/postern/proxy/audit"
	"github.com/postern/postern/rewrite"
	"github.com/postern/postern/trust"
)

// Config is a loaded, validated configuration: immutable after Load.
type Config struct {
	Source         string // file name, or "embedded sandbox"
	Listen         string
	AllowClients   []netip.Prefix
	RequestTimeout time.Duration
	AdminListen    string        // "" when the admin listener is off
	ShutdownGrace  time.Duration // how long in-flight messages may finish on shutdown
	Retries        int           // upstream_retries: repeats of a request the provider certainly did not get
	CAFiles        []string
	Routes         []*Route
	Roots          *trust.Roots // with the [trust] policy: AIA, pins
	ListenTLS      string       // "" = no HTTPS listener
	DataDir        string
	TLS            TLSSettings
	InterceptHosts []string     // lower case; CONNECT to these is intercepted
	Guards         Guards       // who may send and how much: auth, sizes, [limits]
	Audit          audit.Config // [audit] sinks
	SMTP           SMTPSettings // [smtp]; Listen "" = no SMTP listener
	// AuditChainKeySource says where [audit] chain_key comes from ("unset",
	// "env NAME", "file PATH", "inline"), for the summary.
	AuditChainKeySource string
	auditChainKeyFP     string  // "" when unset or not resolved
	Cluster             Cluster // [cluster]: the store replicas share

	secrets []string // resolved secret values, for redaction
	idKey   []byte   // derived from secrets (newIDKey)
}

// Route is one [[route]] entry turned into runtime values.
type Route struct {
	Name          string
	MatchHost     string // lower case, no port; "" = any host
	MatchPath     string // exact path, or a prefix when it ends in "*"
	Inbound       string
	ProviderName  string
	Endpoint      *url.URL // nil for sandbox, else the effective send URL
	From          string
	MaxRecipients int
	TokenSource   string     // where the token came from, for summaries
	Legacy        LegacyAuth // legacy credentials the request must carry
	MaxSegments   int        // most SMS parts a text may need
	Country       string     // default_country, "" = none
	FallbackName  string     // fallback route name, "" = none
	Fallback      *Route     // resolved FallbackName; its fallback is not followed
	// UpstreamHTTP2: send through net/http's client, which speaks HTTP/2
	// when the provider offers it, instead of the HTTP/1.1 keep-alive pool.
	UpstreamHTTP2 bool

	MatchDomain string // mail routes: recipient domain, lower case, or "*"

	Dialect  rewrite.Dialect     // nil for a mail route
	Mail     rewrite.MailDialect // nil unless inbound is a mail dialect
	Provider rewrite.Provider    // nil for sandbox
}

// matches reports whether the route serves a request for host and path.
func (r *Route) matches(host, path string) bool {
	if r.MatchPath == "" {
		return false // reachable only as a fallback
	}
	if r.MatchHost != "" && !strings.EqualFold(r.MatchHost, host) {
		return false
	}
	if prefix, ok := strings.CutSuffix(r.MatchPath, "*"); ok {
		return strings.HasPrefix(path, prefix)
	}
	return path == r.MatchPath
}

// Match returns the first route, in file order, that serves host and path,
// or nil: deny by default.
func (c *Config) Match(host, path string) *Route {
	host = HostOnly(host)
	for _, r := range c.Routes {
		if r.matches(host, path) {
			return r
		}
	}
	return nil
}

// ClientAllowed reports whether addr is inside allow_clients.
func (c *Config) ClientAllowed(addr netip.Addr) bool {
	addr = addr.Unmap()
	for _, p := range c.AllowClients {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}

// Redact replaces every secret value of the config in s with <redacted>.
func (c *Config) Redact(s string) string { return audit.Redact(c.secrets, s) }

// IDKey is the HMAC key for message keys and client message ids, derived
// from the config's secret values (see newIDKey).
func (c *Config) IDKey() []byte { return c.idKey }

// HostOnly strips a port and brackets and lowers the case.
func HostOnly(hostport string) string {
	h := hostport
	if host, _, err := net.SplitHostPort(hostport); err == nil {
		h = host
	}
	if strings.HasPrefix(h, "[") || strings.HasSuffix(h, "]") {
		h = strings.Trim(h, "[]")
	}
	return strings.ToLower(h)
}

// sandboxProvider is handled by the proxy itself: it never leaves the box.
const sandboxProvider = "sandbox"
