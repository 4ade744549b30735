package audit

import (
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"time"
)

// syslogSink sends audit lines as RFC 5424 messages: one datagram each over
// UDP (RFC 5426), octet-counted frames over TCP (RFC 6587) or TLS (RFC 5425).
// A lost connection is redialled for the next line, at most once a second,
// so a SIEM that is down costs one failed dial per second, not one per line.
type syslogSink struct {
	network  string // udp, tcp or tls
	addr     string
	tls      *tls.Config
	pri      int
	hostname string
	procID   string
	now      func() time.Time

	conn       net.Conn
	lastDialAt time.Time
}

const (
	syslogDialTimeout  = 5 * time.Second
	syslogWriteTimeout = 5 * time.Second
	syslogSeverityInfo = 6
)

func newSyslogSink(cfg Config) *syslogSink {
	u := cfg.Syslog
	s := &syslogSink{
		network:  u.Scheme,
		addr:     u.Host,
		pri:      cfg.SyslogFacility*8 + syslogSeverityInfo,
		hostname: syslogHostname(),
		procID:   strconv.Itoa(os.Getpid()),
		now:      time.Now,
	}
	if u.Scheme == "tls" {
		s.tls = &tls.Config{RootCAs: cfg.SyslogRoots, ServerName: u.Hostname(), MinVersion: tls.VersionTLS12}
	}
	return s
}

// formatRFC5424 renders one audit line as
// <PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID - MSG
// with APP-NAME "postern", MSGID "audit", no structured data, and the JSON
// audit line (which never holds a raw newline) as MSG.
func formatRFC5424(pri int, t time.Time, hostname, procID string, line []byte) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "<%d>1 %s %s postern %s audit - ", pri, t.UTC().Format("2006-01-02T15:04:05.000000Z"), hostname, procID)
	b.Write(bytes.TrimRight(line, "\r\n"))
	return b.Bytes()
}

func (s *syslogSink) write(line []byte) error {
	if s.conn == nil {
		if err := s.dial(); err != nil {
			return err
		}
	}
	msg := formatRFC5424(s.pri, s.now(), s.hostname, s.procID, line)
	if s.network != "udp" {
		msg = append([]byte(strconv.Itoa(len(msg))+" "), msg...)
	}
	s.conn.SetWriteDeadline(time.Now().Add(syslogWriteTimeout))
	if _, err := s.conn.Write(msg); err != nil {
		s.conn.Close()
		s.conn = nil
		return fmt.Errorf("writing to syslog %s: %w", s.addr, err)
	}
	return nil
}

func (s *syslogSink) dial() error {
	if since := time.Since(s.lastDialAt); since < time.Second {
		return errors.New("syslog server unreachable; retrying shortly")
	}
	s.lastDialAt = time.Now()
	d := &net.Dialer{Timeout: syslogDialTimeout}
	var err error
	switch s.network {
	case "tls":
		s.conn, err = tls.DialWithDialer(d, "tcp", s.addr, s.tls)
	default:
		s.conn, err = d.Dial(s.network, s.addr)
	}
	if err != nil {
		s.conn = nil
		return fmt.Errorf("connecting to syslog %s: %w", s.addr, err)
	}
	return nil
}

// reopen drops the connection; the next line dials afresh (e.g. after the
// SIEM's address moved).
func (s *syslogSink) reopen() error {
	if s.conn != nil {
		s.conn.Close()
		s.conn = nil
	}
	s.lastDialAt = time.Time{}
	return nil
}

func (s *syslogSink) close() error {
	if s.conn == nil {
		return nil
	}
	return s.conn.Close()
}

// syslogHostname is the HOSTNAME field: printable ASCII without spaces, at
// most 255 characters, "-" when unknown.
func syslogHostname() string {
	h, err := os.Hostname()
	if err != nil || h == "" {
		return "-"
	}
	out := make([]byte, 0, len(h))
	for i := 0; i < len(h) && len(out) < 255; i++ {
		if c := h[i]; c > 32 && c < 127 {
			out = append(out, c)
		}
	}
	if len(out) == 0 {
		return "-"
	}
	return string(out)
}
