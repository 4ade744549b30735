package rewrite

import (
	"errors"
	"strings"
	"testing"
)

// mailOf builds a CRLF message from header lines and a body.
func mailOf(headers []string, body string) []byte {
	return []byte(strings.Join(headers, "\r\n") + "\r\n\r\n" + strings.ReplaceAll(body, "\n", "\r\n"))
}

const hostileText = "Pass: \"a&b\" <c> 'd' 😀 مرحبا\n.\nend"

func TestSMTP_Recipient(t *testing.T) {
	d, err := NewSMTP(DialectConfig{DefaultCountry: "GB"}, SMTPConfig{})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ addr, want, code string }{
		{"15551234567@sms.example.org", "15551234567", ""},
		{"+15551234567@sms.example.org", "15551234567", ""},
		{"0015551234567@sms.example.org", "15551234567", ""},
		{"07700900123@sms.example.org", "447700900123", ""},
		{"victim%evil.example@sms.example.org", "", CodeInvalidDestination},
		{"victim@evil.example@sms.example.org", "", CodeInvalidDestination}, // a quoted local part, unquoted by go-smtp
		{"guest@sms.example.org", "", CodeInvalidDestination},
		{"1555-123@sms.example.org", "", CodeInvalidDestination},
		{"123@sms.example.org", "", CodeInvalidDestination},
		{"@sms.example.org", "", CodeInvalidDestination},
		{"15551234567", "", CodeInvalidDestination},
	} {
		got, err := d.Recipient(tc.addr)
		var e *Error
		switch {
		case tc.code == "" && (err != nil || got != tc.want):
			t.Errorf("Recipient(%q): got %q, %v; want %q", tc.addr, got, err, tc.want)
		case tc.code != "" && (!errors.As(err, &e) || e.Code != tc.code):
			t.Errorf("Recipient(%q): got %q, %v; want code %s", tc.addr, got, err, tc.code)
		}
	}
}

func TestSMTP_ParseMail(t *testing.T) {
	body, _ := NewSMTP(DialectConfig{}, SMTPConfig{})
	subject, _ := NewSMTP(DialectConfig{}, SMTPConfig{TextFrom: "subject"})
	to := []string{"15551234567@sms.example.org", "+15551234567@sms.example.org", "447700900123@sms.example.org"}
	for _, tc := range []struct {
		name string
		d    *SMTP
		data []byte
		want string
		code string
	}{
		{"plain 8bit", body, mailOf([]string{"Subject: x", "Content-Type: text/plain; charset=utf-8"}, hostileText), hostileText, ""},
		{"no content type", body, mailOf([]string{"Subject: x"}, "  hello\n\n"), "hello", ""},
		{"quoted-printable", body, mailOf([]string{"Content-Type: text/plain; charset=utf-8", "Content-Transfer-Encoding: quoted-printable"},
			"Pass: =22a&b=22 =F0=9F=98=80 =D9=85=D8=B1=D8=AD=D8=A8=D8=A7=\n soft"), "Pass: \"a&b\" 😀 مرحبا soft", ""},
		{"base64", body, mailOf([]string{"Content-Type: text/plain; charset=utf-8", "Content-Transfer-Encoding: base64"},
			"UGFzczogImEmYiIg8J+YgA=="), "Pass: \"a&b\" 😀", ""},
		{"latin-1", body, mailOf([]string{"Content-Type: text/plain; charset=iso-8859-1", "Content-Transfer-Encoding: quoted-printable"},
			"Gr=FC=DFe"), "Grüße", ""},
		{"windows-1256 via charset package", body, mailOf([]string{"Content-Type: text/plain; charset=windows-1256", "Content-Transfer-Encoding: base64"},
			"49HNyMc="), "مرحبا", ""},
		{"alternative prefers plain", body, mailOf([]string{"MIME-Version: 1.0", `Content-Type: multipart/alternative; boundary="b"`},
			"--b\nContent-Type: text/html\n\n<p>html</p>\n--b\nContent-Type: text/plain\n\nplain text\n--b--\n"), "plain text", ""},
		{"html only", body, mailOf([]string{"Content-Type: text/html; charset=utf-8"},
			"<html><style>p{}</style><body><p>Code: <b>a&amp;b</b></p><script>x()</script></body></html>"), "Code: a&b", ""},
		{"subject", subject, mailOf([]string{"Subject: =?UTF-8?B?8J+YgCBjb2RlIDEyMw==?="}, "ignored"), "😀 code 123", ""},
		{"empty body", body, mailOf([]string{"Subject: hi"}, "  \n "), "", CodeEmptyMessage},
		{"empty subject", subject, mailOf([]string{"X: y"}, "body"), "", CodeEmptyMessage},
		{"unknown charset", body, mailOf([]string{"Content-Type: text/plain; charset=x-nonesuch"}, "hi"), "", CodeInvalidUnicode},
		{"control character", body, mailOf([]string{"Subject: x"}, "a\x01b"), "", CodeInvalidUnicode},
		{"invalid utf-8", body, mailOf([]string{"Content-Type: text/plain; charset=utf-8"}, "a\xffb"), "", CodeInvalidUnicode},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, _, err := tc.d.ParseMail(Mail{Recipients: to, Data: tc.data})
			if tc.code != "" {
				var e *Error
				if !errors.As(err, &e) || e.Code != tc.code {
					t.Fatalf("got %v, want code %s", err, tc.code)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if m.Text != tc.want {
				t.Errorf("text: got %q, want %q", m.Text, tc.want)
			}
			if strings.Join(m.To, ",") != "15551234567,447700900123" {
				t.Errorf("to: got %q", m.To)
			}
		})
	}
}

