package rewrite

import (
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
)

// dialectTable and providerTable map config names to constructors, one line
// each. They are explicit and never written after init, so what a config
// name means is visible in one place and no package can register behind our
// back. Each entry also names the dialect's or provider's own config struct
// (inferred from its constructor), whose toml tags are the route keys it
// owns: adding a provider is its file, one line here and, when it has keys
// of its own, one embed in RouteKeys (TestRegistryMatchesRouteKeys checks
// the two agree).
var dialectTable = map[string]entry[DialectConfig, Dialect]{
	"clickatell-http": dialect(keyless[ClickatellHTTPConfig](NewClickatellHTTP)),
	"query":           dialect(NewQuery),
}

// mailDialectTable holds the inbound dialects of mail that arrives over
// SMTP ([smtp]); their names share the route's "inbound" key with
// dialectTable's, and no name is in both.
var mailDialectTable = map[string]entry[DialectConfig, MailDialect]{
	"clickatell-smtp": mailDialect(keyless[ClickatellSMTPConfig](NewClickatellSMTP)),
	"smtp":            mailDialect(NewSMTP),
}

var providerTable = map[string]entry[Config, Provider]{
	"clickatell-one":      provider(keyless[ClickatellOneConfig](NewClickatellOne)),
	"clickatell-platform": provider(keyless[ClickatellPlatformConfig](NewClickatellPlatform)),
	"clickatell-rest":     provider(keyless[ClickatellRESTConfig](NewClickatellREST)),
	"template":            provider(NewTemplate),
	"twilio":              provider(NewTwilio),
}

// RouteKeys holds every dialect's and provider's own [[route]] keys, flat,
// as config.toml spells them. The proxy's config decoder embeds it in its
// route table, so a key the registry knows is a known key; NewDialect and
// NewProvider pick out the struct of the one they build. Each embedded
// struct belongs to exactly one registered dialect or provider, and no two
// share a key.
type RouteKeys struct {
	QueryConfig
	TwilioConfig
	TemplateConfig
	SMTPConfig
}

// entry is one registered dialect or provider: its own config struct and a
// constructor that takes it out of RouteKeys.
type entry[Common, T any] struct {
	keys reflect.Type // the config struct; its toml tags are the keys it owns
	new  func(Common, *RouteKeys) (T, error)
}

// dialect and provider register a constructor taking the route's common
// settings and the dialect's or provider's own config struct C.
func dialect[C any, D Dialect](build func(DialectConfig, C) (D, error)) entry[DialectConfig, Dialect] {
	return register[DialectConfig, Dialect](build)
}

func mailDialect[C any, D MailDialect](build func(DialectConfig, C) (D, error)) entry[DialectConfig, MailDialect] {
	return register[DialectConfig, MailDialect](build)
}

func provider[C any, P Provider](build func(Config, C) (P, error)) entry[Config, Provider] {
	return register[Config, Provider](build)
}

func register[Common, T, C any, V any](build func(Common, C) (V, error)) entry[Common, T] {
	return entry[Common, T]{keys: reflect.TypeFor[C](), new: func(c Common, k *RouteKeys) (T, error) {
		var zero T
		v, err := build(c, keysOf[C](k))
		if err != nil {
			return zero, err // never a typed nil inside the interface
		}
		return any(v).(T), nil
	}}
}

// keyless adapts a constructor for a dialect or provider whose config
// struct C holds no keys beyond the route's common ones.
func keyless[C, Common, V any](build func(Common) (V, error)) func(Common, C) (V, error) {
	return func(c Common, _ C) (V, error) { return build(c) }
}

// keysOf returns the C embedded in k, or C's zero value when k is nil or C
// has no keys (and so is not embedded).
func keysOf[C any](k *RouteKeys) C {
	var c C
	if k == nil {
		return c
	}
	t := reflect.TypeFor[C]()
	rv := reflect.ValueOf(k).Elem()
	for i := range rv.NumField() {
		if f := rv.Type().Field(i); f.Anonymous && f.Type == t {
			return rv.Field(i).Interface().(C)
		}
	}
	return c
}

// DialectSettings is a route's input to NewDialect: what every dialect
// takes, and the route's keys, of which the dialect reads only its own
// struct (Keys nil: none set).
type DialectSettings struct {
	DialectConfig
	Keys *RouteKeys
}

