package proxy_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/postern/postern/internal/redistest"
	"github.com/postern/postern/proxy"
	"github.com/postern/postern/proxy/config"
	"github.com/postern/postern/proxy/proxytest"
)

// TestReloadKeepsSharedCountersAndSwitchesStores: a reload with the same
// [cluster] keeps counting in the same store (a fresh budget is not handed
// out), a reload naming another redis counts there, and one naming the
// first again finds its counters where they were. /readyz names the
// store's state.
func TestReloadKeepsSharedCountersAndSwitchesStores(t *testing.T) {
	a, b := redistest.Start(t), redistest.Start(t)
	fp := newFakeProvider(t, oneAPIReply())
	cfgFor := func(redisURL string) string {
		return fmt.Sprintf("[cluster]\nredis = %q\nkey_prefix = \"reload:\"\nstore_timeout = \"5s\"\n", redisURL) +
			proxytest.Config{CAFile: fp.CAFile(t), Limits: `per_number = "2/1h"`, Name: "one",
				MatchHost: "api.clickatell.com", Endpoint: fp.URL("/v1/message")}.TOML()
	}
	p := startPostern(t, cfgFor(a.URL()), env())
	t.Cleanup(func() { p.Srv.Close() })
	admin := startAdmin(t, p, nil)
	send := func(i int) int {
		status, _ := p.Get(t, "proxy", "api.clickatell.com", "/http/sendmsg?"+legacyQuery("15551234567", fmt.Sprint("reload ", i)))
		return status
	}
	expect := func(step string, want ...int) {
		t.Helper()
		for i, w := range want {
			if got := send(i); got != w {
				t.Fatalf("%s, message %d: status %d, want %d", step, i, got, w)
			}
		}
	}
	expect("first store", 200, 200, 429)
	p.Srv.Reload(proxytest.Load(t, cfgFor(a.URL()), env()))
	expect("reloaded, same store", 429)
	p.Srv.Reload(proxytest.Load(t, cfgFor(b.URL()), env()))
	expect("switched to the second store", 200, 200, 429)
	p.Srv.Reload(proxytest.Load(t, cfgFor(a.URL()), env()))
	expect("back to the first store", 429)

	for _, l := range auditLines(t, p) {
		if l["store"] != "redis" {
			t.Errorf("audit line without store redis: %v", l)
		}
	}
	if n := len(fp.Requests()); n != 4 {
		t.Errorf("provider got %d messages, want 4", n)
	}
	if _, body := getText(t, admin+"/readyz"); body != "ready\nstore: redis up\n" {
		t.Errorf("/readyz: %q", body)
	}
	a.Kill()
	send(9) // finds the store gone: counted locally
	if status, body := getText(t, admin+"/readyz"); status != 200 || !strings.Contains(body, "store: redis unavailable, counting locally") {
		t.Errorf("/readyz with the store down under local: %d %q, want 200 and the fallback", status, body)
	}
}

func getText(t *testing.T, u string) (int, string) {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestTranslateLeavesTheStoreAlone: `postern translate` with a [cluster]
// config counts and claims nothing in the store: with a store that is
// down under on_store_error = "refuse" it still shows the request.
func TestTranslateLeavesTheStoreAlone(t *testing.T) {
	srv := redistest.Start(t)
	srv.Kill()
	toml := fmt.Sprintf("[cluster]\nredis = %q\non_store_error = \"refuse\"\n", srv.URL()) +
		routeConfig(proxytest.CAFile(t, newFakeProvider(t, oneAPIReply()).Srv.Certificate()), "r", "clickatell-one", "https://127.0.0.1:9/v1/message", "")
	cfg, err := config.Load("test.toml", []byte(toml), config.LoadOptions{MaskTokens: true,
		LookupEnv: func(k string) (string, bool) { v, ok := env()[k]; return v, ok }})
	if err != nil {
		t.Fatal(err)
	}
	out, err := proxy.Translate(context.Background(), cfg, "http://api.clickatell.com/http/sendmsg?"+legacyQuery("15551234567", "hello"), "ua")
	if err != nil || !strings.Contains(out, "POST https://127.0.0.1:9/v1/message") {
		t.Fatalf("translate with the store down: %v\n%s", err, out)
	}
}
