package rewrite_test

import (
	"context"
	"net/http"
	"strconv"
	"testing"

	"github.com/postern/postern/rewrite"
)

// Allocation budgets for one message, checked on every test run (not timed,
// so a busy machine cannot fail them). They sit a little above what the code
// needs today (docs/benchmarks.md), with or without -race, so a change that
// puts real work back on the request path — a per-message regexp compile, a
// phone number parse per recipient — fails here rather than surfacing as
// lost throughput months later.
const (
	// maxRewriteAllocs bounds parse + build + reply read + legacy answer
	// for one message with one recipient, for the fixed-shape providers
	// (Clickatell's three, Twilio): 13-16 today, 15-18 before the request
	// was copied from a template made at start (issue 13's second round),
	// 41-50 before their bodies were appended and their replies read
	// without encoding/json's reflection (issue 13), 233 when every
	// recipient was also looked up in libphonenumber. 6 of today's are the
	// *http.Request (itself with its URL and body reader, the header's two,
	// the body, io.NopCloser, GetBody).
	maxRewriteAllocs = 16
	// maxTemplateRewriteAllocs is the same for the template provider,
	// whose body and reply shapes are the operator's and still go through
	// encoding/json and text/template: 53-55 today.
	maxTemplateRewriteAllocs = 64
	// maxLookupAllocs bounds LookupNumber for an ordinary international
	// number: 0 today, 7-18 under -race (which empties the regexp
	// package's sync.Pool at random); libphonenumber's own path is 73-150.
	maxLookupAllocs = 24
)

func TestRewriteAllocationBudget(t *testing.T) {
	dialect, err := rewrite.NewDialect("clickatell-http", rewrite.DialectSettings{})
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range rewrite.ProviderNames() {
		t.Run(name, func(t *testing.T) {
			bp, ok := benchProviders[name]
			if !ok {
				t.Fatalf("no benchmark config for provider %q", name)
			}
			p, err := rewrite.NewProvider(name, rewrite.ProviderSettings{Config: bp.cfg, Keys: bp.keys})
			if err != nil {
				t.Fatal(err)
			}
			reply := rewrite.Response{Status: bp.status, Header: http.Header{"Content-Type": {"application/json"}}, Body: []byte(bp.reply)}
			ctx := context.Background()
			queries := make([]string, 0, 60)
			for i := range cap(queries) {
				queries = append(queries, "user=u&password=p&api_id=1&to=%2B1+555+123+4567&text=Your+password+is+"+strconv.Itoa(i))
			}
			i := 0
			var failure string
			allocs := testing.AllocsPerRun(50, func() {
				in := rewrite.Inbound{Method: http.MethodGet, Host: "api.clickatell.com", Path: "/http/sendmsg", RawQuery: queries[i]}
				i++
				m, err := dialect.Parse(in)
				if err != nil {
					failure = err.Error()
					return
				}
				if _, err := p.Build(ctx, m); err != nil {
					failure = err.Error()
					return
				}
				if rep := dialect.Reply(p.Read(m, reply)); rep.Status != http.StatusOK {
					failure = rep.Body
				}
			})
			if failure != "" {
				t.Fatalf("the message did not go through: %s", failure)
			}
			budget := maxRewriteAllocs
			if name == "template" {
				budget = maxTemplateRewriteAllocs
			}
			if allocs > float64(budget) {
				t.Errorf("one message costs %.0f allocations, budget %d", allocs, budget)
			}
			t.Logf("%.0f allocations per message", allocs)
		})
	}
}

func TestLookupNumberAllocationBudget(t *testing.T) {
	for _, digits := range []string{"12015550123", "15551234567", "447400123456", "4915123456789", "33612345678", "61491570156"} {
		allocs := testing.AllocsPerRun(50, func() {
			if rewrite.LookupNumber(digits).Type == "" {
				t.Fatal("no type")
			}
		})
		if allocs > maxLookupAllocs {
			t.Errorf("LookupNumber(%s) costs %.0f allocations, budget %d", digits, allocs, maxLookupAllocs)
		}
	}
}
