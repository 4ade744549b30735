package rewrite

import (
	"net/url"
	"reflect"
	"strings"
	"testing"
)

func TestRegistry_Names(t *testing.T) {
	if got, want := DialectNames(), []string{"clickatell-http", "query"}; !reflect.DeepEqual(got, want) {
		t.Errorf("DialectNames(): got %q, want %q", got, want)
	}
	if got, want := ProviderNames(), []string{"clickatell-one", "clickatell-platform", "clickatell-rest", "template", "twilio"}; !reflect.DeepEqual(got, want) {
		t.Errorf("ProviderNames(): got %q, want %q", got, want)
	}
	// Callers append "sandbox"; that must not leak into the next call.
	_ = append(ProviderNames(), "sandbox")
	if got := ProviderNames(); len(got) != 5 {
		t.Errorf("ProviderNames() after append: got %q", got)
	}
}

func TestRegistry_Unknown(t *testing.T) {
	_, err := NewProvider("nexmo", ProviderSettings{Config: Config{Token: "k"}})
	if want := `unknown provider "nexmo" (known: clickatell-one, clickatell-platform, clickatell-rest, template, twilio)`; err == nil || err.Error() != want {
		t.Errorf("NewProvider(%q): got %v, want %q", "nexmo", err, want)
	}
	_, err = NewDialect("twilio", DialectSettings{})
	if want := `unknown dialect "twilio" (known: clickatell-http, query)`; err == nil || err.Error() != want {
		t.Errorf("NewDialect(%q): got %v, want %q", "twilio", err, want)
	}
	if d, err := NewDialect("clickatell-http", DialectSettings{}); err != nil || d == nil {
		t.Errorf("NewDialect(%q): got %v, %v", "clickatell-http", d, err)
	}
}

func TestRegistry_ProviderDefaults(t *testing.T) {
	for name, want := range map[string]string{
		"clickatell-rest":     "https://api.clickatell.com/rest/message",
		"clickatell-one":      "https://platform.clickatell.com/v1/message",
		"clickatell-platform": "https://platform.clickatell.com/messages",
	} {
		p, err := NewProvider(name, ProviderSettings{Config: Config{Token: "k"}})
		if err != nil {
			t.Fatalf("NewProvider(%q): %v", name, err)
		}
		if got := p.(interface{ DefaultEndpoint() *url.URL }).DefaultEndpoint().String(); got != want {
			t.Errorf("NewProvider(%q).DefaultEndpoint(): got %q, want %q", name, got, want)
		}
		if got := p.MaxRecipients(); got != 200 {
			t.Errorf("NewProvider(%q).MaxRecipients(): got %d, want 200", name, got)
		}
	}
}

func TestRegistry_ProviderConfigErrors(t *testing.T) {
	const secret = "s3cr3t-T0ken"
	httpURL, _ := url.Parse("http://api.clickatell.com/rest/message")
	userURL, _ := url.Parse("https://u:p@api.clickatell.com/rest/message")
	for _, tc := range []struct {
		name string
		cfg  Config
		want []string // substrings, all must appear
	}{
		{"empty token", Config{}, []string{"token is required"}},
		{"bearer pasted", Config{Token: "Bearer " + secret}, []string{"token must not contain spaces"}},
		{"newline", Config{Token: secret + "\r\nX-Evil: 1"}, []string{"control characters"}},
		{"plain http", Config{Token: secret, Endpoint: httpURL}, []string{"https://"}},
		{"userinfo", Config{Token: secret, Endpoint: userURL}, []string{"credentials"}},
		{"bad from", Config{Token: secret, From: "Far Too Long Sender"}, []string{"from must be"}},
		{"all at once", Config{From: "x!"}, []string{"token is required", "from must be"}},
	} {
		for _, name := range []string{"clickatell-one", "clickatell-platform", "clickatell-rest"} {
			p, err := NewProvider(name, ProviderSettings{Config: tc.cfg})
			if err == nil || p != nil {
				t.Errorf("%s: NewProvider(%q): got %v, %v, want error", tc.name, name, p, err)
				continue
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("%s: NewProvider(%q): got %q, want it to mention %q", tc.name, name, err, w)
				}
			}
			if strings.Contains(err.Error(), secret) {
				t.Errorf("%s: NewProvider(%q): error %q quotes the token", tc.name, name, err)
			}
		}
	}
}

