package config_test

import (
	"strings"
	"testing"
	"time"

	"github.com/postern/postern/proxy/config"
)

const minimalRoute = `
[[route]]
name = "r"
match_path = "/http/sendmsg"
inbound = "clickatell-http"
provider = "sandbox"
`

// TestGuardrailDefaults: an operator who writes nothing gets the documented
// limits.
func TestGuardrailDefaults(t *testing.T) {
	cfg, err := config.Load("t.toml", []byte(minimalRoute), config.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	g := cfg.Guards
	if g.ProxyUser != "" || g.HeaderReadTimeout != 10*time.Second || g.MaxURLBytes != 8192 || g.MaxBodyBytes != 65536 ||
		g.MaxConcurrentUpstream != 64 || g.UpstreamQueueWait != 2*time.Second || g.PerNumber.String() != "5/10m0s" ||
		g.PerClient.String() != "600/1m0s" || g.DailyMax != 1000 || len(g.AllowCountries) != 0 {
		t.Errorf("defaults: %+v", g)
	}
	if a := cfg.Audit; a.Console != "stdout" || a.File != "" || a.Syslog != nil || a.Queue != 1000 {
		t.Errorf("audit defaults: %+v", a)
	}
}

// TestGuardrailConfigErrors: every bad guardrail key is reported, with its
// position, in one run.
func TestGuardrailConfigErrors(t *testing.T) {
	src := `[server]
proxy_user = "ise"
max_url_bytes = 10
max_concurrent_upstream = -1
upstream_queue_wait = "soon"
[limits]
per_number = "5 per 10m"
per_client = "0/1m"
daily_max = -1
allow_countries = ["us", "XX"]
[audit]
console = "tty"
syslog = "http://siem:514"
syslog_facility = "kern"
` + minimalRoute + `legacy_password = "env:NOPE"
`
	// A value the decoder rejects (a duration or rate) is reported alone,
	// with its position; the rest is validated once it decodes.
	_, err := config.Load("t.toml", []byte(src), config.LoadOptions{})
	if err == nil || !strings.HasPrefix(err.Error(), "t.toml:") || !strings.Contains(err.Error(), "invalid") {
		t.Errorf("got %v, want a positioned decode error", err)
	}
	// A decode error stops at the first bad value; the rest is validation.
	src = strings.Replace(strings.Replace(strings.Replace(src, `upstream_queue_wait = "soon"`, "", 1), `per_number = "5 per 10m"`, "", 1), `per_client = "0/1m"`, "", 1)
	_, err = config.Load("t.toml", []byte(src), config.LoadOptions{LookupEnv: func(string) (string, bool) { return "", false }})
	if err == nil {
		t.Fatal("accepted")
	}
	msg := err.Error()
	for _, want := range []string{
		"t.toml:2:1: proxy_user is set but proxy_password is not",
		"t.toml:3:1: max_url_bytes must be between",
		"t.toml:4:1: max_concurrent_upstream must be between",
		"daily_max must be 0 (off)",
		`allow_countries: "us" must be upper case ("US")`,
		`allow_countries: "XX" is not an ISO 3166 country code`,
		`console must be "stdout", "stderr" or "off"`,
		"scheme must be udp, tcp or tls",
		`syslog_facility "kern"`,
		"legacy_password: environment variable NOPE is not set",
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("error lacks %q:\n%s", want, msg)
		}
	}
}

func TestRateSyntaxErrorsNamePosition(t *testing.T) {
	for _, bad := range []string{`per_number = "5 per 10m"`, `per_client = "0/1m"`, `per_number = "5/10"`} {
		_, err := config.Load("t.toml", []byte("[limits]\n"+bad+"\n"+minimalRoute), config.LoadOptions{})
		if err == nil || !strings.Contains(err.Error(), "t.toml:2:") || !strings.Contains(err.Error(), "invalid rate") {
			t.Errorf("%s: got %v, want a positioned invalid rate error", bad, err)
		}
	}
}
