package rewrite

import (
	"net/url"
	"reflect"
	"strings"
	"testing"
)

func TestFactory_Names(t *testing.T) {
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

func TestFactory_Unknown(t *testing.T) {
	_, err := NewProvider("nexmo", Config{Token: "k"})
	if want := `unknown provider "nexmo" (known: clickatell-one, clickatell-platform, clickatell-rest, template, twilio)`; err == nil || err.Error() != want {
		t.Errorf("NewProvider(%q): got %v, want %q", "nexmo", err, want)
	}
	_, err = NewDialect("twilio", DialectConfig{})
	if want := `unknown dialect "twilio" (known: clickatell-http, query)`; err == nil || err.Error() != want {
		t.Errorf("NewDialect(%q): got %v, want %q", "twilio", err, want)
	}
	if d, err := NewDialect("clickatell-http", DialectConfig{}); err != nil || d == nil {
		t.Errorf("NewDialect(%q): got %v, %v", "clickatell-http", d, err)
	}
}

func TestFactory_ProviderDefaults(t *testing.T) {
	for name, want := range map[string]string{
		"clickatell-rest":     "https://api.clickatell.com/rest/message",
		"clickatell-one":      "https://platform.clickatell.com/v1/message",
		"clickatell-platform": "https://platform.clickatell.com/messages",
	} {
		p, err := NewProvider(name, Config{Token: "k"})
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

func TestFactory_ProviderConfigErrors(t *testing.T) {
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
			p, err := NewProvider(name, tc.cfg)
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

func TestFactory_EndpointIsCopied(t *testing.T) {
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
