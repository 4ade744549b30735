package rewrite

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/emersion/go-message"
	// The charset package teaches go-message every charset x/text knows
	// (ISO-8859-*, Windows-125*, Shift_JIS, ...); without it only UTF-8,
	// US-ASCII and Latin-1 decode.
	_ "github.com/emersion/go-message/charset"
	"golang.org/x/net/html"
)

// Mail is one message that arrived over SMTP, as the front end read it:
// already size-limited, the envelope recipients this dialect's route takes
// and the message itself. Like Inbound it carries no connection, so a mail
// dialect can neither do I/O nor forward anything by accident.
type Mail struct {
	// Recipients are the envelope (RCPT TO) addresses, as the client gave
	// them, that the route takes.
	Recipients []string
	// Data is the RFC 5322 message (headers and body), CRLF line ends,
	// dot-stuffing already undone.
	Data []byte
}

// MailDialect reads one kind of SMS-by-e-mail (the "inbound" of an SMTP
// route). The SMTP front end asks it about each recipient at RCPT time, so
// a bad number never costs a DATA transfer, and for the message after DATA.
type MailDialect interface {
	// Recipient checks one envelope recipient at RCPT time. It returns the
	// number the address names (international digits, as Message.To), or
	// "" when this dialect takes its numbers from the body. A *Error says
	// the address cannot be taken.
	Recipient(addr string) (string, error)
	// ParseMail turns the message into a Message and the legacy credentials
	// it carries (never forwarded). A *Error is returned for anything it
	// cannot accept; nothing may be sent then.
	ParseMail(m Mail) (Message, Credentials, error)
}

// Fixed descriptions for mail parse errors: never the text or a number.
// They are the HTTP dialects' (the audit line's reason adds the cause).
const (
	descMailUnreadable = "Invalid or missing parameters"
	descMailCharset    = descUnicode
)

func mailError(code, desc string, cause error) *Error {
	return &Error{Status: http.StatusBadRequest, Code: code, Description: desc, Outcome: Refused, Cause: cause}
}

// maxMailParts bounds how many MIME parts are looked at, so a message of
// thousands of tiny nested parts costs little.
const maxMailParts = 64

// MailContent is what a mail dialect reads from a message: its decoded
// Subject and its text, decoded from any transfer encoding and charset
// go-message knows, line ends as LF.
type MailContent struct {
	Subject string
	Body    string
}

// ReadMail decodes data (an RFC 5322 message) with go-message: the first
// text/plain part (multipart/alternative and mixed are searched, depth
// first), or, when the message has no text/plain part, the first text/html
// part with its tags removed. CRLF becomes LF; nothing is trimmed.
func ReadMail(data []byte) (MailContent, *Error) {
	ent, err := message.Read(bytes.NewReader(data))
	switch {
	case message.IsUnknownCharset(err) || message.IsUnknownEncoding(err):
		return MailContent{}, mailError(CodeInvalidUnicode, descMailCharset, errors.New("unknown charset or transfer encoding"))
	case err != nil:
		return MailContent{}, mailError(CodeMissingParams, descMailUnreadable, errors.New("unreadable message header"))
	}
	var c MailContent
	if c.Subject, err = ent.Header.Text("Subject"); err != nil {
		return MailContent{}, mailError(CodeInvalidUnicode, descMailCharset, errors.New("subject: unknown charset or bad encoded word"))
	}
	c.Subject = unfold(c.Subject)
	var plain, htmlText *string
	parts := 0
	werr := ent.Walk(func(_ []int, e *message.Entity, err error) error {
		if parts++; parts > maxMailParts {
			return errors.New("too many MIME parts")
		}
		if err != nil {
			return err
		}
		mt, _, _ := e.Header.ContentType()
		if mt == "" {
			mt = "text/plain" // RFC 2045 5.2
		}
		if disp, _, _ := e.Header.ContentDisposition(); disp == "attachment" {
			return nil
		}
		switch {
		case mt == "text/plain" && plain == nil:
			b, err := io.ReadAll(e.Body)
			if err != nil {
				return err
			}
			s := string(b)
			plain = &s
		case mt == "text/html" && htmlText == nil:
			b, err := io.ReadAll(e.Body)
			if err != nil {
				return err
			}
			s := stripHTML(b)
			htmlText = &s
		}
		return nil
	})
	if werr != nil {
		if message.IsUnknownCharset(werr) || message.IsUnknownEncoding(werr) {
			return MailContent{}, mailError(CodeInvalidUnicode, descMailCharset, errors.New("body: unknown charset or transfer encoding"))
		}
		return MailContent{}, mailError(CodeMissingParams, descMailUnreadable, errors.New("unreadable message body"))
	}
	switch {
	case plain != nil:
		c.Body = *plain
	case htmlText != nil:
		c.Body = *htmlText
	}
	c.Body = strings.ReplaceAll(c.Body, "\r\n", "\n")
	return c, nil
}

// unfold joins a header's folded lines (a decoded Subject may keep CRLF
// and the whitespace after it).
func unfold(s string) string {
	s = strings.ReplaceAll(s, "\r\n", "")
	return strings.ReplaceAll(s, "\n", "")
}

// stripHTML returns the text of an HTML body: its text nodes, unescaped,
// without script and style, with a line break for <br> and after block
// elements.
func stripHTML(b []byte) string {
	z := html.NewTokenizer(bytes.NewReader(b))
	var sb strings.Builder
	skip := 0
	for {
		switch z.Next() {
		case html.ErrorToken:
			return strings.TrimSpace(sb.String())
		case html.TextToken:
			if skip == 0 {
				sb.Write(z.Text())
			}
		case html.StartTagToken, html.SelfClosingTagToken:
			name, _ := z.TagName()
			switch string(name) {
			case "script", "style":
				skip++
			case "br":
				sb.WriteByte('\n')
			}
		case html.EndTagToken:
			name, _ := z.TagName()
			switch string(name) {
			case "script", "style":
				skip = max(skip-1, 0)
			case "p", "div", "tr", "li", "h1", "h2", "h3", "h4", "h5", "h6":
				sb.WriteByte('\n')
			}
		}
	}
}

// mailText checks and trims a text read from mail: empty is code 107, a
// control character or invalid UTF-8 code 116.
func mailText(s string) (string, *Error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return "", mailError(CodeEmptyMessage, descEmpty, nil)
	}
	if err := checkText(s); err != nil {
		return "", mailError(CodeInvalidUnicode, descUnicode, err)
	}
	return s, nil
}

// splitAddress splits an envelope address at its last "@": the local part
// may itself hold one when it was quoted.
func splitAddress(addr string) (local, domain string, err error) {
	i := strings.LastIndexByte(addr, '@')
	if i <= 0 || i == len(addr)-1 {
		return "", "", fmt.Errorf("not local@domain")
	}
	return addr[:i], addr[i+1:], nil
}
