package rewrite

import (
	"errors"
	"fmt"
	"strings"
)

// SMTPConfig holds the "smtp" dialect's own route keys.
type SMTPConfig struct {
	// TextFrom says where the text is: "body" (default) or "subject".
	TextFrom string `toml:"text_from"`
}

// Text sources of the "smtp" dialect (text_from).
const (
	TextFromBody    = "body"
	TextFromSubject = "subject"
)

// SMTP is the "smtp" mail dialect: ISE's "SMS Email Gateway" mails the
// message to <mobile number>@<provider domain>, so the number is the local
// part of each envelope recipient and the text is the mail's decoded
// text/plain part (or HTML with its tags removed), or its Subject.
type SMTP struct {
	country     string
	fromSubject bool
	max         int
}

var _ MailDialect = (*SMTP)(nil)

// NewSMTP validates sc.
func NewSMTP(cfg DialectConfig, sc SMTPConfig) (*SMTP, error) {
	d := &SMTP{country: cfg.DefaultCountry, max: cfg.MaxRecipients}
	switch sc.TextFrom {
	case "", TextFromBody:
	case TextFromSubject:
		d.fromSubject = true
	default:
		return nil, &KeyError{Key: "text_from", Err: fmt.Errorf("smtp: text_from %q: want %q or %q", sc.TextFrom, TextFromBody, TextFromSubject)}
	}
	return d, nil
}

var errLocalPart = errors.New("local part is not a phone number")

// Recipient reads the number in addr's local part: digits, optionally
// after "+" or "00" (or national digits with default_country). Anything
// else — letters, "%" (the percent hack), a quoted local part holding "@"
// — is not a number, so it is refused, never relayed.
func (d *SMTP) Recipient(addr string) (string, error) {
	local, _, err := splitAddress(addr)
	if err != nil {
		return "", mailError(CodeInvalidDestination, descDestination, err)
	}
	plus := strings.HasPrefix(local, "+")
	digits := strings.TrimPrefix(local, "+")
	if digits == "" || strings.Trim(digits, "0123456789") != "" {
		return "", mailError(CodeInvalidDestination, descDestination, errLocalPart)
	}
	n, err := recipientDigits(digits, d.country, plus)
	if err != nil {
		return "", mailError(CodeInvalidDestination, descDestination, err)
	}
	return n, nil
}

// ParseMail takes the recipients' numbers (duplicates dropped) and the
// text, trimmed, from the body or the Subject.
func (d *SMTP) ParseMail(m Mail) (Message, Credentials, error) {
	if len(m.Recipients) == 0 {
		return Message{}, Credentials{}, mailError(CodeMissingParams, descMissingTo, nil)
	}
	if d.max > 0 && len(m.Recipients) > d.max {
		return Message{}, Credentials{}, mailError(CodeMissingParams, descTooMany, fmt.Errorf("more than %d", d.max))
	}
	var msg Message
	seen := map[string]bool{}
	for _, a := range m.Recipients {
		n, err := d.Recipient(a)
		if err != nil {
			return Message{}, Credentials{}, err
		}
		if !seen[n] {
			seen[n] = true
			msg.To = append(msg.To, n)
		}
	}
	c, perr := ReadMail(m.Data)
	if perr != nil {
		return Message{}, Credentials{}, perr
	}
	text := c.Body
	if d.fromSubject {
		text = c.Subject
	}
	var terr *Error
	if msg.Text, terr = mailText(text); terr != nil {
		return Message{}, Credentials{}, terr
	}
	return msg, Credentials{}, nil
}
