package proxy_test

import (
	"context"
	"fmt"
	"io"
	"maps"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/postern/postern/internal/redistest"
	"github.com/postern/postern/proxy"
	"github.com/postern/postern/proxy/config"
	"github.com/postern/postern/proxy/proxytest"
	goredis "github.com/redis/go-redis/v9"
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

// precedenceSteps are requests from one client whose answers depend on
// which check comes first: per_client (4 a day here) is checked before
// routing, parsing and the destination, and a request refused by
// per_number or at those steps has spent its per_client token.
var precedenceSteps = []struct {
	name, path string
	status     int
}{
	{"delivered", "/http/sendmsg?" + legacyQuery("15551234567", "one"), 200},
	{"over per_number (spends per_client)", "/http/sendmsg?" + legacyQuery("15551234567", "two"), 429},
	{"malformed (spends per_client)", "/http/sendmsg?user=" + legacyUser + "&password=" + legacyPass + "&api_id=" + legacyAPIID + "&text=x", 400},
	{"no route (spends per_client)", "/nowhere?" + legacyQuery("15551234568", "three"), 403},
	{"per_client spent: valid", "/http/sendmsg?" + legacyQuery("15551234569", "four"), 429},
	{"per_client spent: malformed", "/http/sendmsg?user=" + legacyUser + "&text=x", 429},
	{"per_client spent: no route", "/nowhere?" + legacyQuery("15551234568", "five"), 429},
	{"per_client spent: premium-rate", "/http/sendmsg?" + legacyQuery("449098790123", "six"), 429},
	{"per_client spent: wrong password", "/http/sendmsg?user=" + legacyUser + "&password=wrong&api_id=" + legacyAPIID + "&to=15551234569&text=x", 429},
}

// TestClusterRefusalsAnswerAsLocal: with [cluster] a delivered message asks
// the store once, at guard, per_client included; a request refused before
// that step asks per_client alone at its refusal. Either way every request
// is answered and audited as without [cluster] (per_client first, before
// routing, and spent by a request refused later), except for the audit
// line's "store". Against the real redis-server.
func TestClusterRefusalsAnswerAsLocal(t *testing.T) {
	redisAddr := redistest.Shared(t)
	type answer struct {
		status int
		body   string
		audit  map[string]any
	}
	run := func(cluster string) ([]answer, *fakeProvider) {
		fp := newFakeProvider(t, oneAPIReply())
		p := startPostern(t, cluster+proxytest.Config{CAFile: fp.CAFile(t), Name: "one", Endpoint: fp.URL("/v1/message"),
			Limits: "per_client = \"4/24h\"\nper_number = \"1/1h\"\ndaily_max = 100",
			Extra:  fmt.Sprintf("legacy_user = %q\nlegacy_password = %q\nlegacy_api_id = %q", legacyUser, legacyPass, legacyAPIID)}.TOML(), env())
		t.Cleanup(func() { p.Srv.Close() })
		var out []answer
		for i, s := range precedenceSteps {
			status, body := p.Get(t, "direct", "", s.path)
			if status != s.status {
				t.Errorf("%q step %d (%s): status %d %q, want %d", cluster, i, s.name, status, body, s.status)
			}
			lines := auditLines(t, p)
			out = append(out, answer{status, body, lines[len(lines)-1]})
		}
		return out, fp
	}
	local, lfp := run("")
	cluster := fmt.Sprintf("[cluster]\nredis = %q\nkey_prefix = %q\nstore_timeout = \"5s\"\n",
		"redis://"+redisAddr+"/0", "precedence-"+fmt.Sprint(time.Now().UnixNano())+":")
	shared, sfp := run(cluster)
	for i := range precedenceSteps {
		l, s := local[i], shared[i]
		if s.audit["store"] != "redis" {
			t.Errorf("step %d (%s): audit store %v, want redis", i, precedenceSteps[i].name, s.audit["store"])
		}
		for _, a := range []map[string]any{l.audit, s.audit} {
			// host is each postern's own listener.
			maps.DeleteFunc(a, func(k string, _ any) bool { return k == "time" || k == "latency_ms" || k == "store" || k == "host" })
		}
		if l.status != s.status || l.body != s.body || !reflect.DeepEqual(l.audit, s.audit) {
			t.Errorf("step %d (%s):\n local   %d %q %v\n cluster %d %q %v", i, precedenceSteps[i].name, l.status, l.body, l.audit, s.status, s.body, s.audit)
		}
	}
	if len(lfp.Requests()) != 1 || len(sfp.Requests()) != 1 {
		t.Errorf("provider got %d messages locally, %d with [cluster]; want 1 each", len(lfp.Requests()), len(sfp.Requests()))
	}
}

// TestClusterStoreDownBeforeRouting: a store that fails is met by the
// first request, whatever that request is: under on_store_error =
// "refuse" a malformed request, a request for no route and a valid one
// all get the 503 of a refusal before routing (per_client's step) and
// nothing is sent; under "local" each is answered by its own step, counted
// on this replica's counters ("store":"local").
func TestClusterStoreDownBeforeRouting(t *testing.T) {
	for _, mode := range []string{"refuse", "local"} {
		t.Run(mode, func(t *testing.T) {
			srv := redistest.Start(t)
			fp := newFakeProvider(t, oneAPIReply())
			p := startPostern(t, fmt.Sprintf("[cluster]\nredis = %q\non_store_error = %q\nstore_timeout = \"5s\"\n", srv.URL(), mode)+
				proxytest.Config{CAFile: fp.CAFile(t), Name: "one", Endpoint: fp.URL("/v1/message"),
					Limits: "per_client = \"100/1h\"\nper_number = \"off\"\ndaily_max = 100"}.TOML(), env())
			t.Cleanup(func() { p.Srv.Close() })
			if status, _ := p.Get(t, "direct", "", "/http/sendmsg?"+legacyQuery("15551234567", "up")); status != 200 {
				t.Fatalf("store up: %d", status)
			}
			srv.Kill()
			for _, s := range []struct{ path, local string }{
				{"/http/sendmsg?user=x&text=x", "400"},
				{"/nowhere?" + legacyQuery("15551234567", "a"), "403"},
				{"/http/sendmsg?" + legacyQuery("15551234567", "down"), "200"},
			} {
				status, body := p.Get(t, "direct", "", s.path)
				lines := auditLines(t, p)
				last := lines[len(lines)-1]
				switch mode {
				case "refuse":
					if status != 503 || body != "ERR: 901, Shared store unavailable, message not sent\n" || last["route"] != nil ||
						last["code"] != "901" || last["path"] == nil {
						t.Errorf("%s: %d %q, audit %v; want the 503 before routing", s.path, status, body, last)
					}
				case "local":
					if fmt.Sprint(status) != s.local || last["store"] != "local" {
						t.Errorf("%s: %d %q, audit %v; want %s counted locally", s.path, status, body, last, s.local)
					}
				}
			}
			want := map[string]int{"refuse": 1, "local": 2}[mode]
			if got := len(fp.Requests()); got != want {
				t.Errorf("provider got %d messages, want %d", got, want)
			}
		})
	}
}

// TestClusterDuplicateSpendsItsLimits: a repeat within dedup_window is
// answered from the first message's reply without sending (joined) and,
// as before the checks were one step, spends the limits of the message it
// is: per_number and daily_max count it.
func TestClusterDuplicateSpendsItsLimits(t *testing.T) {
	redisAddr := redistest.Shared(t)
	prefix := "dupspend-" + fmt.Sprint(time.Now().UnixNano()) + ":"
	fp := newFakeProvider(t, oneAPIReply())
	p := startPostern(t, fmt.Sprintf("[cluster]\nredis = %q\nkey_prefix = %q\nstore_timeout = \"5s\"\n", "redis://"+redisAddr+"/0", prefix)+
		proxytest.Config{CAFile: fp.CAFile(t), Name: "one", Endpoint: fp.URL("/v1/message"),
			Limits: "per_client = \"off\"\nper_number = \"2/1h\"\ndaily_max = 100"}.TOML(), env())
	t.Cleanup(func() { p.Srv.Close() })
	first := "/http/sendmsg?" + legacyQuery("15551234567", "code 1")
	if status, _ := p.Get(t, "direct", "", first); status != 200 {
		t.Fatalf("first: %d", status)
	}
	// The reply is kept in the background: wait for it.
	raw := goredis.NewClient(&goredis.Options{Addr: redisAddr})
	defer raw.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		keys, _ := raw.Keys(context.Background(), prefix+"msg:*").Result()
		if len(keys) == 1 {
			if v, _ := raw.Get(context.Background(), keys[0]).Result(); strings.HasPrefix(v, "r:") {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("the first reply was not kept within 10s")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if status, _ := p.Get(t, "direct", "", first); status != 200 {
		t.Fatalf("repeat: %d", status)
	}
	lines := auditLines(t, p)
	if last := lines[len(lines)-1]; last["joined"] != true || last["store"] != "redis" || len(fp.Requests()) != 1 {
		t.Fatalf("repeat: audit %v, %d sent; want joined from redis, sent once", last, len(fp.Requests()))
	}
	if status, _ := p.Get(t, "direct", "", "/http/sendmsg?"+legacyQuery("15551234567", "code 2")); status != 429 {
		t.Errorf("third message to the number: %d, want 429 (the repeat spent a per_number token)", status)
	}
	if used, _ := raw.Get(context.Background(), prefix+"daily:"+time.Now().UTC().Format(time.DateOnly)).Result(); used != "2" {
		t.Errorf("daily count %q, want 2 (the message and its repeat)", used)
	}
}
