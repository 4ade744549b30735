package proxy_test

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/postern/postern/proxy"
	"github.com/postern/postern/proxy/config"
	"github.com/postern/postern/rewrite"
)

// TestTranslateEqualsTheWire: for every provider, the same legacy request
// sent through a real postern listener to a fake provider and given to
// Translate yields the same request: method, URL, every header postern
// sets (the credential aside) and the body byte for byte, the derived
// clientMessageId included.
func TestTranslateEqualsTheWire(t *testing.T) {
	type wireCase struct {
		path, extra string
		respond     func(http.ResponseWriter, received)
	}
	cases := map[string]wireCase{
		"clickatell-one":  {"/v1/message", "", oneAPIReply()},
		"clickatell-rest": {"/rest/message", "", restReply()},
	}
	for _, pc := range providerCases() {
		cases[pc.provider] = wireCase{pc.path, pc.extra, reply(pc.replies["success"])}
	}
	for _, name := range rewrite.ProviderNames() {
		c, ok := cases[name]
		if !ok {
			t.Errorf("provider %s has no wire case", name)
			continue
		}
		t.Run(name, func(t *testing.T) {
			fp := newFakeProvider(t, c.respond)
			toml := routeConfig(fp.CAFile(t), "r", name, fp.URL(c.path), c.extra)
			const ua = "postern/wire-test"
			p := startPosternWith(t, toml, env(), proxy.Options{UserAgent: ua})
			query := "/http/sendmsg?" + legacyQuery("+1 (555) 123-4567,+44 20 7946 0958", "Your password is abc123")
			if status, body := p.Get(t, "proxy", clickatellIn, query); status != http.StatusOK {
				t.Fatalf("ISE got %d %q", status, body)
			}
			cfg, err := config.Load("test.toml", []byte(toml), config.LoadOptions{MaskTokens: true,
				LookupEnv: func(k string) (string, bool) { v, ok := env()[k]; return v, ok }})
			if err != nil {
				t.Fatal(err)
			}
			out, err := proxy.Translate(context.Background(), cfg, "http://"+clickatellIn+query, ua)
			if err != nil {
				t.Fatal(err)
			}
			if strings.Contains(out, testToken) {
				t.Errorf("translate reveals the token:\n%s", out)
			}
			shown := parseTranslation(t, out)
			sent := fp.Requests()
			if len(shown) != len(sent) {
				t.Fatalf("translate shows %d requests, the provider got %d:\n%s", len(shown), len(sent), out)
			}
			for i, r := range sent {
				compareWire(t, shown[i], r, fp.URL(c.path))
			}
		})
	}
}

// shownRequest is one request as translate prints it.
type shownRequest struct {
	line   string // "POST https://..."
	header map[string]string
	body   string
}

func parseTranslation(t *testing.T, out string) []shownRequest {
	t.Helper()
	var reqs []shownRequest
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	for i := 0; i < len(lines); i++ {
		if strings.HasPrefix(lines[i], "#") {
			continue
		}
		r := shownRequest{line: lines[i], header: map[string]string{}}
		for i++; i < len(lines) && lines[i] != ""; i++ {
			k, v, _ := strings.Cut(lines[i], ": ")
			r.header[k] = v
		}
		if i+1 < len(lines) {
			i++
			r.body = lines[i]
		}
		reqs = append(reqs, r)
	}
	return reqs
}

func compareWire(t *testing.T, shown shownRequest, got received, endpoint string) {
	t.Helper()
	wantURL := strings.TrimSuffix(endpoint, got.Path) + got.Path
	if got.Query != "" {
		wantURL += "?" + got.Query
	}
	if line := got.Method + " " + wantURL; shown.line != line {
		t.Errorf("request line: translate %q, wire %q", shown.line, line)
	}
	if shown.body != string(got.Body) {
		t.Errorf("body:\ntranslate %s\nwire      %s", shown.body, got.Body)
	}
	var keys []string
	for k := range got.Header {
		switch k {
		case "Content-Length", "Accept-Encoding": // written by Go's transport, not by postern
			continue
		}
		keys = append(keys, k)
		v := got.Header.Get(k)
		s, ok := shown.header[k]
		switch {
		case !ok:
			t.Errorf("header %s: on the wire (%q), not in translate", k, v)
		case k == "Authorization":
			scheme, _, _ := strings.Cut(v, " ")
			if s != "<redacted>" && s != scheme+" <redacted>" {
				t.Errorf("Authorization: translate %q, want the credential of %q redacted", s, scheme)
			}
		case s != v:
			t.Errorf("header %s: translate %q, wire %q", k, s, v)
		}
	}
	if len(keys) != len(shown.header) {
		shownKeys := slices.Sorted(func(yield func(string) bool) {
			for k := range shown.header {
				if !yield(k) {
					return
				}
			}
		})
		t.Errorf("headers: translate %v, wire %v", shownKeys, keys)
	}
}