// ProviderSettings is a route's input to NewProvider: what every provider
// takes, and the route's keys, of which the provider reads only its own
// struct (Keys nil: none set).
type ProviderSettings struct {
	Config
	Keys *RouteKeys
}

// NewDialect returns the inbound dialect configured as name.
func NewDialect(name string, s DialectSettings) (Dialect, error) {
	e, ok := dialectTable[name]
	if !ok {
		return nil, fmt.Errorf("unknown dialect %q (known: %s)", name, strings.Join(DialectNames(), ", "))
	}
	return e.new(s.DialectConfig, s.Keys)
}

// NewMailDialect returns the mail dialect configured as name (an SMTP
// route's inbound).
func NewMailDialect(name string, s DialectSettings) (MailDialect, error) {
	e, ok := mailDialectTable[name]
	if !ok {
		return nil, fmt.Errorf("unknown mail inbound %q (known: %s)", name, strings.Join(MailDialectNames(), ", "))
	}
	return e.new(s.DialectConfig, s.Keys)
}

// IsMailDialect reports whether name is a mail dialect: a route whose
// inbound it is takes mail from the SMTP listener, never HTTP requests.
func IsMailDialect(name string) bool {
	_, ok := mailDialectTable[name]
	return ok
}

// MailDialectNames lists the mail dialect config names, sorted; the slice
// is new on each call.
func MailDialectNames() []string {
	return slices.Sorted(maps.Keys(mailDialectTable))
}

// InboundNames lists every inbound name, HTTP and mail dialects, sorted.
func InboundNames() []string {
	return slices.Sorted(slices.Values(append(DialectNames(), MailDialectNames()...)))
}

// NewProvider returns the provider configured as name, validated.
func NewProvider(name string, s ProviderSettings) (Provider, error) {
	e, ok := providerTable[name]
	if !ok {
		return nil, fmt.Errorf("unknown provider %q (known: %s)", name, strings.Join(ProviderNames(), ", "))
	}
	return e.new(s.Config, s.Keys)
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

// DialectKeys lists the route keys the dialect (HTTP or mail) name owns, sorted; nil for
// an unknown name or a dialect with none.
func DialectKeys(name string) []string {
	if e, ok := dialectTable[name]; ok {
		return tomlKeys(e.keys)
	}
	if e, ok := mailDialectTable[name]; ok {
		return tomlKeys(e.keys)
	}
	return nil
}

// ProviderKeys lists the route keys the provider name owns, sorted; nil
// for an unknown name (such as the proxy's own "sandbox") or a provider
// with none.
func ProviderKeys(name string) []string {
	if e, ok := providerTable[name]; ok {
		return tomlKeys(e.keys)
	}
	return nil
}

// KeyOwners names the dialects, then the providers, that own key, each
// group sorted: what to tell an operator who set it on another route.
func KeyOwners(key string) []string {
	var owners []string
	for _, name := range InboundNames() {
		if slices.Contains(DialectKeys(name), key) {
			owners = append(owners, name)
		}
	}
	for _, name := range ProviderNames() {
		if slices.Contains(ProviderKeys(name), key) {
			owners = append(owners, name)
		}
	}
	return owners
}

// Set lists the keys of k that hold a value (a non-empty string, a table
// that is present), sorted, so the proxy can refuse keys whose owner the
// route does not use.
func (k *RouteKeys) Set() []string {
	var set []string
	rv := reflect.ValueOf(k).Elem()
	for _, f := range reflect.VisibleFields(rv.Type()) {
		if tag := tomlTag(f); tag != "" && !f.Anonymous && !rv.FieldByIndex(f.Index).IsZero() {
			set = append(set, tag)
		}
	}
	slices.Sort(set)
	return set
}

// tomlKeys lists the toml tags of struct t's fields, promoted ones
// included, sorted.
func tomlKeys(t reflect.Type) []string {
	var keys []string
	for _, f := range reflect.VisibleFields(t) {
		if tag := tomlTag(f); tag != "" && !f.Anonymous {
			keys = append(keys, tag)
		}
	}
	slices.Sort(keys)
	return keys
}

func tomlTag(f reflect.StructField) string {
	return strings.Split(f.Tag.Get("toml"), ",")[0]
}
