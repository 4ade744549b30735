package rewrite

import (
	"errors"
	"fmt"
	"strings"
)

// ClickatellSMTP is the "clickatell-smtp" mail dialect: Clickatell's
// archived SMTP API, a mail to sms@messaging.clickatell.com whose body
// holds "key:value" lines — user:, password:, api_id:, to: (numbers
// separated by commas; the line may repeat) and text:, whose value is the
// rest of the body after it, line breaks included. user, password and
// api_id are read only to be checked against the route's legacy_* keys;
// they are never forwarded. from: sets the sender as in the HTTP API.
type ClickatellSMTP struct {
	country string
	max     int
}

var _ MailDialect = ClickatellSMTP{}

// ClickatellSMTPConfig holds the "clickatell-smtp" dialect's own route
// keys: none beyond default_country and max_recipients.
type ClickatellSMTPConfig struct{}

// NewClickatellSMTP returns the dialect for cfg; it cannot fail.
func NewClickatellSMTP(cfg DialectConfig) (ClickatellSMTP, error) {
	return ClickatellSMTP{country: cfg.DefaultCountry, max: cfg.MaxRecipients}, nil
}

// Recipient accepts any envelope address of the route's domain: the
// numbers are in the body.
func (ClickatellSMTP) Recipient(addr string) (string, error) {
	if _, _, err := splitAddress(addr); err != nil {
		return "", mailError(CodeInvalidDestination, descDestination, err)
	}
	return "", nil
}

// ClickatellSMTPBody is a Clickatell SMTP API body, read.
type ClickatellSMTPBody struct {
	Credentials
	To   []string // as written, trimmed, blanks dropped
	From string
	Text string // everything after "text:", trimmed
}

// ParseClickatellSMTPBody reads the key:value lines of body (LF or CRLF
// line ends). Keys are case-insensitive; unknown keys are ignored, as
// Clickatell's API ignored them. It never fails: what is missing is
// empty.
func ParseClickatellSMTPBody(body string) ClickatellSMTPBody {
	var b ClickatellSMTPBody
	rest := strings.ReplaceAll(body, "\r\n", "\n")
	for rest != "" {
		var line string
		line, rest, _ = strings.Cut(rest, "\n")
		key, value, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		key = strings.ToLower(strings.TrimSpace(key))
		if key == "text" {
			if rest != "" {
				value += "\n" + rest
			}
			b.Text = strings.TrimSpace(value)
			break
		}
		value = strings.TrimSpace(value)
		switch key {
		case "user":
			b.User = value
		case "password":
			b.Password = value
		case "api_id":
			b.APIID = value
		case "from":
			b.From = value
		case "to":
			for n := range strings.SplitSeq(value, ",") {
				if n = strings.TrimSpace(n); n != "" {
					b.To = append(b.To, n)
				}
			}
		}
	}
	return b
}

var errNoTo = errors.New("no to: line")

// ParseMail reads the decoded text/plain body as Clickatell SMTP API lines.
func (d ClickatellSMTP) ParseMail(m Mail) (Message, Credentials, error) {
	c, perr := ReadMail(m.Data)
	if perr != nil {
		return Message{}, Credentials{}, perr
	}
	b := ParseClickatellSMTPBody(c.Body)
	if len(b.To) == 0 {
		return Message{}, b.Credentials, mailError(CodeMissingParams, descMissingTo, errNoTo)
	}
	if d.max > 0 && len(b.To) > d.max {
		return Message{}, b.Credentials, mailError(CodeMissingParams, descTooMany, fmt.Errorf("more than %d", d.max))
	}
	var msg Message
	seen := map[string]bool{}
	for i, raw := range b.To {
		n, err := recipientDigits(raw, d.country, false)
		if err != nil {
			return Message{}, b.Credentials, mailError(CodeInvalidDestination, descDestination, fmt.Errorf("recipient %d: %w", i+1, err))
		}
		if !seen[n] {
			seen[n] = true
			msg.To = append(msg.To, n)
		}
	}
	var terr *Error
	if msg.Text, terr = mailText(b.Text); terr != nil {
		return Message{}, b.Credentials, terr
	}
	msg.From, _ = normalizeSender(b.From)
	return msg, b.Credentials, nil
}
