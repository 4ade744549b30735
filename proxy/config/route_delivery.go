package config

import (
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"

	"github.com/postern/postern/rewrite"
)

// routeDeliveryKeys are the route keys for numbers, segments and failover,
// and every dialect's and provider's own keys (rewrite.RouteKeys: rewrite's
// registry says which belong to whom). They are embedded in routeFile, so
// each is a plain [[route]] key; README.md documents them.
type routeDeliveryKeys struct {
	DefaultCountry string `toml:"default_country"`
	MaxSegments    int    `toml:"max_segments"`
	Fallback       string `toml:"fallback"`
	UpstreamHTTP2  bool   `toml:"upstream_http2"`
	rewrite.RouteKeys
}

// checkKeyOwners reports every dialect or provider key set on a route whose
// dialect and provider do not own it, so that it is an error rather than
// silently ignored.
func (v *validator) checkKeyOwners(i int, rf *routeFile, label string) {
	for _, k := range rf.RouteKeys.Set() {
		if !slices.Contains(rewrite.DialectKeys(rf.Inbound), k) && !slices.Contains(rewrite.ProviderKeys(rf.Provider), k) {
			v.at(fmt.Sprintf("route.%d.%s", i, k), "%s: %s is only used by %s", label, k, strings.Join(rewrite.KeyOwners(k), ", "))
		}
	}
}

// dialectConfig validates the route's common dialect keys; the dialect
// validates its own. It counts recipients against maxRecipients before it
// parses any number.
func (v *validator) dialectConfig(i int, rf *routeFile, label string, maxRecipients int) rewrite.DialectSettings {
	if c := rf.DefaultCountry; c != "" && !rewrite.ValidCountry(c) {
		v.at(fmt.Sprintf("route.%d.default_country", i), "%s: default_country %q is not an ISO 3166 country code libphonenumber knows (e.g. \"GB\", \"US\")", label, c)
	}
	return rewrite.DialectSettings{
		DialectConfig: rewrite.DialectConfig{DefaultCountry: rf.DefaultCountry, MaxRecipients: maxRecipients},
		Keys:          &rf.RouteKeys,
	}
}

// providerConfig gathers the route's provider settings; the provider takes
// its own keys from rf.RouteKeys and validates.
func providerConfig(rf *routeFile, endpoint *url.URL, token string) rewrite.ProviderSettings {
	return rewrite.ProviderSettings{Config: rewrite.Config{Endpoint: endpoint, Token: token, From: rf.From}, Keys: &rf.RouteKeys}
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
		return defaultMaxSegments
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
		if r.MatchPath == "" && r.Mail == nil && !named[r.Name] {
			v.at(fmt.Sprintf("route.%d", index[r.Name]), "route %q: match_path is required (only a route named as another's fallback may omit it)", r.Name)
		}
	}
}
