package config

import (
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strings"

	"github.com/postern/postern/rewrite"
)

// routeFile mirrors one [[route]].
type routeFile struct {
	Name          string `toml:"name"`
	MatchHost     string `toml:"match_host"`
	MatchPath     string `toml:"match_path"`
	MatchDomain   string `toml:"match_domain"`
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

// buildRoutes builds every [[route]] in file order and links fallbacks.
func (v *validator) buildRoutes(fc *fileConfig, cfg *Config) {
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
}

// buildProvider validates the route's endpoint, token and provider keys and
// builds its rewrite.Provider; the sandbox provider has none. before is the
// problem count when the route started: a route with problems of its own
// builds no provider, whose errors would only repeat them.
func (v *validator) buildProvider(i int, rf *routeFile, r *Route, label string, before int, cfg *Config) {
	key := func(k string) string { return fmt.Sprintf("route.%d.%s", i, k) }
	var endpoint *url.URL
	if rf.Endpoint != "" {
		u, err := parseEndpoint(rf.Endpoint)
		if err != nil {
			v.at(key("endpoint"), "%s: endpoint: %v", label, err)
		}
		endpoint = u
	}

	// Validation builds the provider with a stand-in token; provisioning
	// resolves the real one and builds it again (provisionToken).
	var token string
	if rf.Token.IsSet() {
		token = TokenStandIn
		v.later(func() { v.provisionToken(i, rf, r, label, endpoint, cfg) })
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
}

var routeNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

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
		MatchDomain:   strings.ToLower(strings.TrimSpace(rf.MatchDomain)),
		Inbound:       rf.Inbound,
		ProviderName:  rf.Provider,
		From:          rf.From,
		MaxRecipients: rf.MaxRecipients,
		TokenSource:   rf.Token.Source(),
		Country:       rf.DefaultCountry,
		FallbackName:  rf.Fallback,
		UpstreamHTTP2: rf.UpstreamHTTP2,
	}
	v.buildLegacy(i, label, rf, r, cfg)
	r.MaxSegments = v.checkSegments(i, rf, label)
	v.checkKeyOwners(i, rf, label)
	if r.MatchHost != "" && (strings.ContainsAny(r.MatchHost, "/:@ ") || strings.Contains(r.MatchHost, "//")) {
		v.at(key("match_host"), "%s: match_host %q must be a bare host name, without scheme, port or path", label, rf.MatchHost)
	}
	if r.MatchPath != "" && !strings.HasPrefix(r.MatchPath, "/") {
		v.at(key("match_path"), "%s: match_path %q must start with \"/\"", label, r.MatchPath)
	}
	if r.MaxRecipients == 0 {
		r.MaxRecipients = defaultMaxRecipients
	} else if r.MaxRecipients < 1 || r.MaxRecipients > 600 {
		v.at(key("max_recipients"), "%s: max_recipients must be between 1 and 600", label)
	}
	if len(r.From) > 20 || strings.IndexFunc(r.From, func(c rune) bool { return c < 0x20 || c == 0x7f }) >= 0 {
		v.at(key("from"), "%s: from must be a sender id or number of at most 20 printable characters", label)
	}

	if rewrite.IsMailDialect(rf.Inbound) {
		v.buildMailRoute(i, rf, r, label, cfg)
	} else if rf.MatchDomain != "" {
		v.at(key("match_domain"), "%s: match_domain applies only to mail routes (inbound %s)", label, strings.Join(rewrite.MailDialectNames(), " or "))
	} else if rf.Inbound == "" && rf.MatchPath == "" {
		// A fallback-only route never reads a legacy request.
	} else if rf.Inbound == "" {
		v.required(fmt.Sprintf("route.%d", i), "inbound", "%s: inbound is required (one of %s)", label, strings.Join(rewrite.InboundNames(), ", "))
	} else if d, err := rewrite.NewDialect(rf.Inbound, v.dialectConfig(i, rf, label, r.MaxRecipients)); err != nil {
		v.atErrors(i, "inbound", label, err)
	} else {
		r.Dialect = d
	}

	v.buildProvider(i, rf, r, label, before, cfg)
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

// provisionToken resolves the route's token and, unless the config is for
// translate (MaskTokens), builds the provider validation built again with
// it: a problem of the real token (a provider may refuse its form) is
// reported at the token.
func (v *validator) provisionToken(i int, rf *routeFile, r *Route, label string, endpoint *url.URL, cfg *Config) {
	t, err := v.secret(rf.Token)
	if err != nil {
		v.at(fmt.Sprintf("route.%d.token", i), "%s: token: %v", label, err)
		return
	}
	// Also as a form or URL would carry it, for template bodies.
	cfg.secrets = append(cfg.secrets, t, url.QueryEscape(t), url.PathEscape(t))
	if v.opts.MaskTokens || r.Provider == nil {
		return
	}
	p, err := rewrite.NewProvider(rf.Provider, providerConfig(rf, endpoint, t))
	if err != nil {
		v.atErrors(i, "provider", label, err)
		r.Provider = nil
		return
	}
	r.Provider = p
}

// buildMailRoute validates a route whose inbound is a mail dialect. It
// takes mail from the SMTP listener only: match_host and match_path, which
// would let HTTP requests reach it too, are refused, and an HTTP route
// never has match_domain, so no request is ever taken by both.
func (v *validator) buildMailRoute(i int, rf *routeFile, r *Route, label string, cfg *Config) {
	key := func(k string) string { return fmt.Sprintf("route.%d.%s", i, k) }
	if cfg.SMTP.Listen == "" {
		v.at(key("inbound"), "%s: inbound %q takes mail, but [smtp] listen is not set, so no mail would reach it", label, rf.Inbound)
	}
	if rf.MatchHost != "" || rf.MatchPath != "" {
		v.at(key("inbound"), "%s: inbound %q takes mail from [smtp], so match_host and match_path do not apply (use match_domain)", label, rf.Inbound)
	}
	switch d := r.MatchDomain; {
	case d == "":
		v.required(fmt.Sprintf("route.%d", i), "match_domain", "%s: match_domain is required for inbound %q (the recipient domain, or \"*\")", label, rf.Inbound)
	case d != "*" && !bareHost(d):
		v.at(key("match_domain"), "%s: match_domain %q must be a bare domain name or \"*\"", label, rf.MatchDomain)
	}
	md, err := rewrite.NewMailDialect(rf.Inbound, v.dialectConfig(i, rf, label, r.MaxRecipients))
	if err != nil {
		v.atErrors(i, "inbound", label, err)
		return
	}
	r.Mail = md
}
