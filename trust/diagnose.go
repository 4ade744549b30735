package trust

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"strings"
	"time"
)

// Diagnosis is what `postern trust` found about one upstream.
type Diagnosis struct {
	Host, Addr   string
	TLSVersion   string // "" if no handshake happened
	Served       []*x509.Certificate
	Verification Verification
	// ConnectErr is set when no TLS handshake was possible.
	ConnectErr error
	// VerifyErr is set when the served chain does not pass postern's checks.
	VerifyErr error
	Now       time.Time
	pins      []Pin
}

// Trusted reports whether postern would send to this upstream.
func (d *Diagnosis) Trusted() bool { return d.ConnectErr == nil && d.VerifyErr == nil }

// DialFunc dials a TCP connection.
type DialFunc func(ctx context.Context, network, addr string) (net.Conn, error)

// Diagnose connects to target (HOST or HOST:PORT, port 443 by default) and
// checks what it serves exactly as provider connections are checked:
// r's roots, AIA policy and pins, via [Roots.VerifyFrom]. dial nil dials
// directly. The handshake itself accepts any chain so that a refused one
// can still be shown.
func Diagnose(ctx context.Context, r *Roots, target string, dial DialFunc, now time.Time) (*Diagnosis, error) {
	host, port, err := net.SplitHostPort(target)
	if err != nil {
		host, port = target, "443"
	}
	host = strings.Trim(host, "[]")
	if host == "" || strings.ContainsAny(host, "/@ ") {
		return nil, fmt.Errorf("%q is not HOST or HOST:PORT", target)
	}
	d := &Diagnosis{Host: host, Addr: net.JoinHostPort(host, port), Now: now, pins: r.policy.Pins[strings.ToLower(host)]}
	if dial == nil {
		dial = (&net.Dialer{Timeout: DefaultDialTimeout}).DialContext
	}
	ctx, cancel := context.WithTimeout(ctx, DefaultDialTimeout+DefaultTLSHandshakeTimeout)
	defer cancel()
	raw, err := dial(ctx, "tcp", d.Addr)
	if err != nil {
		d.ConnectErr = err
		return d, nil
	}
	defer raw.Close()
	conn := tls.Client(raw, &tls.Config{
		ServerName:         host,
		MinVersion:         tls.VersionTLS12,
		NextProtos:         []string{"h2", "http/1.1"},
		InsecureSkipVerify: true, // only to see the chain; Verify below decides
	})
	if err := conn.HandshakeContext(ctx); err != nil {
		d.ConnectErr = err
		return d, nil
	}
	cs := conn.ConnectionState()
	d.TLSVersion = tls.VersionName(cs.Version)
	d.Served = cs.PeerCertificates
	d.Verification, d.VerifyErr = r.VerifyFrom(ctx, host, remoteAddr(raw), d.Served, now)
	return d, nil
}

// Verdict is one sentence saying whether postern would send to the host
// and, if not, why.
func (d *Diagnosis) Verdict() string {
	switch {
	case d.ConnectErr != nil:
		if reason, ok := DescribeTLSError(d.ConnectErr); ok {
			return fmt.Sprintf("NOT TRUSTED: postern would refuse to send to %s: %s (%v).", d.Addr, reason, d.ConnectErr)
		}
		return fmt.Sprintf("UNREACHABLE: postern could not connect to %s: %v.", d.Addr, d.ConnectErr)
	case d.VerifyErr != nil:
		reason, _ := DescribeTLSError(d.VerifyErr)
		if reason == "" {
			reason = ReasonUntrusted
		}
		return fmt.Sprintf("NOT TRUSTED: postern would refuse to send to %s: %s (%v).", d.Host, reason, d.VerifyErr)
	}
	var extra []string
	if n := len(d.Verification.Fetched); n > 0 {
		extra = append(extra, fmt.Sprintf("after fetching %d missing intermediate(s) via AIA — the server should send its full chain", n))
	}
	if len(d.pins) > 0 {
		extra = append(extra, "matching a configured pin")
	}
	leaf := d.Served[0]
	left := leaf.NotAfter.Sub(d.Now)
	if left < ExpiryWarning {
		extra = append(extra, "but its certificate expires in "+days(left))
	}
	s := fmt.Sprintf("TRUSTED: postern would send to %s; the chain verifies to a trusted root", d.Host)
	if len(extra) > 0 {
		s += ", " + strings.Join(extra, ", ")
	}
	return s + "."
}

