package proxy_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/postern/postern/proxy"
	"github.com/postern/postern/proxy/proxytest"
)

// The suites' names for the test kit (proxy/proxytest): one fake provider,
// one server starter, one config builder.
type (
	received     = proxytest.Received
	fakeProvider = proxytest.Provider
	postern      = proxytest.Postern
	syncBuffer   = proxytest.SyncBuffer
)

func newFakeProvider(t testing.TB, respond func(w http.ResponseWriter, r received)) *fakeProvider {
	t.Helper()
	return proxytest.NewProvider(t, respond)
}

var (
	newFakeProviderTLS = proxytest.NewProviderTLS
	routeConfig        = proxytest.RouteConfig
	mustNotContain     = proxytest.MustNotContain
)

// startPostern loads configTOML (env: secrets come from env) and serves it
// on 127.0.0.1:0 until the test ends.
func startPostern(t testing.TB, configTOML string, env map[string]string) *postern {
	t.Helper()
	return startPosternWith(t, configTOML, env, proxy.Options{})
}

// startPosternWith is startPostern with extra server options. Besides the
// env values, the legacy password of the suites' requests must never reach
// a log.
func startPosternWith(t testing.TB, configTOML string, env map[string]string, opts proxy.Options) *postern {
	t.Helper()
	p := proxytest.Start(t, configTOML, env, opts)
	t.Cleanup(func() {
		mustNotContain(t, "postern log", p.Log.String(), legacyPass)
		mustNotContain(t, "postern audit", p.Audit.String(), legacyPass)
	})
	return p
}

// auditLines decodes every audit line written so far.
func auditLines(t *testing.T, p *postern) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(p.Audit.String()), "\n") {
		if l == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("audit line is not JSON: %v\n%s", err, l)
		}
		out = append(out, m)
	}
	return out
}
