package config_test

import (
	"strings"
	"testing"

	"github.com/postern/postern/proxy/config"
)

// TestProvisioningProblemsComeWithTheRest: what provisioning finds (a CA
// file, an environment variable and a secret file that are missing) is
// reported in the same run as what validation finds, each at its line.
func TestProvisioningProblemsComeWithTheRest(t *testing.T) {
	src := `[server]
proxy_user = "ise"
proxy_password = "file:/nonexistent/postern-proxy-pw"

[trust]
ca_files = ["/nonexistent/postern-ca.pem"]

[[route]]
name = "r"
match_path = "/http/sendmsg"
inbound = "clickatell-http"
provider = "clickatell-one"
token = "env:POSTERN_TEST_UNSET_TOKEN"
max_recipients = 700
`
	_, err := config.Load("t.toml", []byte(src), config.LoadOptions{LookupEnv: func(string) (string, bool) { return "", false }})
	if err == nil {
		t.Fatal("Load: got a config, want every problem")
	}
	got := err.Error()
	for _, want := range []string{
		"t.toml:3:1: proxy_password: reading secret file: ",
		"t.toml:6:1: ",
		"t.toml:13:1: route \"r\": token: environment variable POSTERN_TEST_UNSET_TOKEN is not set",
		"t.toml:14:1: route \"r\": max_recipients must be between 1 and 600",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("Load: error lacks %q:\n%s", want, got)
		}
	}
	if lines := strings.Split(got, "\n"); len(lines) != 4 {
		t.Errorf("Load: got %d problems, want 4:\n%s", len(lines), got)
	}
}
