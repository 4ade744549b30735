package config

import (
	"cmp"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/postern/postern/proxy/audit"
	"github.com/postern/postern/rewrite"
	"github.com/postern/postern/trust"
)

// sandboxProvider is handled by the proxy itself: it never leaves the box.
const sandboxProvider = "sandbox"

// fileConfig mirrors config.toml. Field tags are the public contract; every
// key is documented in README.md.
type fileConfig struct {
	Server    serverFile    `toml:"server"`
	Trust     trustFile     `toml:"trust"`
	TLS       tlsFile       `toml:"tls"`
	Intercept interceptFile `toml:"intercept"`
	Limits    limitsFile    `toml:"limits"`
	Audit     auditFile     `toml:"audit"`
	Routes    []routeFile   `toml:"route"`
}

type serverFile struct {
	Listen         string   `toml:"listen"`
	AllowClients   []string `toml:"allow_clients"`
	RequestTimeout Duration `toml:"request_timeout"`
	ListenTLS      string   `toml:"listen_tls"`
	DataDir        string   `toml:"data_dir"`
	// Guardrails (limits.go).
	ProxyUser             string   `toml:"proxy_user"`
	ProxyPassword         Secret   `toml:"proxy_password"`
	HeaderReadTimeout     Duration `toml:"header_read_timeout"`
	MaxURLBytes           int      `toml:"max_url_bytes"`
	MaxBodyBytes          int      `toml:"max_body_bytes"`
	MaxConcurrentUpstream int      `toml:"max_concurrent_upstream"`
	UpstreamQueueWait     Duration `toml:"upstream_queue_wait"`
	AdminListen           string   `toml:"admin_listen"`
	ShutdownGrace         Duration `toml:"shutdown_grace"`
	UpstreamRetries       *int     `toml:"upstream_retries"`
}

type trustFile struct {
	CAFiles    []string            `toml:"ca_files"`
	AIA        *bool               `toml:"aia"`
	AIATimeout Duration            `toml:"aia_timeout"`
	Pins       map[string][]string `toml:"pins"`
}

type routeFile struct {
	Name          string `toml:"name"`
	MatchHost     string `toml:"match_host"`
	MatchPath     string `toml:"match_path"`
	Inbound       string `toml:"inbound"`
	Provider      string `toml:"provider"`
	Endpoint      string `toml:"endpoint"`
	Token         Secret `toml:"token"`
	From          string `toml:"from"`
	MaxRecipients int    `toml:"max_recipients"`
	// Legacy credentials the request must carry (limits.go).
	LegacyUser     string `toml:"legacy_user"`
	LegacyPassword Secret `toml:"legacy_password"`
	LegacyAPIID    string `toml:"legacy_api_id"`
	routeDeliveryKeys
}

// Duration is a TOML string such as "10s" or "1m30s". Unlike toml's native
// time.Duration handling it refuses bare integers, which would silently mean
// nanoseconds, and values that are not positive.
type Duration struct{ time.Duration }

// UnmarshalText parses a Go duration string.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("invalid duration %q (write it with a unit, e.g. \"10s\")", b)
	}
	if v <= 0 {
		return fmt.Errorf("duration %q must be positive", b)
	}
	d.Duration = v
	return nil
}

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

	Dialect  rewrite.Dialect
	Provider rewrite.Provider // nil for sandbox
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
	return strings.ToLower(strings.Trim(h, "[]"))
}

// ConfigError lists every problem found in a config file, each with its
// position, so that one run of `postern check` shows them all.
type ConfigError struct {
	File     string
	Problems []Problem
}

// Problem is one mistake in a config file.
type Problem struct {
	Pos Position // zero when no position is known
	Msg string
}

func (e *ConfigError) Error() string {
	var b strings.Builder
	for i, p := range e.Problems {
		if i > 0 {
			b.WriteByte('\n')
		}
		if p.Pos.Line > 0 {
			fmt.Fprintf(&b, "%s:%d:%d: %s", e.File, p.Pos.Line, p.Pos.Col, p.Msg)
		} else {
			fmt.Fprintf(&b, "%s: %s", e.File, p.Msg)
		}
	}
	return b.String()
}

