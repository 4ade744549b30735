package proxy

import (
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"

	"github.com/postern/postern/rewrite"
)

// DefaultMaxSegments is how many SMS parts a message may need by default:
// six parts hold 918 GSM-7 or 402 UCS-2 characters, far beyond any guest
// password text, and stop a runaway template from costing a fortune.
const DefaultMaxSegments = 6

// routeDeliveryKeys are the route keys for dialects, numbers, segments,
// failover and the providers beyond Clickatell. They are embedded in
// routeFile, so each is a plain [[route]] key; docs/configuration.md documents
// them.
type routeDeliveryKeys struct {
	DefaultCountry string `toml:"default_country"`
	MaxSegments    int    `toml:"max_segments"`
	Fallback       string `toml:"fallback"`

	// query dialect
	ToParam      string `toml:"to_param"`
	TextParam    string `toml:"text_param"`
	FromParam    string `toml:"from_param"`
	ReplySuccess string `toml:"reply_success"`
	ReplyFailure string `toml:"reply_failure"`

	// twilio
	AccountSID          string `toml:"account_sid"`
	APIKeySID           string `toml:"api_key_sid"`
	MessagingServiceSID string `toml:"messaging_service_sid"`

	// template
	Method       string            `toml:"method"`
	ContentType  string            `toml:"content_type"`
	Headers      map[string]string `toml:"headers"`
	Auth         string            `toml:"auth"`
	AuthHeader   string            `toml:"auth_header"`
	Username     string            `toml:"username"`
	Body         map[string]any    `toml:"body"`
	IDPointer    string            `toml:"id_pointer"`
	ErrorPointer string            `toml:"error_pointer"`
}

// keyOwners says which inbound dialect or provider each specialised key
// belongs to, so a key set on the wrong route is an error rather than
// silently ignored.
var keyOwners = map[string][]string{
	"to_param": {"query"}, "text_param": {"query"}, "from_param": {"query"},
	"reply_success": {"query"}, "reply_failure": {"query"},
	"account_sid": {"twilio"}, "api_key_sid": {"twilio"}, "messaging_service_sid": {"twilio"},
	"method": {"template"}, "content_type": {"template"}, "headers": {"template"}, "auth": {"template"},
	"auth_header": {"template"}, "username": {"template"}, "body": {"template"},
	"id_pointer": {"template"}, "error_pointer": {"template"},
}

// setKeys lists the specialised keys a route sets, for keyOwners.
func (k *routeDeliveryKeys) setKeys() map[string]bool {
	return map[string]bool{
		"to_param": k.ToParam != "", "text_param": k.TextParam != "", "from_param": k.FromParam != "",
		"reply_success": k.ReplySuccess != "", "reply_failure": k.ReplyFailure != "",
		"account_sid": k.AccountSID != "", "api_key_sid": k.APIKeySID != "", "messaging_service_sid": k.MessagingServiceSID != "",
		"method": k.Method != "", "content_type": k.ContentType != "", "headers": k.Headers != nil, "auth": k.Auth != "",
		"auth_header": k.AuthHeader != "", "username": k.Username != "", "body": k.Body != nil,
		"id_pointer": k.IDPointer != "", "error_pointer": k.ErrorPointer != "",
	}
}

// checkKeyOwners reports every specialised key set on a route whose dialect
// and provider do not use it.
func (v *validator) checkKeyOwners(i int, rf *routeFile, label string) {
	set := rf.setKeys()
	for _, k := range slices.Sorted(mapsKeys(set)) {
		owners := keyOwners[k]
		if set[k] && !slices.Contains(owners, rf.Inbound) && !slices.Contains(owners, rf.Provider) {
			v.at(fmt.Sprintf("route.%d.%s", i, k), "%s: %s is only used by %s", label, k, strings.Join(owners, ", "))
		}
	}
}

