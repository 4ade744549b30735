package proxy

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"github.com/elazarl/goproxy"

	"github.com/postern/postern/proxy/config"
)

// TestGoproxyLogIsWithheld: whatever goproxy logs through its ProxyCtx (the
// path every goproxy message takes) reaches postern's log as a fixed
// message naming the event, never with its arguments: goproxy's warnings
// quote request lines, Host headers and URLs. A format postern does not
// know (goproxy's verbose mode passes dynamic text as the format) is not
// repeated either.
func TestGoproxyLogIsWithheld(t *testing.T) {
	cfg, err := config.LoadSandbox()
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	s := New(cfg, Options{Log: slog.New(slog.NewJSONHandler(&out, nil))})
	ctx := &goproxy.ProxyCtx{Proxy: s.gp, Session: 7}
	const text, pass = "Your password is Zq7-LOG", "isepass-LOG-pw"
	ctx.Warnf("Cannot read request from mitm'd client %v %v", "api.clickatell.com:443",
		errors.New(`malformed HTTP version "password is Zq7-LOG HTTP/1.1"`))
	ctx.Warnf("Cannot parse URL %s: %v", "https://a%zz/http/sendmsg?password="+pass+"&text=Your\"password", errors.New("invalid URL escape"))
	s.gp.Verbose = true
	ctx.Logf("error read response api.clickatell.com : " + text + " password=" + pass)

	log := out.String()
	for _, leak := range []string{text, "Zq7", pass, "password=", "a%zz", "malformed HTTP version"} {
		if strings.Contains(log, leak) {
			t.Errorf("log holds %q:\n%s", leak, log)
		}
	}
	for _, want := range []string{
		`"event":"Cannot read request from mitm'd client %v %v"`,
		`"event":"Cannot parse URL %s: %v"`,
		`"event":"unrecognised goproxy message"`,
	} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %s:\n%s", want, log)
		}
	}
	if n := strings.Count(log, "\n"); n != 3 {
		t.Errorf("%d log lines, want 3:\n%s", n, log)
	}
}