// LoadOptions are the outside inputs to Load; tests replace them.
type LoadOptions struct {
	// LookupEnv resolves env: secrets; nil means os.LookupEnv.
	LookupEnv func(string) (string, bool)
	// SkipSecrets validates everything but resolves no env: or file:
	// secret: only the form of each reference is checked, and a stand-in
	// takes its value. For `postern check -skip-secrets` (a CI pipeline
	// validates configs without holding the tokens) and `postern trust`;
	// such a Config must never serve.
	SkipSecrets bool
	// AllowNoRoutes accepts a file without any [[route]], for commands
	// that need only part of it (`postern trust` reads [trust]).
	AllowNoRoutes bool
}

// LoadFile reads and validates a config file.
func LoadFile(path string, opts LoadOptions) (*Config, error) {
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading config: %w", err)
	}
	return Load(path, src, opts)
}

// ReadAdminListen returns [server] admin_listen of the config file at path
// (DefaultAdminListen when unset, AdminOff when off) without validating the
// rest of it: `postern health` and `postern reload` find a running postern
// by it even when the file has been broken since that postern started.
func ReadAdminListen(path string) (string, error) {
	var fc struct {
		Server struct {
			AdminListen string `toml:"admin_listen"`
		} `toml:"server"`
	}
	if _, err := toml.DecodeFile(path, &fc); err != nil {
		return "", fmt.Errorf("reading admin_listen from %s: %w", path, err)
	}
	if fc.Server.AdminListen == "" {
		return DefaultAdminListen, nil
	}
	return fc.Server.AdminListen, nil
}

// Load decodes src strictly, validates all of it, and builds the runtime
// configuration. Errors are a *ConfigError listing every problem, sorted by
// line: syntax errors (only the first: the TOML parser cannot go on past
// one), wrong types, unknown keys and invalid values alike.
func Load(name string, src []byte, opts LoadOptions) (*Config, error) {
	if opts.LookupEnv == nil {
		opts.LookupEnv = os.LookupEnv
	}
	v := validator{file: name, idx: indexKeys(string(src)), lookupEnv: opts.LookupEnv, opts: opts}
	var fc fileConfig
	md, ok := v.decode(string(src), &fc)
	if !ok {
		return nil, &ConfigError{File: name, Problems: v.problems}
	}
	v.checkKeys(md)
	cfg := v.build(&fc)
	if len(v.problems) > 0 {
		sortProblems(v.problems)
		return nil, &ConfigError{File: name, Problems: v.problems}
	}
	cfg.idKey = newIDKey(cfg.secrets)
	return cfg, nil
}

// sortProblems orders problems by line and column; those without a
// position concern the whole file and come last.
func sortProblems(ps []Problem) {
	slices.SortStableFunc(ps, func(a, b Problem) int {
		switch {
		case a.Pos.Line == 0 || b.Pos.Line == 0:
			return cmp.Compare(b.Pos.Line, a.Pos.Line) // nonzero first
		case a.Pos.Line != b.Pos.Line:
			return cmp.Compare(a.Pos.Line, b.Pos.Line)
		}
		return cmp.Compare(a.Pos.Col, b.Pos.Col)
	})
}

type validator struct {
	file      string
	idx       keyIndex
	lookupEnv func(string) (string, bool)
	opts      LoadOptions
	problems  []Problem
	badTypes  []string // paths whose values could not be decoded (configdecode.go)
}

// at records a problem at the position of key path (e.g. "route.1.endpoint"),
// falling back to the nearest enclosing table that has a position. A key
// whose value had the wrong type has been reported already: a problem that
// follows from its zero value would only mislead.
func (v *validator) at(path string, format string, args ...any) {
	if path != "" && v.hadTypeError(path) {
		return
	}
	v.problems = append(v.problems, Problem{Pos: v.pos(path), Msg: fmt.Sprintf(format, args...)})
}

// pos is where key path, or the nearest table holding it, was written.
func (v *validator) pos(path string) Position {
	for p := path; p != ""; {
		if got, ok := v.idx[p]; ok {
			return got
		}
		i := strings.LastIndexByte(p, '.')
		if i < 0 {
			break
		}
		p = p[:i]
	}
	return Position{}
}

