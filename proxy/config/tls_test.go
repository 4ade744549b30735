package config_test

import (
	"strings"
	"testing"

	"github.com/postern/postern/proxy/config"
)

const tlsTestRoute = `
[[route]]
name = "r"
match_path = "/http/sendmsg"
inbound = "clickatell-http"
provider = "sandbox"
`

// TestTLSConfigKeys: every new [server], [trust], [tls] and [intercept] key
// is checked strictly, each mistake reported with its line.
func TestTLSConfigKeys(t *testing.T) {
	const pin = "sha256/47DEQpj8HBSa+/TZIW5ZUxgfmC3yHW7t6pb7rB7aYbY="
	for _, tc := range []struct {
		name, toml string
		want       string // "" = valid
	}{
		{"defaults: AIA on, no pins", "", ""},
		{"pins and aia", "[trust]\naia = false\naia_timeout = \"1s\"\n[trust.pins]\n\"api.clickatell.com\" = [\"" + pin + "\", \"" + pin + "\"]\n", ""},
		{"bad pin prefix", "[trust.pins]\n\"api.clickatell.com\" = [\"sha1/abc\"]\n", `test.toml:2:1: pins for "api.clickatell.com": pin "sha1/abc" must start with "sha256/"`},
		{"bad pin length", "[trust.pins]\n\"api.clickatell.com\" = [\"sha256/AAAA\"]\n", "a SHA-256 digest is 32 bytes, this is 3"},
		{"empty pin list", "[trust.pins]\n\"api.clickatell.com\" = []\n", "lists no pin"},
		{"pin host with port", "[trust.pins]\n\"api.clickatell.com:443\" = [\"" + pin + "\"]\n", "must be a bare host name"},
		{"aia not a bool", "[trust]\naia = \"yes\"\n", "test.toml:2:1: trust.aia: wrong type"},
		{"unknown trust key", "[trust]\naia_timeot = \"1s\"\n", `unknown key "trust.aia_timeot" (did you mean "aia_timeout"?)`},
		{"self-signed", "[server]\nlisten_tls = \"127.0.0.1:8443\"\ndata_dir = \"/tmp/x\"\n[tls]\nmode = \"self-signed\"\n", ""},
		{"listen_tls without mode", "[server]\nlisten_tls = \"127.0.0.1:8443\"\ndata_dir = \"/tmp/x\"\n", "test.toml:2:1: listen_tls needs [tls] mode"},
		{"mode without listen_tls", "[tls]\nmode = \"self-signed\"\n", "test.toml:2:1: [tls] is configured but [server] listen_tls is not set"},
		{"unknown mode", "[server]\nlisten_tls = \"127.0.0.1:8443\"\ndata_dir = \"/tmp/x\"\n[tls]\nmode = \"manual\"\n", `test.toml:5:1: [tls] mode "manual": want "acme", "files" or "self-signed"`},
		{"no data_dir", "[server]\nlisten_tls = \"127.0.0.1:8443\"\n[tls]\nmode = \"self-signed\"\n", "data_dir is required"},
		{"files missing", "[server]\nlisten_tls = \"127.0.0.1:8443\"\n[tls]\nmode = \"files\"\ncert_file = \"/nonexistent.crt\"\nkey_file = \"/nonexistent.key\"\n", "test.toml:5:1: [tls] cert_file/key_file: open /nonexistent.crt"},
		{"files without key", "[server]\nlisten_tls = \"127.0.0.1:8443\"\n[tls]\nmode = \"files\"\ncert_file = \"/x.crt\"\n", "needs cert_file and key_file"},
		{"key of another mode", "[server]\nlisten_tls = \"127.0.0.1:8443\"\ndata_dir = \"/tmp/x\"\n[tls]\nmode = \"self-signed\"\ncert_file = \"/x.crt\"\n", `test.toml:6:1: [tls] cert_file applies only to mode "files"`},
		{"acme", "[server]\nlisten_tls = \"0.0.0.0:443\"\ndata_dir = \"/tmp/x\"\n[tls]\nmode = \"acme\"\nnames = [\"postern.example.org\"]\nacme_email = \"noc@example.org\"\nacme_challenge = \"http-01\"\nacme_http_listen = \":80\"\n", ""},
		{"acme without names", "[server]\nlisten_tls = \"0.0.0.0:443\"\ndata_dir = \"/tmp/x\"\n[tls]\nmode = \"acme\"\n", "needs names"},
		{"acme http directory", "[server]\nlisten_tls = \"0.0.0.0:443\"\ndata_dir = \"/tmp/x\"\n[tls]\nmode = \"acme\"\nnames = [\"a.example\"]\nacme_directory = \"http://ca.example/dir\"\n", "test.toml:7:1: [tls] acme_directory \"http://ca.example/dir\" must be an https:// URL"},
		{"acme bad challenge", "[server]\nlisten_tls = \"0.0.0.0:443\"\ndata_dir = \"/tmp/x\"\n[tls]\nmode = \"acme\"\nnames = [\"a.example\"]\nacme_challenge = \"dns-01\"\n", `acme_challenge "dns-01": want "tls-alpn-01" or "http-01"`},
		{"acme_http_listen with tls-alpn", "[server]\nlisten_tls = \"0.0.0.0:443\"\ndata_dir = \"/tmp/x\"\n[tls]\nmode = \"acme\"\nnames = [\"a.example\"]\nacme_http_listen = \":80\"\n", "acme_http_listen is used only with"},
		{"acme missing ca file", "[server]\nlisten_tls = \"0.0.0.0:443\"\ndata_dir = \"/tmp/x\"\n[tls]\nmode = \"acme\"\nnames = [\"a.example\"]\nacme_ca_files = [\"/nonexistent.pem\"]\n", `test.toml:7:1: [tls] acme_ca_files "/nonexistent.pem"`},
		{"unknown tls key", "[tls]\nmdoe = \"acme\"\n", `unknown key "tls.mdoe" (did you mean "mode"?)`},
		{"intercept", "[server]\ndata_dir = \"/tmp/x\"\n[intercept]\nhosts = [\"api.clickatell.com\"]\n", ""},
		{"intercept without data_dir", "[intercept]\nhosts = [\"api.clickatell.com\"]\n", "data_dir is required"},
		{"intercept URL", "[server]\ndata_dir = \"/tmp/x\"\n[intercept]\nhosts = [\"https://api.clickatell.com\"]\n", `test.toml:4:1: intercept: "https://api.clickatell.com" must be a bare host name`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := config.Load("test.toml", []byte(tc.toml+tlsTestRoute), config.LoadOptions{})
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("unexpected error: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("error = %v, want it to contain %q", err, tc.want)
			}
		})
	}
}
