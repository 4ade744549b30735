package audit

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
)

// Facts are what the auditor's report adds to the counts: the period day
// by day, each upstream host's TLS versions and certificates over time,
// the unknown outcomes to follow up, the chain's verification and the
// closing statement with its exceptions. The HTML report shows exactly
// these numbers.
type Facts struct {
	// Sent counts messages that left for a provider: delivered, partial,
	// or unknown after a TLS connection was made (never sandbox).
	Sent int `json:"sent"`
	// OldTLS counts lines whose connection used TLS below 1.2.
	OldTLS     int              `json:"tls_below_1_2"`
	Days       []DayCount       `json:"messages_per_day"`
	Hosts      []HostReport     `json:"upstream_hosts"`
	Unknown    []UnknownMessage `json:"unknown_outcomes"`
	Exceptions []string         `json:"exceptions"`
	Closing    string           `json:"closing_statement"`
	Chain      *Verification    `json:"chain,omitempty"`

	days       map[string]map[string]int
	hosts      map[string]*HostReport
	pos        string   // file:line of the line being added
	unverified []string // where Unverified and OldTLS lines are
	oldTLS     []string
}

// DayCount is one UTC day's lines by outcome.
type DayCount struct {
	Date      string         `json:"date"` // 2006-01-02, UTC
	Total     int            `json:"total"`
	ByOutcome map[string]int `json:"by_outcome"`
}

// HostReport is what was seen of one upstream host.
type HostReport struct {
	Host        string    `json:"host"`
	Providers   []string  `json:"providers"`
	Messages    int       `json:"messages"`
	First       time.Time `json:"first"`
	Last        time.Time `json:"last"`
	TLSVersions []Seen    `json:"tls_versions"`
	Leaves      []Seen    `json:"leaf_sha256"`
}

// Seen is one value (a TLS version, a certificate fingerprint) over time.
type Seen struct {
	Value string    `json:"value"`
	Count int       `json:"count"`
	First time.Time `json:"first"`
	Last  time.Time `json:"last"`
}

// UnknownMessage is a message whose outcome is unknown: the provider may
// or may not have it. Numbers are masked.
type UnknownMessage struct {
	Time        time.Time `json:"time"`
	At          string    `json:"at"` // file:line
	Route       string    `json:"route,omitempty"`
	Provider    string    `json:"provider,omitempty"`
	To          []string  `json:"to"`
	IDs         []string  `json:"ids,omitempty"`
	ClientMsgID string    `json:"client_msg_id,omitempty"`
	Code        string    `json:"code,omitempty"`
	Reason      string    `json:"reason,omitempty"`
}

// maxListed bounds the places an exception lists.
const maxListed = 20

func (r *Report) addFacts(l Line) {
	if r.days == nil {
		r.days, r.hosts = map[string]map[string]int{}, map[string]*HostReport{}
	}
	day := l.Time.UTC().Format(time.DateOnly)
	if r.days[day] == nil {
		r.days[day] = map[string]int{}
	}
	r.days[day][l.Outcome]++

	sandbox := l.Provider == sandboxProvider || l.Outcome == OutcomeSandbox
	left := !sandbox && (l.Outcome == "delivered" || l.Outcome == "partial" || (l.Outcome == "unknown" && l.TLS != ""))
	if left {
		r.Sent++
	}
	if left && (l.TLS == "" || l.Leaf == "") && l.Outcome != "unknown" && len(r.unverified) < maxListed {
		r.unverified = append(r.unverified, r.pos)
	}
	if l.TLS != "" && l.TLS != "TLS 1.2" && l.TLS != "TLS 1.3" {
		r.OldTLS++
		if len(r.oldTLS) < maxListed {
			r.oldTLS = append(r.oldTLS, r.pos+" ("+l.TLS+")")
		}
	}
	if l.TLS != "" || l.Upstream != "" {
		host := l.Upstream
		if host == "" {
			host = "(host not recorded: " + orDash(l.Provider) + ")"
		}
		h := r.hosts[host]
		if h == nil {
			h = &HostReport{Host: host, First: l.Time}
			r.hosts[host] = h
		}
		h.Messages++
		h.First, h.Last = minTime(h.First, l.Time), maxTime(h.Last, l.Time)
		if l.Provider != "" && !slices.Contains(h.Providers, l.Provider) {
			h.Providers = append(h.Providers, l.Provider)
			slices.Sort(h.Providers)
		}
		h.TLSVersions = see(h.TLSVersions, l.TLS, l.Time)
		h.Leaves = see(h.Leaves, l.Leaf, l.Time)
	}
	if l.Outcome == "unknown" {
		r.Unknown = append(r.Unknown, UnknownMessage{Time: l.Time, At: r.pos, Route: l.Route, Provider: l.Provider,
			To: MaskAll(l.To), IDs: l.IDs, ClientMsgID: l.ClientMsgID, Code: l.Code, Reason: l.Reason})
	}
}

func see(list []Seen, v string, t time.Time) []Seen {
	if v == "" {
		return list
	}
	for i := range list {
		if list[i].Value == v {
			list[i].Count++
			list[i].First, list[i].Last = minTime(list[i].First, t), maxTime(list[i].Last, t)
			return list
		}
	}
	return append(list, Seen{Value: v, Count: 1, First: t, Last: t})
}

