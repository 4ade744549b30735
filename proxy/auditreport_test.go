package proxy_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/postern/postern/proxy/audit"
	"github.com/postern/postern/proxy/proxytest"
)

// chainLines writes raw audit lines through real sinks with key, so they
// are chained exactly as postern chains them, and returns the file.
func chainLines(t *testing.T, key string, lines []string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "audit.log")
	s, err := audit.OpenSinks(audit.Config{Console: "off", File: path, Queue: len(lines) + 1, ChainKey: audit.ChainKey(key), Version: "test"}, nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range lines {
		s.Write([]byte(strings.TrimSpace(l) + "\n"))
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

// jsonReport is the -json report as a consumer reads it.
type jsonReport struct {
	Lines      int            `json:"lines"`
	Sent       int            `json:"sent"`
	ByOutcome  map[string]int `json:"by_outcome"`
	Refusals   map[string]int `json:"refusals_by_reason"`
	Closing    string         `json:"closing_statement"`
	Exceptions []string       `json:"exceptions"`
	Days       []struct {
		Date      string         `json:"date"`
		ByOutcome map[string]int `json:"by_outcome"`
	} `json:"messages_per_day"`
	Hosts []struct {
		Host        string `json:"host"`
		TLSVersions []struct {
			Value string `json:"value"`
			Count int    `json:"count"`
		} `json:"tls_versions"`
		Leaves []struct {
			Value string `json:"value"`
			Count int    `json:"count"`
		} `json:"leaf_sha256"`
	} `json:"upstream_hosts"`
	Unknown []struct {
		To []string `json:"to"`
	} `json:"unknown_outcomes"`
	Chain struct {
		Intact bool `json:"intact"`
	} `json:"chain"`
}

// reportPage renders r as HTML and checks, with an HTML parser, that every
// number in the page is the JSON report's; it returns the page's path.
func reportPage(t *testing.T, r *audit.Report) (string, *proxytest.ReportPage, jsonReport) {
	t.Helper()
	var page bytes.Buffer
	if err := r.HTML(&page); err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(r)
	var j jsonReport
	if err := json.Unmarshal(b, &j); err != nil {
		t.Fatal(err)
	}
	p := proxytest.ReadReportPage(t, page.Bytes())
	bars := map[string]map[string]int{}
	for _, d := range j.Days {
		bars[d.Date] = d.ByOutcome
	}
	if !maps.EqualFunc(p.Bars, bars, maps.Equal) {
		t.Errorf("chart bars %v, JSON messages_per_day %v", p.Bars, bars)
	}
	if !maps.Equal(p.Outcomes, j.ByOutcome) || !maps.Equal(p.Refusals, j.Refusals) {
		t.Errorf("page outcomes %v refusals %v; JSON %v %v", p.Outcomes, p.Refusals, j.ByOutcome, j.Refusals)
	}
	for _, h := range j.Hosts {
		for _, l := range h.Leaves {
			if p.Leaves[h.Host][l.Value] != l.Count {
				t.Errorf("host %s leaf %s: page %d, JSON %d", h.Host, l.Value, p.Leaves[h.Host][l.Value], l.Count)
			}
		}
		for _, v := range h.TLSVersions {
			if p.TLS[h.Host][v.Value] != v.Count {
				t.Errorf("host %s %s: page %d, JSON %d", h.Host, v.Value, p.TLS[h.Host][v.Value], v.Count)
			}
		}
	}
	if len(p.Leaves) != len(j.Hosts) {
		t.Errorf("page shows %d hosts, JSON %d", len(p.Leaves), len(j.Hosts))
	}
	if p.Values["lines"] != fmt.Sprint(j.Lines) || p.Values["sent"] != fmt.Sprint(j.Sent) || p.Unknown != len(j.Unknown) ||
		p.Intact != fmt.Sprint(j.Chain.Intact) || p.Closing != j.Closing {
		t.Errorf("page lines %s sent %s unknown %d intact %s closing %q; JSON %d %d %d %v %q",
			p.Values["lines"], p.Values["sent"], p.Unknown, p.Intact, p.Closing, j.Lines, j.Sent, len(j.Unknown), j.Chain.Intact, j.Closing)
	}
	path := filepath.Join(t.TempDir(), "report.html")
	if err := os.WriteFile(path, page.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	return path, p, j
}

const reportKey = "report-test-chain-key-000"

func msgLine(day, outcome, extra string) string {
	return fmt.Sprintf(`{"time":"2026-11-%sT10:00:00Z","level":"INFO","msg":"message","client":"10.0.0.1","mode":"proxy","method":"GET","outcome":%q,"status":200%s,"latency_ms":1}`, day, outcome, extra)
}

const (
	leafA = "aaaa000000000000000000000000000000000000000000000000000000000001"
	leafB = "bbbb000000000000000000000000000000000000000000000000000000000002"
)

func sampleTrail() []string {
	sent := func(tlsv, leaf string) string {
		return fmt.Sprintf(`,"route":"r","provider":"clickatell-one","to":["*******4567"],"ids":["id1"],"tls":%q,"leaf_sha256":%q,"upstream_host":"platform.clickatell.com"`, tlsv, leaf)
	}
	return []string{
		msgLine("01", "delivered", sent("TLS 1.3", leafA)),
		msgLine("01", "delivered", sent("TLS 1.3", leafA)),
		msgLine("01", "refused", `,"reason":"no route matches","host":"evil.example"`),
		msgLine("01", "unknown", sent("TLS 1.3", leafA)),
		msgLine("02", "delivered", sent("TLS 1.2", leafB)),
		msgLine("02", "refused", `,"reason":"client not in allow_clients"`),
		msgLine("02", "refused", `,"reason":"client not in allow_clients"`),
		msgLine("02", "sandbox", `,"route":"try","provider":"sandbox"`),
		msgLine("03", "partial", sent("TLS 1.3", leafB)),
	}
}

// TestReportHTMLMatchesJSON: the page shows the JSON report's numbers —
// chart, outcomes, refusals, hosts' TLS versions and certificates,
// unknown outcomes, chain — and the closing statement; a real browser
// renders it where one is installed.
func TestReportHTMLMatchesJSON(t *testing.T) {
	path := chainLines(t, reportKey, sampleTrail())
	r, err := audit.ReportFiles([]string{path}, time.Time{}, []byte(reportKey))
	if err != nil {
		t.Fatal(err)
	}
	page, p, j := reportPage(t, r)
	want := "5 messages from 2026-11-01 to 2026-11-03; every one left over TLS ≥ 1.2 to a verified host; chain intact."
	if j.Closing != want || len(j.Exceptions) != 0 {
		t.Errorf("closing statement %q %v, want %q", j.Closing, j.Exceptions, want)
	}
	if j.Days[0].ByOutcome["delivered"] != 2 || len(j.Hosts) != 1 || len(j.Hosts[0].Leaves) != 2 || len(j.Unknown) != 1 {
		t.Errorf("JSON report: %+v", j)
	}
	if !strings.Contains(p.Text, "*******4567") {
		t.Error("the unknown outcome's masked number is not listed")
	}
	dom := proxytest.RenderInBrowser(t, page)
	if !strings.Contains(dom, want) || !strings.Contains(dom, `data-outcome="delivered"`) {
		t.Errorf("the browser's DOM lacks the closing statement or the chart:\n%.2000s", dom)
	}
}

// TestReportHTMLExceptions: a tampered trail, a message without verified
// TLS and one over TLS 1.0 turn the statement into its exact exceptions.
func TestReportHTMLExceptions(t *testing.T) {
	lines := append(sampleTrail(),
		msgLine("03", "delivered", `,"route":"r","provider":"clickatell-one"`),
		msgLine("03", "delivered", `,"route":"r","provider":"clickatell-one","tls":"TLS 1.0","leaf_sha256":"cc","upstream_host":"old.example"`))
	path := chainLines(t, reportKey, lines)
	b, _ := os.ReadFile(path)
	os.WriteFile(path, bytes.Replace(b, []byte(`"reason":"no route matches"`), []byte(`"reason":"no route match"`), 1), 0o600)
	r, err := audit.ReportFiles([]string{path}, time.Time{}, []byte(reportKey))
	if err != nil {
		t.Fatal(err)
	}
	_, p, j := reportPage(t, r)
	if j.Chain.Intact || p.Intact != "false" || len(j.Exceptions) != 3 {
		t.Fatalf("exceptions %q", j.Exceptions)
	}
	for i, want := range []string{"1 message(s) accepted by a provider have no verified TLS connection recorded, at " + path + ":11",
		"1 message(s) went over TLS below 1.2, at " + path + ":12 (TLS 1.0)",
		"the chain is NOT intact: 1 problem(s), first " + path + ":4: edited line"} {
		if !strings.HasPrefix(j.Exceptions[i], want) {
			t.Errorf("exception %d: %q, want %q", i, j.Exceptions[i], want)
		}
	}
	if !strings.HasPrefix(j.Closing, "7 messages from 2026-11-01 to 2026-11-03, with 3 exception(s): ") {
		t.Errorf("closing %q", j.Closing)
	}
}

// faultTrail gathers the fault suite's audit lines (TestProviderFaults)
// and the outcome each scenario expects, then chains them as postern does
// and checks the report of that trail: the page renders, and the chart's
// counts are the scenarios' outcomes.
type faultTrail struct {
	lines []string
	want  map[string]int
}

func (f *faultTrail) add(audit, outcome string) {
	if f.want == nil {
		f.want = map[string]int{}
	}
	f.lines = append(f.lines, strings.Split(strings.TrimSpace(audit), "\n")...)
	f.want[outcome]++
}

func (f *faultTrail) check(t *testing.T) {
	if len(f.lines) == 0 || t.Failed() {
		return
	}
	t.Run("report of the fault suite's audit trail", func(t *testing.T) {
		path := chainLines(t, reportKey, f.lines)
		r, err := audit.ReportFiles([]string{path}, time.Time{}, []byte(reportKey))
		if err != nil {
			t.Fatal(err)
		}
		page, p, j := reportPage(t, r)
		got := map[string]int{}
		for _, byOutcome := range p.Bars {
			for o, n := range byOutcome {
				got[o] += n
			}
		}
		if !maps.Equal(got, f.want) || !j.Chain.Intact {
			t.Errorf("chart counts %v, the scenarios' outcomes %v (chain intact %v)", got, f.want, j.Chain.Intact)
		}
		if f.want["unknown"] != len(j.Unknown) {
			t.Errorf("%d unknown outcomes listed, want %d", len(j.Unknown), f.want["unknown"])
		}
		dom := proxytest.RenderInBrowser(t, page)
		if !strings.Contains(dom, j.Closing) {
			t.Errorf("the browser's page lacks the closing statement %q", j.Closing)
		}
	})
}
