package smtpd

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/postern/postern/trust"
)

// relayTimeout bounds connecting to the relay, its greeting, EHLO and
// STARTTLS.
const relayTimeout = 30 * time.Second

// relay is one transaction passed on to [smtp] relay: mail for recipients
// no route takes, with the relay's own answers given back to the client.
// postern stores nothing: the relay answers DATA before postern does.
type relay struct {
	c *smtp.Client
}

// dialRelay connects to addr and says EHLO as hostname. When the relay
// offers STARTTLS the transaction continues over TLS verified with roots
// exactly as a provider's certificate is (trust.Roots.ClientTLSConfig for
// the relay's host name); a relay that offers it and fails verification
// is not used.
func dialRelay(ctx context.Context, addr, hostname string, roots *trust.Roots) (*relay, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("relay %q: %w", addr, err)
	}
	ctx, cancel := context.WithTimeout(ctx, relayTimeout)
	defer cancel()
	dial := func() (net.Conn, error) {
		var d net.Dialer
		conn, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			return nil, fmt.Errorf("connect to relay: %w", err)
		}
		if dl, ok := ctx.Deadline(); ok {
			conn.SetDeadline(dl)
		}
		return conn, nil
	}
	conn, err := dial()
	if err != nil {
		return nil, err
	}
	c := smtp.NewClient(conn)
	if err := c.Hello(hostname); err != nil {
		c.Close()
		return nil, fmt.Errorf("relay EHLO: %w", err)
	}
	if ok, _ := c.Extension("STARTTLS"); ok {
		// go-smtp starts TLS only as the first thing on a connection, so
		// the probe's connection is ended and a new one upgraded.
		c.Quit()
		if conn, err = dial(); err != nil {
			return nil, err
		}
		cfg := roots.ClientTLSConfig()
		cfg.ServerName = host
		if c, err = smtp.NewClientStartTLS(conn, cfg); err != nil {
			conn.Close()
			return nil, fmt.Errorf("relay STARTTLS: %w", err)
		}
		if err := c.Hello(hostname); err != nil {
			c.Close()
			return nil, fmt.Errorf("relay TLS: %w", err)
		}
	}
	conn.SetDeadline(time.Time{})
	return &relay{c: c}, nil
}

// mail, rcpt and data pass the client's commands on; the relay's
// *smtp.SMTPError replies go back to the client as they are.
func (r *relay) mail(from string) error { return r.c.Mail(from, nil) }
func (r *relay) rcpt(to string) error   { return r.c.Rcpt(to, nil) }

// data sends the message and returns the relay's 250 reply text.
func (r *relay) data(msg []byte) (string, error) {
	w, err := r.c.Data()
	if err != nil {
		return "", err
	}
	if _, err := w.Write(msg); err != nil {
		w.Close()
		return "", err
	}
	resp, err := w.CloseWithResponse()
	if err != nil {
		return "", err
	}
	// The text starts with the relay's enhanced code, which the answer
	// carries separately.
	text := resp.StatusText
	if len(text) > 6 && text[0] == '2' && text[1] == '.' {
		if _, after, ok := strings.Cut(text, " "); ok {
			text = after
		}
	}
	return text, nil
}

func (r *relay) close() {
	if r != nil {
		r.c.Quit()
		r.c.Close()
	}
}

// relayReply turns a relay failure into the client's answer: the relay's
// own reply when it gave one, else 451 (nothing was handed over).
func relayReply(err error) error {
	var se *smtp.SMTPError
	if errors.As(err, &se) {
		return se
	}
	return replyRelayUnreachable.err()
}
