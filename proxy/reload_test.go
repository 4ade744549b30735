package proxy_test

import (
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/postern/postern/proxy/config"
)

// fileLoader loads the config at path with env as the environment, as the
// CLI's loader does on SIGHUP and POST /-/reload.
func fileLoader(path string, env map[string]string) func() (*config.Config, error) {
	return func() (*config.Config, error) {
		return config.LoadFile(path, config.LoadOptions{LookupEnv: func(k string) (string, bool) { v, ok := env[k]; return v, ok }})
	}
}

func postReload(t *testing.T, admin string) (int, string) {
	t.Helper()
	resp, err := http.Post(admin+"/-/reload", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestReloadValidChangeTakesEffect: after a reload the next message is built
// from the new config, and the reload is counted.
func TestReloadValidChangeTakesEffect(t *testing.T) {
	fp := newFakeProvider(t, oneAPIReply())
	before := routeConfig(fp.CAFile(t), "one", "clickatell-one", fp.URL("/v1/message"), "")
	p := startPostern(t, before, env())
	path := filepath.Join(t.TempDir(), "postern.toml")
	admin := startAdmin(t, p, fileLoader(path, env()))

	p.Get(t, "proxy", clickatellIn, "/http/sendmsg?"+legacyQuery("15551234567", "first"))
	writeConfig(t, path, routeConfig(fp.CAFile(t), "renamed", "clickatell-one", fp.URL("/v2/message"), `from = "HOSPITAL"`))
	if status, body := postReload(t, admin); status != http.StatusOK || body != "reloaded "+path+": 1 routes\n" {
		t.Fatalf("reload: %d %q", status, body)
	}
	if status, body := p.Get(t, "proxy", clickatellIn, "/http/sendmsg?"+legacyQuery("15551234567", "second")); status != http.StatusOK {
		t.Fatalf("after reload: %d %q", status, body)
	}
	got := fp.Requests()
	if len(got) != 2 || got[0].Path != "/v1/message" || got[1].Path != "/v2/message" {
		t.Fatalf("provider paths %v, want /v1/message then /v2/message", paths(got))
	}
	if !strings.Contains(string(got[1].Body), `"from":"HOSPITAL"`) || strings.Contains(string(got[0].Body), "HOSPITAL") {
		t.Errorf("from should apply from the reload on: %q / %q", got[0].Body, got[1].Body)
	}
	if !strings.Contains(p.Audit.String(), `"route":"renamed"`) {
		t.Errorf("audit should name the new route:\n%s", p.Audit)
	}
	m := scrape(t, admin)
	if v, _ := metricValue(m, "postern_config_reloads_total", map[string]string{"result": "success"}); v != 1 {
		t.Errorf("reloads{success} = %v, want 1", v)
	}
}

// TestReloadInvalidConfigKeepsOldServing: a broken file is rejected with its
// error (file:line:col) and the old config goes on serving.
func TestReloadInvalidConfigKeepsOldServing(t *testing.T) {
	fp := newFakeProvider(t, oneAPIReply())
	cfg := routeConfig(fp.CAFile(t), "one", "clickatell-one", fp.URL("/v1/message"), "")
	p := startPostern(t, cfg, env())
	path := filepath.Join(t.TempDir(), "postern.toml")
	admin := startAdmin(t, p, fileLoader(path, env()))

	writeConfig(t, path, strings.Replace(cfg, "token =", "tokne =", 1))
	status, body := postReload(t, admin)
	if status != http.StatusUnprocessableEntity || !regexp.MustCompile(regexp.QuoteMeta(path)+`:\d+:1: unknown key "route.tokne"`).MatchString(body) ||
		!strings.Contains(body, "previous configuration still serving") {
		t.Fatalf("invalid reload: %d %q", status, body)
	}
	if !strings.Contains(p.Log.String(), "config reload rejected") {
		t.Errorf("rejection not logged:\n%s", p.Log)
	}
	if status, body := p.Get(t, "proxy", clickatellIn, "/http/sendmsg?"+legacyQuery("15551234567", "still works")); status != http.StatusOK {
		t.Fatalf("old config should still serve: %d %q", status, body)
	}
	if got := fp.Requests(); len(got) != 1 || got[0].Header.Get("Authorization") != testToken {
		t.Errorf("provider got %v", paths(got))
	}
	m := scrape(t, admin)
	if v, _ := metricValue(m, "postern_config_reloads_total", map[string]string{"result": "failure"}); v != 1 {
		t.Errorf("reloads{failure} = %v, want 1", v)
	}
	if v, _ := metricValue(m, "postern_config_last_reload_successful", nil); v != 0 {
		t.Errorf("last_reload_successful = %v, want 0", v)
	}
}

// TestReloadDuringInFlightRequest: a message in flight when the config is
// swapped finishes on the config it started with and is answered; the next
// request sees the new config.
func TestReloadDuringInFlightRequest(t *testing.T) {
	arrived, release := make(chan struct{}, 1), make(chan struct{})
	reply := oneAPIReply()
	fp := newFakeProvider(t, func(w http.ResponseWriter, r received) {
		if strings.Contains(string(r.Body), "slow") {
			arrived <- struct{}{}
			<-release
		}
		reply(w, r)
	})
	p := startPostern(t, routeConfig(fp.CAFile(t), "one", "clickatell-one", fp.URL("/v1/message"), ""), env())

	type result struct {
		status int
		body   string
	}
	done := make(chan result, 1)
	go func() {
		s, b := p.Get(t, "proxy", clickatellIn, "/http/sendmsg?"+legacyQuery("15551234567", "slow one"))
		done <- result{s, b}
	}()
	<-arrived
	// The new config serves another path only: the in-flight message's
	// route no longer exists in it.
	next := strings.Replace(routeConfig(fp.CAFile(t), "two", "clickatell-one", fp.URL("/v1/message"), ""), `"/http/sendmsg"`, `"/http/v2/sendmsg"`, 1)
	p.Srv.Reload(mustLoad(t, next))
	close(release)
	if r := <-done; r.status != http.StatusOK || !strings.HasPrefix(r.body, "ID: one") {
		t.Fatalf("in-flight message: %d %q, want 200 ID", r.status, r.body)
	}
	if status, _ := p.Get(t, "proxy", clickatellIn, "/http/sendmsg?"+legacyQuery("15551234567", "old path")); status != http.StatusForbidden {
		t.Errorf("old path after reload: %d, want 403", status)
	}
	if status, body := p.Get(t, "proxy", clickatellIn, "/http/v2/sendmsg?"+legacyQuery("15551234567", "new path")); status != http.StatusOK {
		t.Errorf("new path after reload: %d %q", status, body)
	}
	if !regexp.MustCompile(`"outcome":"delivered","status":200,"route":"one",.*"chars":8,`).MatchString(p.Audit.String()) {
		t.Errorf("in-flight message should be audited under its old route:\n%s", p.Audit)
	}
}

func mustLoad(t *testing.T, src string) *config.Config {
	t.Helper()
	cfg, err := config.Load("reloaded.toml", []byte(src), config.LoadOptions{LookupEnv: func(k string) (string, bool) { v, ok := env()[k]; return v, ok }})
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func writeConfig(t *testing.T, path, src string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
}

func paths(rs []received) []string {
	var out []string
	for _, r := range rs {
		out = append(out, r.Method+" "+r.Path)
	}
	return out
}

// TestReloadKeepsRateLimitBudgets: a reload (or a SIGHUP meant only to
// rotate the audit file) must not hand out a fresh budget; a changed limit
// starts a new one.
func TestReloadKeepsRateLimitBudgets(t *testing.T) {
	fp := newFakeProvider(t, oneAPIReply())
	cfg := strings.Replace(routeConfig(fp.CAFile(t), "one", "clickatell-one", fp.URL("/v1/message"), ""),
		`per_number = "off"`, `per_number = "1/1h"`, 1)
	p := startPostern(t, cfg, env())
	send := func() int {
		status, _ := p.Get(t, "proxy", clickatellIn, "/http/sendmsg?"+legacyQuery("15551234567", "budget"))
		return status
	}
	if got := send(); got != http.StatusOK {
		t.Fatalf("first message: %d, want 200", got)
	}
	p.Srv.Reload(mustLoad(t, cfg))
	if got := send(); got != http.StatusTooManyRequests {
		t.Errorf("same limit after reload: %d, want 429 (budget kept)", got)
	}
	p.Srv.Reload(mustLoad(t, strings.Replace(cfg, `per_number = "1/1h"`, `per_number = "2/1h"`, 1)))
	if got := send(); got != http.StatusOK {
		t.Errorf("changed limit after reload: %d, want 200 (new budget)", got)
	}
	if n := len(fp.Requests()); n != 2 {
		t.Errorf("provider got %d messages, want 2", n)
	}
}