func minTime(a, b time.Time) time.Time {
	if a.IsZero() || b.Before(a) {
		return b
	}
	return a
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// finishFacts sorts what was gathered and writes the closing statement.
func (r *Report) finishFacts() {
	r.Days = []DayCount{}
	for _, d := range slices.Sorted(maps.Keys(r.days)) {
		dc := DayCount{Date: d, ByOutcome: r.days[d]}
		for _, n := range dc.ByOutcome {
			dc.Total += n
		}
		r.Days = append(r.Days, dc)
	}
	r.Hosts = []HostReport{}
	for _, h := range slices.Sorted(maps.Keys(r.hosts)) {
		r.Hosts = append(r.Hosts, *r.hosts[h])
	}
	if r.Unknown == nil {
		r.Unknown = []UnknownMessage{}
	}
	r.Exceptions = []string{}
	if r.Unverified > 0 {
		r.Exceptions = append(r.Exceptions, fmt.Sprintf("%d message(s) accepted by a provider have no verified TLS connection recorded, at %s",
			r.Unverified, listed(r.unverified, r.Unverified)))
	}
	if r.OldTLS > 0 {
		r.Exceptions = append(r.Exceptions, fmt.Sprintf("%d message(s) went over TLS below 1.2, at %s", r.OldTLS, listed(r.oldTLS, r.OldTLS)))
	}
	chain := "chain not verified"
	if c := r.Chain; c != nil {
		switch {
		case !c.Intact:
			n := len(c.Problems) + c.MoreProblems
			r.Exceptions = append(r.Exceptions, fmt.Sprintf("the chain is NOT intact: %d problem(s), first %s", n, c.Problems[0]))
		case c.Unchecked > 0:
			r.Exceptions = append(r.Exceptions, fmt.Sprintf("the chain's HMACs of %d line(s) were not verified (no chain_key given): only its structure was", c.Unchecked))
		default:
			chain = "chain intact"
		}
		if c.Dropped > 0 {
			r.Exceptions = append(r.Exceptions, fmt.Sprintf("postern recorded in the chain that %d audit line(s) could not be written to this sink (audit_lines_dropped)", c.Dropped))
		}
	} else {
		r.Exceptions = append(r.Exceptions, "the chain was not verified")
	}
	period := "in these files"
	if r.Lines > 0 {
		period = "from " + r.First.UTC().Format(time.DateOnly) + " to " + r.Last.UTC().Format(time.DateOnly)
	}
	if len(r.Exceptions) == 0 {
		r.Closing = fmt.Sprintf("%d messages %s; every one left over TLS ≥ 1.2 to a verified host; %s.", r.Sent, period, chain)
	} else {
		r.Closing = fmt.Sprintf("%d messages %s, with %d exception(s): %s.", r.Sent, period, len(r.Exceptions), strings.Join(r.Exceptions, "; "))
	}
}

func listed(at []string, n int) string {
	s := strings.Join(at, ", ")
	if n > len(at) {
		s += fmt.Sprintf(" and %d more", n-len(at))
	}
	return s
}

// ReportFiles reads audit files in the order given (gzip allowed),
// verifies their chain with keys (none: structure and plain hashes only)
// and summarises the message lines at or after since (zero = all). The
// chain is verified over every line, whatever since says.
func ReportFiles(names []string, since time.Time, keys ...[]byte) (*Report, error) {
	r := newReport(since)
	v := NewVerifier(keys...)
	err := ReadTrail(names, v.StartFile, func(file string, n int, b []byte, complete bool) {
		v.Line(file, n, b, complete)
		l, ok := parseLine(b)
		if !ok {
			if isChainLine(b) {
				return
			}
			if strings.TrimSpace(string(b)) != "" {
				r.Unreadable++
			}
			return
		}
		if !since.IsZero() && l.Time.Before(since) {
			return
		}
		r.pos = fmt.Sprintf("%s:%d", file, n)
		r.add(l)
	})
	if err != nil {
		return nil, err
	}
	r.Chain = v.Finish()
	r.finish()
	return r, nil
}

// isChainLine reports a line the chain itself wrote (chain_start,
// audit_lines_dropped): neither a message nor unreadable.
func isChainLine(b []byte) bool {
	var m struct {
		Msg string `json:"msg"`
	}
	return json.Unmarshal(b, &m) == nil && (m.Msg == MsgChainStart || m.Msg == MsgLinesDropped)
}

// Text is the verification for people: whether the chain is intact, what
// was checked, and every problem as FILE:LINE: what.
func (v *Verification) Text() string {
	var b strings.Builder
	switch {
	case v.Intact && v.Unchecked > 0:
		b.WriteString("chain:     intact as far as checked: structure only, the HMACs were NOT verified\n")
	case v.Intact:
		b.WriteString("chain:     intact\n")
	default:
		fmt.Fprintf(&b, "chain:     NOT intact: %d problem(s)\n", len(v.Problems)+v.MoreProblems)
	}
	fmt.Fprintf(&b, "checked:   %s\n", v.Checked)
	fmt.Fprintf(&b, "read:      %d line(s) in %d file(s), %d chain(s)\n", v.Lines, len(v.Files), v.Chains)
	if v.Dropped > 0 {
		fmt.Fprintf(&b, "dropped:   postern recorded %d audit line(s) it could not write to this sink\n", v.Dropped)
	}
	for _, p := range v.Problems {
		fmt.Fprintf(&b, "  %s\n", p)
	}
	if v.MoreProblems > 0 {
		fmt.Fprintf(&b, "  ... and %d more problem(s)\n", v.MoreProblems)
	}
	return b.String()
}
