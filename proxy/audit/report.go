package audit

import (
	"bufio"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"
)

// Report is what `postern report` tells an auditor about a set of
// audit logs.
type Report struct {
	Since      time.Time      `json:"since,omitzero"`
	First      time.Time      `json:"first,omitzero"` // earliest line counted
	Last       time.Time      `json:"last,omitzero"`  // latest line counted
	Lines      int            `json:"lines"`          // audit lines counted
	Unreadable int            `json:"unreadable"`     // lines that are not audit JSON
	ByOutcome  map[string]int `json:"by_outcome"`
	ByRoute    map[string]int `json:"by_route"`
	ByProvider map[string]int `json:"by_provider"`
	Refusals   map[string]int `json:"refusals_by_reason"`
	TLS        map[string]int `json:"tls_versions"`
	Leaves     map[string]int `json:"leaf_sha256"`
	// Unverified counts messages a provider accepted (delivered or
	// partial, not sandbox) whose line records no verified TLS connection.
	// postern cannot send any other way, so it must be 0.
	Unverified int    `json:"unverified_tls"`
	Statement  string `json:"statement"`

	// The facts below are filled by ReportFiles (report_facts.go), which
	// reads files in order and verifies their chain.
	Facts
}

// sandboxProvider is the provider name of the sandbox, which sends
// nothing and so has no TLS connection to record.
const sandboxProvider = "sandbox"

// BuildReport reads audit logs (JSON lines as postern writes them) and
// summarises the lines at or after since (zero = all).
func BuildReport(logs map[string]io.Reader, since time.Time) (*Report, error) {
	r := newReport(since)
	for _, name := range slices.Sorted(maps.Keys(logs)) {
		sc := bufio.NewScanner(logs[name])
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			l, ok := parseLine(sc.Bytes())
			if !ok {
				if !isChainLine(sc.Bytes()) && strings.TrimSpace(sc.Text()) != "" {
					r.Unreadable++
				}
				continue
			}
			if !since.IsZero() && l.Time.Before(since) {
				continue
			}
			r.add(l)
		}
		if err := sc.Err(); err != nil {
			return nil, fmt.Errorf("reading %s: %w", name, err)
		}
	}
	r.finish()
	return r, nil
}

func newReport(since time.Time) *Report {
	return &Report{Since: since, ByOutcome: map[string]int{}, ByRoute: map[string]int{}, ByProvider: map[string]int{},
		Refusals: map[string]int{}, TLS: map[string]int{}, Leaves: map[string]int{}}
}

// finish writes the statement once every line is counted.
func (r *Report) finish() {
	if r.Unverified == 0 {
		r.Statement = "No message left without verified TLS."
	} else {
		r.Statement = fmt.Sprintf("WARNING: %d message(s) accepted by a provider have no verified TLS connection recorded.", r.Unverified)
	}
	r.finishFacts()
}

func (r *Report) add(l Line) {
	r.addFacts(l)
	r.Lines++
	if r.First.IsZero() || l.Time.Before(r.First) {
		r.First = l.Time
	}
	if l.Time.After(r.Last) {
		r.Last = l.Time
	}
	r.ByOutcome[l.Outcome]++
	r.ByRoute[orDash(l.Route)]++
	r.ByProvider[orDash(l.Provider)]++
	if l.Outcome == "refused" {
		r.Refusals[orDash(l.Reason)]++
	}
	if l.TLS != "" {
		r.TLS[l.TLS]++
	}
	if l.Leaf != "" {
		r.Leaves[l.Leaf]++
	}
	left := l.Outcome == "delivered" || l.Outcome == "partial"
	if left && l.Provider != sandboxProvider && (l.TLS == "" || l.Leaf == "") {
		r.Unverified++
	}
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// Text renders the report for people.
func (r *Report) Text() string {
	var b strings.Builder
	b.WriteString("postern audit report\n")
	if !r.Since.IsZero() {
		fmt.Fprintf(&b, "since:     %s\n", r.Since.Format(time.RFC3339))
	}
	if r.Lines > 0 {
		fmt.Fprintf(&b, "period:    %s to %s\n", r.First.Format(time.RFC3339), r.Last.Format(time.RFC3339))
	}
	fmt.Fprintf(&b, "lines:     %d", r.Lines)
	if r.Unreadable > 0 {
		fmt.Fprintf(&b, " (%d unreadable lines skipped)", r.Unreadable)
	}
	b.WriteString("\n")
	section := func(title string, m map[string]int) {
		fmt.Fprintf(&b, "\n%s:\n", title)
		if len(m) == 0 {
			b.WriteString("  (none)\n")
			return
		}
		keys := slices.Sorted(maps.Keys(m))
		slices.SortStableFunc(keys, func(x, y string) int { return m[y] - m[x] })
		for _, k := range keys {
			fmt.Fprintf(&b, "  %7d  %s\n", m[k], k)
		}
	}
	section("by outcome", r.ByOutcome)
	section("by route", r.ByRoute)
	section("by provider", r.ByProvider)
	section("refusals by reason", r.Refusals)
	section("upstream TLS versions", r.TLS)
	section("upstream leaf certificates (SHA-256)", r.Leaves)
	if n := r.ByOutcome[OutcomeSandbox]; n > 0 {
		fmt.Fprintf(&b, "\n%d message(s) went to the sandbox provider and were NOT sent.\n", n)
	}
	fmt.Fprintf(&b, "\n%s\n", r.Statement)
	if r.Chain != nil {
		b.WriteString("\n" + r.Chain.Text())
	}
	return b.String()
}

// ParseReportSince reads -since: a date (2006-01-02, UTC midnight) or an
// RFC 3339 time.
func ParseReportSince(s string) (time.Time, error) {
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t, nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	return time.Time{}, fmt.Errorf("-since %q: want a date like 2025-03-01 or an RFC 3339 time", s)
}