func mapsKeys(m map[string]bool) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// dialectConfig validates the route's dialect keys. The dialect counts
// recipients against maxRecipients before it parses any number.
func (v *validator) dialectConfig(i int, rf *routeFile, label string, maxRecipients int) rewrite.DialectConfig {
	if c := rf.DefaultCountry; c != "" && !rewrite.ValidCountry(c) {
		v.at(fmt.Sprintf("route.%d.default_country", i), "%s: default_country %q is not an ISO 3166 country code libphonenumber knows (e.g. \"GB\", \"US\")", label, c)
	}
	return rewrite.DialectConfig{
		DefaultCountry: rf.DefaultCountry,
		MaxRecipients:  maxRecipients,
		ToParam:        rf.ToParam, TextParam: rf.TextParam, FromParam: rf.FromParam,
		ReplySuccess: rf.ReplySuccess, ReplyFailure: rf.ReplyFailure,
	}
}

// providerConfig gathers the route's provider keys; the provider validates.
func providerConfig(rf *routeFile, endpoint *url.URL, token string) rewrite.Config {
	cfg := rewrite.Config{
		Endpoint: endpoint, Token: token, From: rf.From,
		AccountSID: rf.AccountSID, APIKeySID: rf.APIKeySID, MessagingServiceSID: rf.MessagingServiceSID,
	}
	if rf.Provider == "template" {
		cfg.Template = &rewrite.TemplateConfig{
			Method: rf.Method, ContentType: rf.ContentType, Headers: rf.Headers, Auth: rf.Auth,
			AuthHeader: rf.AuthHeader, Username: rf.Username, Body: rf.Body,
			IDPointer: rf.IDPointer, ErrorPointer: rf.ErrorPointer,
		}
	}
	return cfg
}

// atErrors records err, placing each rewrite.KeyError at its key's line.
func (v *validator) atErrors(i int, fallbackKey, label string, err error) {
	var list []error
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		list = j.Unwrap()
	} else {
		list = []error{err}
	}
	for _, e := range list {
		key := fallbackKey
		var ke *rewrite.KeyError
		if errors.As(e, &ke) {
			key = ke.Key
		}
		v.at(fmt.Sprintf("route.%d.%s", i, key), "%s: %v", label, e)
	}
}

// checkSegments validates max_segments and fills its default.
func (v *validator) checkSegments(i int, rf *routeFile, label string) int {
	switch n := rf.MaxSegments; {
	case n == 0:
		return DefaultMaxSegments
	case n < 1 || n > 255:
		v.at(fmt.Sprintf("route.%d.max_segments", i), "%s: max_segments must be between 1 and 255", label)
	}
	return rf.MaxSegments
}

// resolveFallbacks links each route to its fallback: it must name another
// route, and following fallbacks must never come back to where it started.
// A route without match_path is only reachable as a fallback, so it must be
// named by one.
func (v *validator) resolveFallbacks(fc *fileConfig, cfg *Config) {
	byName := map[string]*Route{}
	for _, r := range cfg.Routes {
		byName[r.Name] = r
	}
	index := map[string]int{}
	for i, rf := range fc.Routes {
		if _, ok := index[rf.Name]; !ok {
			index[rf.Name] = i
		}
	}
	named := map[string]bool{}
	for _, r := range cfg.Routes {
		if r.FallbackName == "" {
			continue
		}
		key := fmt.Sprintf("route.%d.fallback", index[r.Name])
		fb, ok := byName[r.FallbackName]
		switch {
		case r.FallbackName == r.Name:
			v.at(key, "route %q: fallback names the route itself", r.Name)
			continue
		case !ok:
			if _, exists := index[r.FallbackName]; !exists {
				v.at(key, "route %q: fallback %q is not a route name", r.Name, r.FallbackName)
			} // else that route has problems of its own, reported already
			continue
		}
		named[fb.Name] = true
		r.Fallback = fb
	}
	for _, r := range cfg.Routes {
		seen := map[*Route]bool{r: true}
		for f := r.Fallback; f != nil; f = f.Fallback {
			if seen[f] {
				v.at(fmt.Sprintf("route.%d.fallback", index[r.Name]), "route %q: fallbacks form a cycle back to %q", r.Name, f.Name)
				break
			}
			seen[f] = true
		}
	}
	for _, r := range cfg.Routes {
		if r.MatchPath == "" && !named[r.Name] {
			v.at(fmt.Sprintf("route.%d", index[r.Name]), "route %q: match_path is required (only a route named as another's fallback may omit it)", r.Name)
		}
	}
}
