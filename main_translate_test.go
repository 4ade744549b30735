package main

import (
	"strings"
	"testing"
)

// TestTranslateRefusesWhatTheServerRefuses: a premium-rate number and a
// country outside allow_countries get the server's own answer, 403
// "ERR: 114, Cannot route message", and exit status 1.
func TestTranslateRefusesWhatTheServerRefuses(t *testing.T) {
	t.Setenv("POSTERN_TEST_KEY", "k-SECRET-123")
	path := writeFile(t, t.TempDir(), "c.toml", "[limits]\nallow_countries = [\"DE\"]\n"+goodRoute)
	for name, to := range map[string]string{"premium-rate": "449098790123", "country outside allow_countries": "15551234567"} {
		code, stdout, stderr := runCLI(t, "translate", "-config", path, "http://api.clickatell.com/http/sendmsg?to="+to+"&text=x")
		if code != 1 || !strings.Contains(stderr, `postern would answer 403 "ERR: 114, Cannot route message"`) || stdout != "" {
			t.Errorf("%s: exit %d, stdout %q, stderr %q; want 1 and the server's 403 ERR: 114", name, code, stdout, stderr)
		}
	}
	code, stdout, stderr := runCLI(t, "translate", "-config", path, "http://api.clickatell.com/http/sendmsg?to=4915123456789&text=x")
	if code != 0 || !strings.Contains(stdout, `"to":"4915123456789"`) {
		t.Errorf("allowed country: exit %d %q %q, want it translated", code, stdout, stderr)
	}
}

// TestTranslateRedactsWhereTheTokenStands: a short token ("k") is hidden
// where it stands, in the Authorization header, and every other "k" in the
// output (the text, the header names) is left alone.
func TestTranslateRedactsWhereTheTokenStands(t *testing.T) {
	path := writeFile(t, t.TempDir(), "c.toml", strings.Replace(goodRoute, `token = "env:POSTERN_TEST_KEY"`, `token = "k"`, 1))
	code, stdout, stderr := runCLI(t, "translate", "-config", path, "http://api.clickatell.com/http/sendmsg?to=4915123456789&text=kkk+okay")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for _, want := range []string{"Authorization: <redacted>\n", `"content":"kkk okay"`} {
		if !strings.Contains(stdout, want) {
			t.Errorf("output lacks %q:\n%s", want, stdout)
		}
	}
	if strings.Contains(stdout, "<redacted>kk") || strings.Count(stdout, "<redacted>") != 1 {
		t.Errorf("the token was replaced beyond where it stands:\n%s", stdout)
	}
}