// Write prints the served chain, the verified chain and the verdict.
func (d *Diagnosis) Write(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "Host:     %s\nAddress:  %s\n", d.Host, d.Addr)
	if d.TLSVersion != "" {
		fmt.Fprintf(&b, "TLS:      %s\n", d.TLSVersion)
	}
	if len(d.pins) > 0 {
		fmt.Fprintf(&b, "Pins:     ")
		for i, p := range d.pins {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString(p.String())
		}
		b.WriteByte('\n')
	}
	if len(d.Served) > 0 {
		fmt.Fprintf(&b, "\nServed chain (%d certificate(s), as the server sent it):\n", len(d.Served))
		for i, c := range d.Served {
			writeCert(&b, i, c, "", d.Now)
		}
	}
	if len(d.Verification.Chains) > 0 {
		chain := d.Verification.Chains[0]
		fmt.Fprintf(&b, "\nVerified chain (leaf to root):\n")
		for i, c := range chain {
			writeCert(&b, i, c, d.sourceOf(c, i == len(chain)-1), d.Now)
		}
	} else if d.ConnectErr == nil {
		fmt.Fprintf(&b, "\nVerified chain: none\n")
	}
	fmt.Fprintf(&b, "\nVerdict: %s\n", d.Verdict())
	_, err := io.WriteString(w, b.String())
	return err
}

func (d *Diagnosis) sourceOf(c *x509.Certificate, last bool) string {
	for i, f := range d.Verification.Fetched {
		if f.Equal(c) {
			return "fetched via AIA from " + d.Verification.FetchedFrom[i]
		}
	}
	for _, s := range d.Served {
		if s.Equal(c) {
			if last {
				return "served, trusted root"
			}
			return "served"
		}
	}
	if last {
		return "trusted root"
	}
	return ""
}

func writeCert(b *strings.Builder, i int, c *x509.Certificate, source string, now time.Time) {
	sum := sha256.Sum256(c.Raw)
	fmt.Fprintf(b, "  %d. subject: %s", i, c.Subject)
	if source != "" {
		fmt.Fprintf(b, "   [%s]", source)
	}
	fmt.Fprintf(b, "\n     issuer:  %s\n", c.Issuer)
	left := c.NotAfter.Sub(now)
	state := days(left) + " left"
	switch {
	case left < 0:
		state = "EXPIRED"
	case now.Before(c.NotBefore):
		state = "NOT YET VALID"
	}
	fmt.Fprintf(b, "     expires: %s (%s)\n", c.NotAfter.UTC().Format(time.RFC3339), state)
	if len(c.DNSNames)+len(c.IPAddresses) > 0 && !c.IsCA {
		names := append([]string(nil), c.DNSNames...)
		for _, ip := range c.IPAddresses {
			names = append(names, ip.String())
		}
		fmt.Fprintf(b, "     names:   %s\n", strings.Join(names, ", "))
	}
	fmt.Fprintf(b, "     pin:     %s\n     sha256:  %s\n", PinOf(c), hex.EncodeToString(sum[:]))
}

// days renders a remaining validity for people.
func days(d time.Duration) string {
	switch n := int(d.Hours() / 24); n {
	case 0:
		return "less than a day"
	case 1:
		return "1 day"
	default:
		return fmt.Sprintf("%d days", n)
	}
}
