package config

import (
	"fmt"
	"slices"
	"strings"
)

// Summary is the one-paragraph description `postern check` prints.
func (c *Config) Summary() string {
	var b strings.Builder
	clients := make([]string, len(c.AllowClients))
	for i, p := range c.AllowClients {
		clients[i] = p.String()
	}
	fmt.Fprintf(&b, "%s: OK. postern listens on %s for clients in %s, answers within %s, and verifies providers against %s. ",
		c.Source, c.Listen, strings.Join(clients, ", "), c.RequestTimeout, c.Roots.Report())
	if c.ListenTLS != "" {
		fmt.Fprintf(&b, "It also serves HTTPS on %s (certificate: %s). ", c.ListenTLS, c.TLS)
	}
	if s := c.SMTP; s.Listen != "" {
		fmt.Fprintf(&b, "It takes mail over SMTP on %s as %q (messages up to %d bytes", s.Listen, s.Hostname, s.MaxMessageBytes)
		if c.ListenTLS != "" {
			b.WriteString(", STARTTLS offered")
		}
		if s.RequireTLS {
			b.WriteString(" and required")
		}
		if s.AuthUser != "" {
			fmt.Fprintf(&b, ", AUTH required as %q", s.AuthUser)
		}
		if s.Relay != "" {
			fmt.Fprintf(&b, "); mail no route takes is relayed to %s. ", s.Relay)
		} else {
			b.WriteString("); mail no route takes is refused (550 5.7.1). ")
		}
	}
	if len(c.InterceptHosts) > 0 {
		fmt.Fprintf(&b, "CONNECT to %s is intercepted with postern's own CA, and any other CONNECT is refused. ", strings.Join(c.InterceptHosts, ", "))
	}
	if pol := c.Roots.Policy(); len(pol.Pins) > 0 || !pol.AIA {
		hosts := make([]string, 0, len(pol.Pins))
		for h := range pol.Pins {
			hosts = append(hosts, h)
		}
		slices.Sort(hosts)
		if len(hosts) > 0 {
			fmt.Fprintf(&b, "Provider keys are pinned for %s. ", strings.Join(hosts, ", "))
		}
		if !pol.AIA {
			b.WriteString("Missing intermediates are not fetched (aia = false). ")
		}
	}
	fmt.Fprintf(&b, "%d route(s), first match wins, anything else refused with 403:", len(c.Routes))
	for i, r := range c.Routes {
		host := r.MatchHost
		if host == "" {
			host = "any host"
		}
		if r.Mail != nil {
			domain := r.MatchDomain
			if domain == "*" {
				domain = "any domain"
			}
			fmt.Fprintf(&b, " %d) %q takes %s mail for %s (up to %d recipients, %d segments)", i+1, r.Name, r.Inbound, domain, r.MaxRecipients, r.MaxSegments)
		} else if r.MatchPath == "" {
			fmt.Fprintf(&b, " %d) %q serves only as a fallback (up to %d recipients, %d segments)", i+1, r.Name, r.MaxRecipients, r.MaxSegments)
		} else {
			fmt.Fprintf(&b, " %d) %q takes %s requests for %s %s (up to %d recipients, %d segments)", i+1, r.Name, r.Inbound, host, r.MatchPath, r.MaxRecipients, r.MaxSegments)
		}
		if d, ok := r.Dialect.(interface{ Describe() string }); ok {
			fmt.Fprintf(&b, " with %s", d.Describe())
		}
		if r.Country != "" {
			fmt.Fprintf(&b, ", national numbers read in %s", r.Country)
		}
		if r.Provider == nil {
			b.WriteString(" and sends nothing (sandbox)")
		} else {
			token := "the token from " + r.TokenSource
			if r.TokenSource == "" {
				token = "no token"
			}
			fmt.Fprintf(&b, " and posts them to %s at %s with %s", r.ProviderName, redactURL(r.Endpoint), token)
			if r.From != "" {
				fmt.Fprintf(&b, ", sender %q", r.From)
			}
			if d, ok := r.Provider.(interface{ Describe() string }); ok {
				fmt.Fprintf(&b, " (%s)", d.Describe())
			}
		}
		if r.Fallback != nil {
			fmt.Fprintf(&b, ", failing over to %q", r.Fallback.Name)
		}
		if i < len(c.Routes)-1 {
			b.WriteString(";")
		} else {
			b.WriteString(".")
		}
	}
	return b.String()
}

// AuditChainSummary is the sentence `postern check` prints about the audit
// trail's chain: keyed, or plain SHA-256 and what that does not protect
// against.
func (c *Config) AuditChainSummary() string {
	if c.AuditChainKeySource == "" || c.AuditChainKeySource == "unset" {
		return "Audit chain: plain SHA-256 (no [audit] chain_key): shows accidents, not forgery."
	}
	s := "Audit chain: HMAC-SHA256 keyed with [audit] chain_key from " + c.AuditChainKeySource
	if c.auditChainKeyFP != "" {
		s += " (fingerprint " + c.auditChainKeyFP + ")"
	}
	return s + "; postern report -verify with this config proves no line was edited, removed or inserted."
}
