package proxy_test

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/postern/postern/proxy/audit"
)

// TestAuditReport: the report over a real audit file counts messages by
// outcome, route and provider, refusals by reason, TLS versions and leaf
// fingerprints, and states that nothing left without verified TLS; a
// tampered line without TLS evidence turns that into a warning.
func TestAuditReport(t *testing.T) {
	file := filepath.Join(t.TempDir(), "audit.log")
	fp := newFakeProvider(t, oneAPIReply())
	p := startPostern(t, fmt.Sprintf("[audit]\nfile = %q\n", file)+routeConfig(fp.CAFile(t), "clickatell", "clickatell-one", fp.URL("/v1/message"), ""), env())
	p.Get(t, "proxy", clickatellIn, "/http/sendmsg?"+legacyQuery("15551234567", "one"))
	p.Get(t, "proxy", clickatellIn, "/http/sendmsg?"+legacyQuery("15551234567,442079460958", "two"))
	p.Get(t, "proxy", "evil.example", "/")
	p.Get(t, "proxy", clickatellIn, "/http/sendmsg?"+legacyQuery("449098790123", "premium"))
	waitFor(t, "4 audit lines", func() bool { b, _ := os.ReadFile(file); return strings.Count(string(b), `"msg":"message"`) == 4 })

	f, _ := os.Open(file)
	defer f.Close()
	r, err := audit.BuildReport(map[string]io.Reader{file: f}, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	for what, got := range map[string]int{
		"lines": r.Lines, "delivered": r.ByOutcome["delivered"], "refused": r.ByOutcome["refused"],
		"route clickatell": r.ByRoute["clickatell"], "route -": r.ByRoute["-"], "provider": r.ByProvider["clickatell-one"],
		"no route": r.Refusals["no route matches"], "premium": r.Refusals["Cannot route message: premium-rate number refused"],
		"TLS 1.3": r.TLS["TLS 1.3"], "leaves": len(r.Leaves), "unverified": r.Unverified,
	} {
		want := map[string]int{"lines": 4, "delivered": 2, "refused": 2, "route clickatell": 3, "route -": 1, "provider": 3,
			"no route": 1, "premium": 1, "TLS 1.3": 2, "leaves": 1, "unverified": 0}[what]
		if got != want {
			t.Errorf("%s: got %d, want %d\n%s", what, got, want, r.Text())
		}
	}
	text := r.Text()
	if !strings.Contains(text, "No message left without verified TLS.") {
		t.Errorf("report lacks the TLS statement:\n%s", text)
	}

	tampered := `{"time":"2025-03-02T10:00:00Z","msg":"message","outcome":"delivered","route":"x","provider":"clickatell-one"}` + "\n" +
		`{"time":"2025-01-01T10:00:00Z","msg":"message","outcome":"delivered","route":"old","provider":"clickatell-one"}` + "\nnot json\n"
	since, _ := audit.ParseReportSince("2025-03-01")
	r, err = audit.BuildReport(map[string]io.Reader{"t": strings.NewReader(tampered)}, since)
	if err != nil {
		t.Fatal(err)
	}
	if r.Lines != 1 || r.Unreadable != 1 || r.Unverified != 1 || !strings.HasPrefix(r.Statement, "WARNING: 1 message") {
		t.Errorf("tampered log: %+v", r)
	}
}