// required records that table lacks key, unless key was written with a
// value of the wrong type (already reported).
func (v *validator) required(table, key, format string, args ...any) {
	if v.hadTypeError(table + "." + key) {
		return
	}
	v.at(table, format, args...)
}

// secret resolves s; with SkipSecrets it only checks the form of an env:
// or file: reference and returns a stand-in that passes every check a real
// value would.
func (v *validator) secret(s Secret) (string, error) {
	if !v.opts.SkipSecrets {
		return s.resolve(v.lookupEnv)
	}
	return s.standIn()
}

// checkKeys rejects every key that does not name a field exactly. The TOML
// decoder alone is not enough: it leaves unknown keys in Undecoded, and it
// matches field names case-insensitively, so "TOKEN" would quietly fill
// token. Keys are compared with the struct tags, case-sensitively.
func (v *validator) checkKeys(md toml.MetaData) {
	counts := map[string]int{}
	var unknown []string
	for _, key := range md.Keys() {
		plain := strings.Join(key, ".")
		if md.Type(key...) == "ArrayHash" {
			counts[plain]++
		}
		if slices.ContainsFunc(unknown, func(u string) bool { return strings.HasPrefix(plain, u+".") }) {
			continue // already reported its table
		}
		if ok, known := keyKnown(reflect.TypeFor[fileConfig](), key); !ok {
			path := strings.Join(withIndices(key, counts, false), ".")
			if md.Type(key...) == "ArrayHash" {
				path = strings.Join(withIndices(key, counts, true), ".")
			}
			msg := fmt.Sprintf("unknown key %q", plain)
			if known != "" {
				msg += fmt.Sprintf(" (did you mean %q?)", known)
			}
			v.at(path, "%s", msg)
			unknown = append(unknown, plain)
		}
	}
}

// keyKnown walks key through t by exact toml tag. When the last step fails
// it also returns a known key that differs only in case or by one typo
// class, to help the operator.
func keyKnown(t reflect.Type, key []string) (bool, string) {
	for _, k := range key {
		for t.Kind() == reflect.Slice || t.Kind() == reflect.Pointer {
			t = t.Elem()
		}
		switch t.Kind() {
		case reflect.Map:
			t = t.Elem()
			continue
		case reflect.Struct:
		default:
			return false, "" // a key below a plain value
		}
		if _, ok := reflect.PointerTo(t).MethodByName("UnmarshalText"); ok {
			return false, ""
		}
		found := false
		var near string
		for _, f := range reflect.VisibleFields(t) {
			if f.Anonymous {
				continue // its fields are promoted and visited themselves
			}
			tag := strings.Split(f.Tag.Get("toml"), ",")[0]
			if tag == k {
				t, found = f.Type, true
				break
			}
			if tag != "" && editDistance(strings.ToLower(tag), strings.ToLower(k)) <= 2 {
				near = tag
			}
		}
		if !found {
			return false, near
		}
	}
	return true, ""
}

var routeNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// build validates fc and turns it into runtime values, recording problems.
func (v *validator) build(fc *fileConfig) *Config {
	cfg := &Config{
		Source:         v.file,
		Listen:         fc.Server.Listen,
		RequestTimeout: fc.Server.RequestTimeout.Duration,
		CAFiles:        fc.Trust.CAFiles,
	}
	if cfg.Listen == "" {
		cfg.Listen = DefaultListen
	}
	if _, port, err := net.SplitHostPort(cfg.Listen); err != nil {
		v.at("server.listen", "listen %q: want host:port, e.g. \"127.0.0.1:8080\"", cfg.Listen)
	} else if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		v.at("server.listen", "listen %q: invalid port", cfg.Listen)
	}
	if cfg.RequestTimeout == 0 {
		cfg.RequestTimeout = DefaultRequestTimeout
	}
	v.buildAdmin(fc.Server, cfg)
	v.buildRetries(fc.Server, cfg)
	clients := fc.Server.AllowClients
	if clients == nil {
		clients = defaultAllowClients
	}
	for _, s := range clients {
		p, err := parseClient(s)
		if err != nil {
			v.at("server.allow_clients", "allow_clients: %v", err)
			continue
		}
		cfg.AllowClients = append(cfg.AllowClients, p)
	}

	roots, err := trust.LoadRoots(fc.Trust.CAFiles)
	if err != nil {
		v.at("trust.ca_files", "%v", err)
	}
	if roots != nil {
		roots = roots.WithPolicy(v.trustPolicy(&fc.Trust))
	}
	cfg.Roots = roots
	v.buildTLS(fc, cfg)
	v.buildGuards(fc, cfg)
	v.buildAudit(&fc.Audit, cfg)

	defer v.resolveFallbacks(fc, cfg)
	if len(fc.Routes) == 0 && !v.opts.AllowNoRoutes && !v.hadTypeError("route") {
		v.at("", "no [[route]] defined: postern would refuse every request")
	}
	seen := map[string]int{}
	for i := range fc.Routes {
		if r := v.buildRoute(i, &fc.Routes[i], cfg); r != nil {
			key := r.MatchHost + "\x00" + r.MatchPath
			if j, dup := seen[key]; dup && r.MatchPath != "" {
				v.at(fmt.Sprintf("route.%d.match_path", i), "route %q can never match: route %q before it has the same match_host and match_path", r.Name, cfg.Routes[j].Name)
			}
			seen[key] = len(cfg.Routes)
			cfg.Routes = append(cfg.Routes, r)
		}
	}
	names := map[string]bool{}
	for i, r := range fc.Routes {
		if r.Name != "" && names[r.Name] {
			v.at(fmt.Sprintf("route.%d.name", i), "route name %q is used twice", r.Name)
		}
		names[r.Name] = true
	}
	return cfg
}

func parseClient(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("%q is not a CIDR", s)
		}
		if p != p.Masked() {
			return netip.Prefix{}, fmt.Errorf("%q has host bits set (did you mean %s?)", s, p.Masked())
		}
		return p, nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%q is neither an address nor a CIDR", s)
	}
	return netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()), nil
}

