package metrics

import (
	"slices"
	"strconv"
	"strings"
)

// What /metrics answers to a scraper's Accept and Accept-Encoding, as
// promhttp.HandlerFor(reg, HandlerOpts{}) (client_golang v1.25, common
// v0.72) did. The body is always text format 0.0.4; of the Accept header
// only its escaping parameter matters, and only for Content-Type.

// acceptClause is one clause of an Accept header.
type acceptClause struct {
	typ, subtype string
	q            float64
	params       map[string]string
}

// parseAccept splits an Accept header and orders it as goautoneg does
// (expfmt's negotiation): by q, then concrete types before wildcards. A
// clause without a subtype (other than "*") or with two slashes is
// dropped, and so is a parameter without exactly one "=".
func parseAccept(h string) []acceptClause {
	var out []acceptClause
	for part := range strings.SplitSeq(h, ",") {
		if h == "" {
			break
		}
		part = strings.Trim(part, " ")
		mediaType, rest, hasParams := strings.Cut(part, ";")
		typ, sub, hasSlash := strings.Cut(mediaType, "/")
		a := acceptClause{typ: strings.Trim(typ, " "), q: 1}
		switch {
		case !hasSlash && a.typ == "*":
			a.subtype = "*"
		case !hasSlash || strings.Contains(sub, "/"):
			continue
		default:
			a.subtype = strings.Trim(sub, " ")
		}
		if hasParams && rest != "" {
			a.params = map[string]string{}
			for p := range strings.SplitSeq(rest, ";") {
				k, v, ok := strings.Cut(p, "=")
				if !ok || strings.Contains(v, "=") {
					continue
				}
				k = strings.Trim(k, " ")
				if k == "q" {
					q, _ := strconv.ParseFloat(v, 32)
					a.q = q
				} else {
					a.params[k] = strings.Trim(v, " ")
				}
			}
		}
		out = append(out, a)
	}
	// goautoneg's order; its sort.Sort is an insertion sort (so stable) for
	// the dozen clauses a scraper sends.
	slices.SortStableFunc(out, func(a, b acceptClause) int {
		switch {
		case acceptLess(a, b):
			return -1
		case acceptLess(b, a):
			return 1
		}
		return 0
	})
	return out
}

func acceptLess(a, b acceptClause) bool {
	return a.q > b.q || (a.typ != "*" && b.typ == "*") || (a.subtype != "*" && b.subtype == "*")
}

// escapingScheme is the escaping parameter of the answer's Content-Type:
// the last valid one in the clauses up to and including the first that
// accepts text format 0.0.4, else in all of them; "underscores" without
// one.
func escapingScheme(accept string) string {
	scheme := "underscores"
	for _, a := range parseAccept(accept) {
		switch e := a.params["escaping"]; e {
		case "allow-utf-8", "underscores", "dots", "values":
			scheme = e
		}
		if acceptsText004(a) {
			break
		}
	}
	return scheme
}

// acceptsText004 reports whether a matches "text/plain; version=0.0.4"
// (a text/plain without version is 0.0.4; */* without one is not).
func acceptsText004(a acceptClause) bool {
	if (a.typ != "*" && a.typ != "text") || (a.subtype != "*" && a.subtype != "plain") {
		return false
	}
	v := a.params["version"]
	if v == "" && a.typ == "text" && a.subtype == "plain" {
		v = "0.0.4"
	}
	return v == "0.0.4"
}

// negotiateEncoding picks "gzip" or "identity" from Accept-Encoding
// values as promhttp does: the offer (identity, then gzip) with the
// highest q of a clause naming it or "*", the first on a tie; identity
// when a q of 0 wins.
func negotiateEncoding(values []string) string {
	type spec struct {
		value string
		q     float64
	}
	var specs []spec
	for _, h := range values {
		for part := range strings.SplitSeq(h, ",") {
			value, params, _ := strings.Cut(part, ";")
			s := spec{value: strings.TrimSpace(value), q: 1}
			if s.value == "" {
				continue
			}
			if params = strings.TrimSpace(params); params != "" {
				qs, ok := strings.CutPrefix(params, "q=")
				if !ok {
					continue
				}
				q, err := strconv.ParseFloat(strings.TrimSpace(qs), 64)
				if err != nil || q < 0 || q > 1 {
					continue
				}
				s.q = q
			}
			specs = append(specs, s)
		}
	}
	best, bestQ := "identity", -1.0
	for _, offer := range []string{"identity", "gzip"} {
		for _, s := range specs {
			if s.q > bestQ && (s.value == "*" || s.value == offer) {
				best, bestQ = offer, s.q
			}
		}
	}
	if bestQ == 0 {
		return "identity"
	}
	return best
}