func TestRegistry_EndpointIsCopied(t *testing.T) {
	u, _ := url.Parse("https://eu.example.test/v1/message")
	p, err := NewClickatellOne(Config{Token: "k", Endpoint: u})
	if err != nil {
		t.Fatal(err)
	}
	u.Host = "evil.test"
	if got := p.DefaultEndpoint().Host; got != "eu.example.test" {
		t.Errorf("endpoint after caller mutation: got host %q, want %q", got, "eu.example.test")
	}
}

// TestRegistryMatchesRouteKeys: every registered config struct with keys
// is embedded in RouteKeys (else the proxy would call its keys unknown),
// every struct embedded there is registered (else its keys would belong to
// no one), every field is a tagged route key, and no two owners share a
// key (the decoder would fill only one of them).
func TestRegistryMatchesRouteKeys(t *testing.T) {
	embedded := map[reflect.Type]bool{}
	for _, f := range reflect.VisibleFields(reflect.TypeFor[RouteKeys]()) {
		switch {
		case f.Anonymous:
			embedded[f.Type] = true
		case tomlTag(f) == "":
			t.Errorf("RouteKeys field %s has no toml tag", f.Name)
		}
	}
	registered := map[reflect.Type]string{}
	owner := map[string]string{}
	check := func(kind, name string, cfg reflect.Type) {
		if cfg.Kind() != reflect.Struct {
			t.Errorf("%s %q: config %v is not a struct", kind, name, cfg)
			return
		}
		registered[cfg] = name
		keys := tomlKeys(cfg)
		if len(keys) != cfg.NumField() {
			t.Errorf("%s %q: config %v has fields without a toml tag", kind, name, cfg)
		}
		if len(keys) > 0 && !embedded[cfg] {
			t.Errorf("%s %q: config %v is not embedded in RouteKeys", kind, name, cfg)
		}
		for _, k := range keys {
			if o, dup := owner[k]; dup {
				t.Errorf("key %q: owned by both %s and %s", k, o, name)
			}
			owner[k] = name
		}
	}
	for name, e := range dialectTable {
		check("dialect", name, e.keys)
	}
	for name, e := range mailDialectTable {
		if _, dup := dialectTable[name]; dup {
			t.Errorf("inbound %q is both an HTTP and a mail dialect", name)
		}
		check("mail dialect", name, e.keys)
	}
	for name, e := range providerTable {
		check("provider", name, e.keys)
	}
	for typ := range embedded {
		if _, ok := registered[typ]; !ok {
			t.Errorf("RouteKeys embeds %v, which no dialect or provider registers", typ)
		}
	}
}

func TestRegistry_Keys(t *testing.T) {
	for _, tc := range []struct {
		got, want []string
		call      string
	}{
		{DialectKeys("query"), []string{"from_param", "reply_failure", "reply_success", "text_param", "to_param"}, `DialectKeys("query")`},
		{DialectKeys("clickatell-http"), nil, `DialectKeys("clickatell-http")`},
		{DialectKeys("twilio"), nil, `DialectKeys("twilio")`},
		{ProviderKeys("twilio"), []string{"account_sid", "api_key_sid", "messaging_service_sid"}, `ProviderKeys("twilio")`},
		{ProviderKeys("template"), []string{"auth", "auth_header", "body", "content_type", "error_pointer", "headers", "id_pointer", "method", "username"}, `ProviderKeys("template")`},
		{ProviderKeys("clickatell-one"), nil, `ProviderKeys("clickatell-one")`},
		{ProviderKeys("sandbox"), nil, `ProviderKeys("sandbox")`},
		{KeyOwners("to_param"), []string{"query"}, `KeyOwners("to_param")`},
		{KeyOwners("account_sid"), []string{"twilio"}, `KeyOwners("account_sid")`},
		{KeyOwners("body"), []string{"template"}, `KeyOwners("body")`},
		{DialectKeys("smtp"), []string{"text_from"}, `DialectKeys("smtp")`},
		{DialectKeys("clickatell-smtp"), nil, `DialectKeys("clickatell-smtp")`},
		{KeyOwners("text_from"), []string{"smtp"}, `KeyOwners("text_from")`},
		{InboundNames(), []string{"clickatell-http", "clickatell-smtp", "query", "smtp"}, "InboundNames()"},
		{KeyOwners("endpoint"), nil, `KeyOwners("endpoint")`},
	} {
		if !reflect.DeepEqual(tc.got, tc.want) {
			t.Errorf("%s: got %q, want %q", tc.call, tc.got, tc.want)
		}
	}
}