func TestSMTP_TooManyRecipients(t *testing.T) {
	d, _ := NewSMTP(DialectConfig{MaxRecipients: 1}, SMTPConfig{})
	_, _, err := d.ParseMail(Mail{Recipients: []string{"15551234567@a", "15551234568@a"}, Data: mailOf(nil, "x")})
	var e *Error
	if !errors.As(err, &e) || e.Code != CodeMissingParams {
		t.Fatalf("got %v, want 101", err)
	}
}

func TestNewSMTP_TextFrom(t *testing.T) {
	_, err := NewSMTP(DialectConfig{}, SMTPConfig{TextFrom: "header"})
	var ke *KeyError
	if !errors.As(err, &ke) || ke.Key != "text_from" {
		t.Fatalf("got %v, want a text_from KeyError", err)
	}
}

func TestClickatellSMTP_ParseMail(t *testing.T) {
	d, _ := NewClickatellSMTP(DialectConfig{})
	for _, tc := range []struct {
		name, body string
		want       Message
		creds      Credentials
		code       string
	}{
		{"full", "user: alice\napi_id:123\npassword: s3cret\nto: 15551234567, +447700900123\nfrom: Guest\ntext: " + hostileText,
			Message{To: []string{"15551234567", "447700900123"}, Text: hostileText, From: "Guest"}, Credentials{User: "alice", Password: "s3cret", APIID: "123"}, ""},
		{"upper keys, two to lines", "USER:u\nTo:15551234567\nto:15551234568\nTEXT:hi",
			Message{To: []string{"15551234567", "15551234568"}, Text: "hi"}, Credentials{User: "u"}, ""},
		{"text spans lines, keys after it are text", "to:15551234567\ntext:line one\nuser: not a key\n",
			Message{To: []string{"15551234567"}, Text: "line one\nuser: not a key"}, Credentials{}, ""},
		{"no to", "text: hi", Message{}, Credentials{}, CodeMissingParams},
		{"bad number", "to: 12ab\ntext: hi", Message{}, Credentials{}, CodeInvalidDestination},
		{"no text", "to: 15551234567\n", Message{}, Credentials{}, CodeEmptyMessage},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, c, err := d.ParseMail(Mail{Recipients: []string{"sms@messaging.clickatell.com"}, Data: mailOf([]string{"Subject: x"}, tc.body)})
			if tc.code != "" {
				var e *Error
				if !errors.As(err, &e) || e.Code != tc.code {
					t.Fatalf("got %v, want code %s", err, tc.code)
				}
				if strings.Contains(err.Error(), "hi") || strings.Contains(err.Error(), "12ab") {
					t.Errorf("error %q repeats the body", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if strings.Join(m.To, ",") != strings.Join(tc.want.To, ",") || m.Text != tc.want.Text || m.From != tc.want.From {
				t.Errorf("got %+v, want %+v", m, tc.want)
			}
			if c != tc.creds {
				t.Errorf("credentials: got %+v, want %+v", c, tc.creds)
			}
		})
	}
}

// FuzzParseSMTPMail: whatever the message, ParseMail either takes it —
// valid UTF-8, non-empty, trimmed text and well-formed numbers — or
// refuses it with a *Error that never repeats the message.
func FuzzParseSMTPMail(f *testing.F) {
	f.Add("15551234567@sms.example.org", mailOf([]string{"Content-Type: text/plain; charset=utf-8"}, hostileText), false)
	f.Add("+15551234567@sms.example.org", mailOf([]string{"Content-Transfer-Encoding: base64"}, "UGFzcw=="), false)
	f.Add("15551234567@x", mailOf([]string{"Subject: =?UTF-8?Q?a=26b?="}, ""), true)
	f.Add("15551234567@x", mailOf([]string{`Content-Type: multipart/alternative; boundary="b"`}, "--b\nContent-Type: text/html\n\n<b>x</b>\n--b--"), false)
	body, _ := NewSMTP(DialectConfig{DefaultCountry: "GB"}, SMTPConfig{})
	subject, _ := NewSMTP(DialectConfig{DefaultCountry: "GB"}, SMTPConfig{TextFrom: "subject"})
	f.Fuzz(func(t *testing.T, rcpt string, data []byte, fromSubject bool) {
		d := body
		if fromSubject {
			d = subject
		}
		m, _, err := d.ParseMail(Mail{Recipients: []string{rcpt}, Data: data})
		checkMailParsed(t, m, err, data)
	})
}

// FuzzParseClickatellSMTP: the same promise for the Clickatell SMTP API
// body.
func FuzzParseClickatellSMTP(f *testing.F) {
	f.Add(mailOf([]string{"Subject: x"}, "user:u\npassword:p\napi_id:1\nto:15551234567,447700900123\ntext:"+hostileText))
	f.Add(mailOf([]string{"Content-Transfer-Encoding: quoted-printable"}, "to:15551234567\ntext:a=3Db"))
	f.Add(mailOf(nil, "to:\ntext:"))
	d, _ := NewClickatellSMTP(DialectConfig{})
	f.Fuzz(func(t *testing.T, data []byte) {
		m, _, err := d.ParseMail(Mail{Recipients: []string{"sms@messaging.clickatell.com"}, Data: data})
		checkMailParsed(t, m, err, data)
	})
}

func checkMailParsed(t *testing.T, m Message, err error, data []byte) {
	t.Helper()
	if err != nil {
		var e *Error
		if !errors.As(err, &e) || e.Outcome != Refused {
			t.Fatalf("got %v, want a refused *Error", err)
		}
		if tail := strings.TrimSpace(string(data)); len(tail) >= 12 && strings.Contains(e.Error(), tail) {
			t.Fatalf("error %q repeats the message", e.Error())
		}
		return
	}
	if m.Text == "" || m.Text != strings.TrimSpace(m.Text) || checkText(m.Text) != nil {
		t.Fatalf("text %q: want non-empty, trimmed, valid", m.Text)
	}
	if len(m.To) == 0 {
		t.Fatal("no recipient")
	}
	for _, n := range m.To {
		if len(n) < 7 || len(n) > 15 || strings.Trim(n, "0123456789") != "" {
			t.Fatalf("recipient %q is not 7-15 digits", n)
		}
	}
}