func (v *validator) buildRoute(i int, rf *routeFile, cfg *Config) *Route {
	key := func(k string) string { return fmt.Sprintf("route.%d.%s", i, k) }
	name := rf.Name
	label := fmt.Sprintf("route %q", name)
	if name == "" {
		label = fmt.Sprintf("route #%d", i+1)
		v.required(fmt.Sprintf("route.%d", i), "name", "%s: name is required", label)
	} else if !routeNameRE.MatchString(name) {
		v.at(key("name"), "%s: name may use letters, digits, '.', '_' and '-' (at most 64)", label)
	}
	before := len(v.problems)
	r := &Route{
		Name:          name,
		MatchHost:     strings.ToLower(strings.TrimSpace(rf.MatchHost)),
		MatchPath:     rf.MatchPath,
		Inbound:       rf.Inbound,
		ProviderName:  rf.Provider,
		From:          rf.From,
		MaxRecipients: rf.MaxRecipients,
		TokenSource:   rf.Token.Source(),
		Country:       rf.DefaultCountry,
		FallbackName:  rf.Fallback,
	}
	r.Legacy = v.buildLegacy(i, label, rf, cfg)
	r.MaxSegments = v.checkSegments(i, rf, label)
	v.checkKeyOwners(i, rf, label)
	if r.MatchHost != "" && (strings.ContainsAny(r.MatchHost, "/:@ ") || strings.Contains(r.MatchHost, "//")) {
		v.at(key("match_host"), "%s: match_host %q must be a bare host name, without scheme, port or path", label, rf.MatchHost)
	}
	if r.MatchPath != "" && !strings.HasPrefix(r.MatchPath, "/") {
		v.at(key("match_path"), "%s: match_path %q must start with \"/\"", label, r.MatchPath)
	}
	if r.MaxRecipients == 0 {
		r.MaxRecipients = DefaultMaxRecipients
	} else if r.MaxRecipients < 1 || r.MaxRecipients > 600 {
		v.at(key("max_recipients"), "%s: max_recipients must be between 1 and 600", label)
	}
	if len(r.From) > 20 || strings.IndexFunc(r.From, func(c rune) bool { return c < 0x20 || c == 0x7f }) >= 0 {
		v.at(key("from"), "%s: from must be a sender id or number of at most 20 printable characters", label)
	}

	if rf.Inbound == "" && rf.MatchPath == "" {
		// A fallback-only route never reads a legacy request.
	} else if rf.Inbound == "" {
		v.required(fmt.Sprintf("route.%d", i), "inbound", "%s: inbound is required (one of %s)", label, strings.Join(rewrite.DialectNames(), ", "))
	} else if d, err := rewrite.NewDialect(rf.Inbound, v.dialectConfig(i, rf, label, r.MaxRecipients)); err != nil {
		v.atErrors(i, "inbound", label, err)
	} else {
		r.Dialect = d
	}

	var endpoint *url.URL
	if rf.Endpoint != "" {
		u, err := parseEndpoint(rf.Endpoint)
		if err != nil {
			v.at(key("endpoint"), "%s: endpoint: %v", label, err)
		}
		endpoint = u
	}

	var token string
	if rf.Token.IsSet() {
		t, err := v.secret(rf.Token)
		if err != nil {
			v.at(key("token"), "%s: token: %v", label, err)
		} else {
			token = t
			// Also as a form or URL would carry it, for template bodies.
			cfg.secrets = append(cfg.secrets, t, url.QueryEscape(t), url.PathEscape(t))
		}
	}

	switch {
	case rf.Provider == "":
		v.required(fmt.Sprintf("route.%d", i), "provider", "%s: provider is required (one of %s)", label, strings.Join(providerNames(), ", "))
	case rf.Provider == sandboxProvider:
		if rf.Endpoint != "" {
			v.at(key("endpoint"), "%s: the sandbox provider sends nothing, so it takes no endpoint", label)
		}
	case !slices.Contains(rewrite.ProviderNames(), rf.Provider):
		v.at(key("provider"), "%s: unknown provider %q (known: %s)", label, rf.Provider, strings.Join(providerNames(), ", "))
	case !rf.Token.IsSet() && !(rf.Provider == "template" && rf.Auth == "none"):
		v.required(fmt.Sprintf("route.%d", i), "token", "%s: token is required for provider %q", label, rf.Provider)
	case len(v.problems) == before:
		p, err := rewrite.NewProvider(rf.Provider, providerConfig(rf, endpoint, token))
		if err != nil {
			v.atErrors(i, "provider", label, err)
			break
		}
		r.Provider = p
		r.Endpoint = endpoint
		if r.Endpoint == nil {
			if d, ok := p.(interface{ DefaultEndpoint() *url.URL }); ok {
				r.Endpoint = d.DefaultEndpoint()
			}
		}
	}
	if len(v.problems) > before {
		return nil
	}
	return r
}

// parseEndpoint accepts only absolute https URLs: postern exists to keep
// messages and credentials off plaintext links, so an http:// endpoint is a
// configuration error, not a choice.
func parseEndpoint(s string) (*url.URL, error) {
	u, err := url.Parse(s)
	if err != nil {
		return nil, errors.New("not a valid URL")
	}
	switch {
	case u.Scheme == "http":
		return nil, fmt.Errorf("%q uses plain http://; postern only sends over https://", redactURL(u))
	case u.Scheme != "https":
		return nil, fmt.Errorf("%q must be an https:// URL", redactURL(u))
	case u.Host == "":
		return nil, fmt.Errorf("%q has no host", redactURL(u))
	case u.User != nil:
		return nil, errors.New("must not carry credentials in the URL; use token")
	case u.Fragment != "":
		return nil, errors.New("must not have a #fragment")
	}
	return u, nil
}

// redactURL drops userinfo and query, which may hold secrets.
func redactURL(u *url.URL) string {
	c := *u
	c.User = nil
	if c.RawQuery != "" {
		c.RawQuery = "<redacted>"
	}
	return c.String()
}

func providerNames() []string {
	return append(rewrite.ProviderNames(), sandboxProvider)
}

// editDistance is the Levenshtein distance, for "did you mean" hints.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}