func TestRouteKeys_Set(t *testing.T) {
	var k RouteKeys
	if got := k.Set(); got != nil {
		t.Errorf("RouteKeys{}.Set(): got %q, want none", got)
	}
	k.ToParam, k.AccountSID, k.Body = "phone", "AC1", map[string]any{}
	k.Method = "" // empty strings are unset, as an absent key
	if got, want := k.Set(), []string{"account_sid", "body", "to_param"}; !reflect.DeepEqual(got, want) {
		t.Errorf("RouteKeys.Set(): got %q, want %q", got, want)
	}
}

// TestNewFromRouteKeys: each constructor gets its own struct out of
// RouteKeys, and only its own.
func TestNewFromRouteKeys(t *testing.T) {
	keys := &RouteKeys{
		QueryConfig:  QueryConfig{ToParam: "phone", TextParam: "msg"},
		TwilioConfig: TwilioConfig{AccountSID: "AC0123456789abcdef0123456789abcdef"},
	}
	d, err := NewDialect("query", DialectSettings{Keys: keys})
	if err != nil {
		t.Fatalf("NewDialect(query): %v", err)
	}
	if q := d.(*Query); q.toParam != "phone" || q.textParam != "msg" {
		t.Errorf("NewDialect(query): got params %q, %q, want phone, msg", q.toParam, q.textParam)
	}
	p, err := NewProvider("twilio", ProviderSettings{Config: Config{Token: "k", From: "+15550001111"}, Keys: keys})
	if err != nil {
		t.Fatalf("NewProvider(twilio): %v", err)
	}
	if got, want := p.(*Twilio).DefaultEndpoint().Path, "/2010-04-01/Accounts/AC0123456789abcdef0123456789abcdef/Messages.json"; got != want {
		t.Errorf("NewProvider(twilio).DefaultEndpoint().Path: got %q, want %q", got, want)
	}
	if _, err := NewProvider("twilio", ProviderSettings{Config: Config{Token: "k", From: "+15550001111"}}); err == nil || !strings.Contains(err.Error(), "account_sid is required") {
		t.Errorf("NewProvider(twilio, nil keys): got %v, want account_sid is required", err)
	}
	// A failing constructor returns a nil interface, not a typed nil.
	if p, err := NewProvider("template", ProviderSettings{Config: Config{Token: "k"}}); err == nil || p != nil {
		t.Errorf("NewProvider(template) without endpoint: got %#v, %v, want nil and an error", p, err)
	}
}

// TestRetryableReply is each provider's answer to "may a 429 or 503 reply
// be sent again", the table README's "Nothing lost, nothing doubled"
// documents: never without Retry-After; twilio and template 429 only; the
// Clickatell APIs 429 and 503.
func TestRetryableReply(t *testing.T) {
	u, _ := url.Parse("https://gw.test/send")
	want := map[string]map[int]bool{
		"twilio":              {429: true, 503: false},
		"template":            {429: true, 503: false},
		"clickatell-one":      {429: true, 503: true},
		"clickatell-platform": {429: true, 503: true},
		"clickatell-rest":     {429: true, 503: true},
	}
	for _, name := range ProviderNames() {
		w, ok := want[name]
		if !ok {
			t.Errorf("provider %q: no retry expectation; add it here and to README", name)
			continue
		}
		keys := &RouteKeys{
			TwilioConfig:   TwilioConfig{AccountSID: "AC0123456789abcdef0123456789abcdef"},
			TemplateConfig: TemplateConfig{Auth: "bearer", Body: map[string]any{"text": "{{.Text}}"}},
		}
		p, err := NewProvider(name, ProviderSettings{Config: Config{Token: "k", From: "+15550001111", Endpoint: u}, Keys: keys})
		if err != nil {
			t.Fatalf("NewProvider(%q): %v", name, err)
		}
		for _, status := range []int{429, 503, 500, 502, 400} {
			for _, ra := range []bool{true, false} {
				if got, want := p.RetryableReply(status, ra), ra && w[status]; got != want {
					t.Errorf("%s.RetryableReply(%d, %v): got %v, want %v", name, status, ra, got, want)
				}
			}
		}
	}
}
