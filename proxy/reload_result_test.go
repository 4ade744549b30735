package proxy_test

import (
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/postern/postern/proxy"
)

// postReloadResult is postReload that also returns the Postern-Reload
// header.
func postReloadResult(t *testing.T, admin string) (int, string, string) {
	t.Helper()
	resp, err := http.Post(admin+"/-/reload", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get(proxy.ReloadResultHeader), string(b)
}

// TestReloadReportsWhatNeedsARestart: POST /-/reload says "applied" when
// the whole new config serves, and "restart-needed" with one line per
// change a reload cannot apply (compared with the start-up config, so the
// line stays until a restart) — while the rest of the change does apply;
// a rejected config says "rejected".
func TestReloadReportsWhatNeedsARestart(t *testing.T) {
	fp := newFakeProvider(t, oneAPIReply())
	base := routeConfig(fp.CAFile(t), "one", "clickatell-one", fp.URL("/v1/message"), "")
	p := startPostern(t, base, env())
	path := filepath.Join(t.TempDir(), "postern.toml")
	admin := startAdmin(t, p, fileLoader(path, env()))

	writeConfig(t, path, base)
	if status, outcome, body := postReloadResult(t, admin); status != http.StatusOK || outcome != proxy.ReloadApplied || body != "reloaded "+path+": 1 routes\n" {
		t.Fatalf("unchanged config: %d %q %q", status, outcome, body)
	}

	moved := `[server]
listen = "127.0.0.1:18080"
admin_listen = "127.0.0.1:19090"
request_timeout = "1m"
header_read_timeout = "3s"

[audit]
queue = 10
` + strings.Replace(base, "/v1/message", "/v2/message", 1)
	writeConfig(t, path, moved)
	status, outcome, body := postReloadResult(t, admin)
	want := "reloaded " + path + ": 1 routes\n" +
		"listen changed: restart needed\n" +
		"admin_listen changed: restart needed\n" +
		"header_read_timeout changed: restart needed\n" +
		"request_timeout changed: restart needed (until then replies are cut off after 20s, the start-up write timeout)\n" +
		"[audit] changed: restart needed\n"
	if status != http.StatusOK || outcome != proxy.ReloadNeedsRestart || body != want {
		t.Fatalf("moved listeners: %d %q\n%s\nwant:\n%s", status, outcome, body, want)
	}
	if status, body := p.Get(t, "proxy", clickatellIn, "/http/sendmsg?"+legacyQuery("15551234567", "after")); status != http.StatusOK {
		t.Fatalf("after reload: %d %q", status, body)
	}
	if got := fp.Requests(); len(got) != 1 || got[0].Path != "/v2/message" {
		t.Errorf("the rest of the change must apply: provider got %v", paths(got))
	}
	if !strings.Contains(p.Log.String(), `"restart_needed":["listen changed: restart needed"`) {
		t.Errorf("the log should list what needs a restart:\n%s", p.Log)
	}

	// The next reload of the same file still needs the restart.
	if _, outcome, _ := postReloadResult(t, admin); outcome != proxy.ReloadNeedsRestart {
		t.Errorf("second reload of the moved config: %q, want %q", outcome, proxy.ReloadNeedsRestart)
	}
	// Back to the start-up values: nothing is pending any more.
	writeConfig(t, path, base)
	if _, outcome, _ := postReloadResult(t, admin); outcome != proxy.ReloadApplied {
		t.Errorf("back to the start-up config: %q, want %q", outcome, proxy.ReloadApplied)
	}

	writeConfig(t, path, base+"\nbogus = 1\n")
	if status, outcome, body := postReloadResult(t, admin); status != http.StatusUnprocessableEntity || outcome != proxy.ReloadRejected || !strings.Contains(body, `unknown key "route.bogus"`) {
		t.Errorf("bad config: %d %q %q", status, outcome, body)
	}
}

// TestReloadInterceptWithoutCANeedsRestart: [intercept] hosts added to a
// postern that started without them have no interception CA to serve them.
func TestReloadInterceptWithoutCANeedsRestart(t *testing.T) {
	fp := newFakeProvider(t, oneAPIReply())
	base := routeConfig(fp.CAFile(t), "one", "clickatell-one", fp.URL("/v1/message"), "")
	p := startPostern(t, base, env())
	path := filepath.Join(t.TempDir(), "postern.toml")
	admin := startAdmin(t, p, fileLoader(path, env()))
	writeConfig(t, path, "[server]\ndata_dir = "+quote(t.TempDir())+"\n[intercept]\nhosts = [\"api.clickatell.com\"]\n"+base)
	status, outcome, body := postReloadResult(t, admin)
	if status != http.StatusOK || outcome != proxy.ReloadNeedsRestart ||
		!strings.Contains(body, "data_dir changed: restart needed\n[intercept] hosts changed: restart needed (the interception CA is loaded at start-up)\n") {
		t.Errorf("intercept added: %d %q %q", status, outcome, body)
	}
}

func quote(s string) string { return `"` + strings.ReplaceAll(s, `\`, `\\`) + `"` }
