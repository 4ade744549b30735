package config_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/postern/postern/proxy/config"
)

// TestLoadReportsEveryTypeErrorSortedByLine: one run shows every wrong type
// in the file, in every table and in every [[route]], each at its own line
// and sorted by line with the other problems; no follow-on problem is piled
// on a key whose type was wrong.
func TestLoadReportsEveryTypeErrorSortedByLine(t *testing.T) {
	src := `[server]
listen = 8080
request_timeout = 10
max_url_bytes = "big"

[trust]
aia = "yes"
ca_files = "x.pem"

[limits]
daily_max = "none"

[[route]]
name = "a"
match_path = "/http/sendmsg"
inbound = "clickatell-http"
provider = 5
token = "literal-token"

[[route]]
name = "b"
match_path = "/b"
inbound = "clickatell-http"
provider = "clickatell-one"
max_recipients = "ten"
token = "literal-token"
tokne = 1
`
	_, err := config.Load("t.toml", []byte(src), config.LoadOptions{})
	var ce *config.ConfigError
	if !errors.As(err, &ce) {
		t.Fatalf("got %v, want a *ConfigError", err)
	}
	want := `t.toml:2:1: server.listen: wrong type: the value is an integer, want a string
t.toml:3:1: server.request_timeout: invalid duration "10" (write it with a unit, e.g. "10s")
t.toml:4:1: server.max_url_bytes: wrong type: the value is a string, want an integer
t.toml:7:1: trust.aia: wrong type: the value is a string, want a boolean
t.toml:8:1: trust.ca_files: wrong type: the value is a string, want an array
t.toml:11:1: limits.daily_max: wrong type: the value is a string, want an integer
t.toml:17:1: route.provider: wrong type: the value is an integer, want a string
t.toml:25:1: route.max_recipients: wrong type: the value is a string, want an integer
t.toml:27:1: unknown key "route.tokne" (did you mean "token"?)`
	if err.Error() != want {
		t.Errorf("got:\n%s\nwant:\n%s", err, want)
	}
}

// TestLoadTypeErrorsOfTables: a table or array of tables written as a
// plain value, or a table where an array of tables belongs, is one problem
// at its line, and the rest of the file is still checked.
func TestLoadTypeErrorsOfTables(t *testing.T) {
	for _, tc := range []struct{ name, src, want string }{
		{"server is a number", "server = 5\n[trust]\naia = 1\n" + tlsTestRoute,
			"t.toml:1:1: server: wrong type: the value is an integer, want a table\nt.toml:3:1: trust.aia: wrong type: the value is an integer, want a boolean"},
		{"route is a table", "[route]\nname = \"r\"\n",
			"t.toml:1:1: route: wrong type: the value is a table, want an array"},
		{"route is a number", "route = 1\n[audit]\nqueue = \"x\"\n",
			"t.toml:1:1: route: wrong type: the value is an integer, want an array\nt.toml:3:1: audit.queue: wrong type: the value is a string, want an integer"},
		{"second route's name", tlsTestRoute + "\n[[route]]\nname = 7\nmatch_path = \"/x\"\ninbound = \"clickatell-http\"\nprovider = \"sandbox\"\n",
			"t.toml:9:1: route.name: wrong type: the value is an integer, want a string"},
		{"list element", "[server]\nallow_clients = [\"127.0.0.1\", 5]\n" + tlsTestRoute,
			"t.toml:2:1: server.allow_clients: wrong type: the value is an integer, want a string"},
		{"syntax error stops the parser", "[server]\nlisten = 127.0.0.1:80\naia = \"yes\"\n",
			"t.toml:2:"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := config.Load("t.toml", []byte(tc.src), config.LoadOptions{})
			if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
				t.Fatalf("got:\n%v\nwant it to start with:\n%s", err, tc.want)
			}
			if tc.name != "syntax error stops the parser" && err.Error() != tc.want {
				t.Errorf("got:\n%v\nwant exactly:\n%s", err, tc.want)
			}
		})
	}
}

// TestLoadSkipSecrets: with SkipSecrets no env: or file: secret is read —
// unset variables and missing files are fine — but malformed references
// and every other mistake are still reported. Without it they are resolved.
func TestLoadSkipSecrets(t *testing.T) {
	secretFile := filepath.Join(t.TempDir(), "legacy")
	src := `[server]
proxy_user = "ise"
proxy_password = "file:` + secretFile + `"

[[route]]
name = "r"
match_path = "/http/sendmsg"
inbound = "clickatell-http"
provider = "clickatell-one"
token = "env:POSTERN_UNSET_FOR_TEST"
legacy_user = "u"
legacy_password = "env:POSTERN_ALSO_UNSET"
`
	noEnv := func(string) (string, bool) { return "", false }
	if _, err := config.Load("t.toml", []byte(src), config.LoadOptions{LookupEnv: noEnv, SkipSecrets: true}); err != nil {
		t.Fatalf("SkipSecrets: %v", err)
	}
	_, err := config.Load("t.toml", []byte(src), config.LoadOptions{LookupEnv: noEnv})
	for _, w := range []string{
		"t.toml:3:1: proxy_password: reading secret file: open " + secretFile,
		`t.toml:10:1: route "r": token: environment variable POSTERN_UNSET_FOR_TEST is not set`,
		`t.toml:12:1: route "r": legacy_password: environment variable POSTERN_ALSO_UNSET is not set`,
	} {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("without SkipSecrets: got %v, want %q", err, w)
		}
	}
	if err := os.WriteFile(secretFile, []byte("pw\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	bad := strings.Replace(src, "env:POSTERN_UNSET_FOR_TEST", "env:", 1)
	bad = strings.Replace(bad, `match_path = "/http/sendmsg"`, `match_path = "http/sendmsg"`, 1)
	_, err = config.Load("t.toml", []byte(bad), config.LoadOptions{LookupEnv: noEnv, SkipSecrets: true})
	want := "t.toml:7:1: route \"r\": match_path \"http/sendmsg\" must start with \"/\"\n" +
		"t.toml:10:1: route \"r\": token: \"env:\" needs a variable name"
	if err == nil || err.Error() != want {
		t.Errorf("SkipSecrets with mistakes: got:\n%v\nwant:\n%s", err, want)
	}
}

// TestLoadAllowNoRoutes: a file with only [trust] is an error for serving,
// and accepted when the caller asks for part of the config.
func TestLoadAllowNoRoutes(t *testing.T) {
	src := []byte("[trust]\naia = false\n")
	if _, err := config.Load("t.toml", src, config.LoadOptions{}); err == nil || !strings.Contains(err.Error(), "no [[route]] defined") {
		t.Errorf("without AllowNoRoutes: %v", err)
	}
	cfg, err := config.Load("t.toml", src, config.LoadOptions{AllowNoRoutes: true})
	if err != nil || len(cfg.Routes) != 0 || cfg.Roots == nil {
		t.Errorf("AllowNoRoutes: %v", err)
	}
}
