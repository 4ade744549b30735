package rewrite

import (
	"fmt"
	"maps"
	"slices"
	"strings"
)

// dialectTable and providerTable map config names to constructors. They are
// explicit and never written after init, so what a config name means is
// visible in one place and no package can register behind our back.
var dialectTable = map[string]func(DialectConfig) (Dialect, error){
	"clickatell-http": func(c DialectConfig) (Dialect, error) {
		return ClickatellHTTP{DefaultCountry: c.DefaultCountry, MaxRecipients: c.MaxRecipients}, nil
	},
	"query": func(c DialectConfig) (Dialect, error) { return NewQuery(c) },
}

var providerTable = map[string]func(Config) (Provider, error){
	"clickatell-rest":     func(c Config) (Provider, error) { return NewClickatellREST(c) },
	"clickatell-one":      func(c Config) (Provider, error) { return NewClickatellOne(c) },
	"clickatell-platform": func(c Config) (Provider, error) { return NewClickatellPlatform(c) },
	"twilio":              func(c Config) (Provider, error) { return NewTwilio(c) },
	"template":            func(c Config) (Provider, error) { return NewTemplate(c) },
}

// NewDialect returns the inbound dialect configured as name.
func NewDialect(name string, cfg DialectConfig) (Dialect, error) {
	f, ok := dialectTable[name]
	if !ok {
		return nil, fmt.Errorf("unknown dialect %q (known: %s)", name, strings.Join(DialectNames(), ", "))
	}
	return f(cfg)
}

// NewProvider returns the provider configured as name, with cfg validated.
func NewProvider(name string, cfg Config) (Provider, error) {
	f, ok := providerTable[name]
	if !ok {
		return nil, fmt.Errorf("unknown provider %q (known: %s)", name, strings.Join(ProviderNames(), ", "))
	}
	p, err := f(cfg)
	if err != nil {
		return nil, err
	}
	return p, nil
}

// DialectNames lists the dialect config names, sorted. The slice is new on
// each call, so callers may append to it.
func DialectNames() []string {
	return slices.Sorted(maps.Keys(dialectTable))
}

// ProviderNames lists the provider config names, sorted. The slice is new on
// each call, so callers may append to it.
func ProviderNames() []string {
	return slices.Sorted(maps.Keys(providerTable))
}
