package smtpd

import (
	"strings"

	"github.com/emersion/go-smtp"

	"github.com/postern/postern/proxy/metrics"
	"github.com/postern/postern/rewrite"
)

// This file is the one place that decides what postern answers over SMTP:
// every refusal's code, enhanced code, text and metrics label, and every
// delivery outcome's reply after DATA. The texts are fixed: no number,
// message text, address or credential ever reaches a reply.

// reply is one SMTP answer and, for a refusal by postern itself, the
// postern_refusals_total label.
type reply struct {
	code   int
	ec     smtp.EnhancedCode
	text   string
	label  string // metrics.Refusal*, "" for a provider's outcome
	reason string // audit reason, fixed text
}

func (r *reply) err() *smtp.SMTPError {
	return &smtp.SMTPError{Code: r.code, EnhancedCode: r.ec, Message: r.text}
}

// Refusals before anything is sent.
var (
	replyClientNotAllowed = &reply{554, smtp.EnhancedCode{5, 7, 1}, "Client not allowed", metrics.RefusalClientNotAllowed, "client not in allow_clients"}
	replyRelayDenied      = &reply{550, smtp.EnhancedCode{5, 7, 1}, "Relaying denied", metrics.RefusalNoRoute, "relaying denied: no route takes the recipient's domain"}
	replyBadMailbox       = &reply{550, smtp.EnhancedCode{5, 1, 1}, "Bad destination mailbox address: not a phone number", metrics.RefusalBadRequest, "recipient is not a phone number"}
	replyTooManyRcpts     = &reply{452, smtp.EnhancedCode{4, 5, 3}, "Too many recipients", metrics.RefusalBadRequest, "too many recipients"}
	replyMixed            = &reply{452, smtp.EnhancedCode{4, 5, 3}, "Too many recipients: send mail for relayed and SMS recipients in separate transactions", metrics.RefusalBadRequest, "relayed and SMS recipients in one transaction"}
	replyNeedTLS          = &reply{530, smtp.EnhancedCode{5, 7, 0}, "Must issue a STARTTLS command first", metrics.RefusalAuthFailed, "require_tls: MAIL before STARTTLS"}
	replyNeedAuth         = &reply{530, smtp.EnhancedCode{5, 7, 0}, "Authentication required", metrics.RefusalAuthFailed, "auth_user is set: MAIL before AUTH"}
	replyTooBig           = &reply{552, smtp.EnhancedCode{5, 3, 4}, "Message size exceeds fixed limit", metrics.RefusalBadRequest, "message larger than max_message_bytes"}
	replyBareLF           = &reply{550, smtp.EnhancedCode{5, 6, 0}, "Message has bare LF line ends: end lines with CRLF", metrics.RefusalBadRequest, "bare LF in message"}
	replyPerClient        = &reply{451, smtp.EnhancedCode{4, 7, 1}, "Too many messages from this client, try again later", metrics.RefusalRateLimited, "per_client limit reached"}
	replyLegacyAuth       = &reply{554, smtp.EnhancedCode{5, 7, 1}, "Authentication failed", metrics.RefusalAuthFailed, "legacy credentials do not match the route"}
	replyBusy             = &reply{451, smtp.EnhancedCode{4, 3, 2}, "Too many messages in flight, message not sent: try again later", metrics.RefusalBusy, "max_concurrent_upstream busy for upstream_queue_wait"}
	replyStoreDown        = &reply{451, smtp.EnhancedCode{4, 3, 0}, "Shared store unavailable, message not sent: try again later", metrics.RefusalStore, "[cluster] store unavailable and on_store_error is refuse"}
	replyRelayUnreachable = &reply{451, smtp.EnhancedCode{4, 4, 1}, "Relay unreachable, message not sent: try again later", "", "relay unreachable"}
)

// replyDestination refuses a recipient a destination guardrail rejects
// (country, premium-rate, unknown type); stage says when: at RCPT it is
// 550, after DATA (numbers from the body) 554.
func replyDestination(reason string, afterData bool) *reply {
	code := 550
	if afterData {
		code = 554
	}
	return &reply{code, smtp.EnhancedCode{5, 7, 1}, "Recipient refused by policy", metrics.RefusalDestination, reason}
}

// replyRateLimit refuses a recipient over per_number or daily_max: at RCPT
// 550 5.7.1 (a guardrail refusal, as the contract says); after DATA 451,
// since nothing was sent and a later retry may pass.
func replyRateLimit(limit string, afterData bool) *reply {
	if afterData {
		return &reply{451, smtp.EnhancedCode{4, 7, 1}, "Message limit reached, message not sent: try again later", metrics.RefusalRateLimited, limit + " limit reached"}
	}
	return &reply{550, smtp.EnhancedCode{5, 7, 1}, "Recipient over its message limit", metrics.RefusalRateLimited, limit + " limit reached"}
}

// replyParse answers a message a mail dialect cannot take.
func replyParse(e *rewrite.Error) *reply {
	r := &reply{label: metrics.RefusalBadRequest, reason: e.Description}
	switch e.Code {
	case rewrite.CodeInvalidDestination:
		r.code, r.ec, r.text = 550, smtp.EnhancedCode{5, 1, 1}, "Bad destination mailbox address: not a phone number"
	case rewrite.CodeEmptyMessage:
		r.code, r.ec, r.text = 550, smtp.EnhancedCode{5, 6, 0}, "Empty message: no text to send"
	case rewrite.CodeInvalidUnicode:
		r.code, r.ec, r.text = 550, smtp.EnhancedCode{5, 6, 0}, "Message text cannot be decoded"
	case rewrite.CodeTooManyParts:
		r.code, r.ec, r.text = 552, smtp.EnhancedCode{5, 3, 4}, "Message text too long for SMS"
	default:
		r.code, r.ec, r.text = 550, smtp.EnhancedCode{5, 6, 0}, "Invalid or missing parameters"
	}
	return r
}

// Outcome kinds, from best to worst, for the reply to several messages.
const (
	kindDelivered = iota
	kindTemporary // refused and certainly not sent: a retry is safe
	kindPermanent // refused for good
	kindUnknown   // may have been sent: never resend
)

func (r *reply) kind() int {
	switch {
	case r.code/100 == 2:
		return kindDelivered
	case r.code/100 == 4:
		return kindTemporary
	case r.ec == unknownCode:
		return kindUnknown
	}
	return kindPermanent
}

var unknownCode = smtp.EnhancedCode{5, 0, 0}

// replyDelivered answers a message the provider took, with its ids.
func replyDelivered(ids []string) *reply {
	return &reply{code: 250, ec: smtp.EnhancedCode{2, 0, 0}, text: "Ok: " + strings.Join(ids, " ")}
}

// replyUnknown is the answer whenever the message may have reached the
// provider: permanent, so that a mailer never resends it.
var replyUnknown = &reply{554, unknownCode, "Message may have been sent, outcome unknown: do not resend", "", ""}

// replyPartial answers a message sent to some recipients and not others.
var replyPartial = &reply{554, unknownCode, "Message sent to some recipients only, outcome unknown: do not resend", "", ""}

// replyProvider answers a message the provider (or the way to it) refused,
// by the legacy code: temporary (451) when it was certainly not sent and a
// retry may pass; permanent (554) otherwise.
func replyProvider(e *rewrite.Error) *reply {
	if e.Outcome == rewrite.Unknown {
		return replyUnknown
	}
	r := &reply{code: 554}
	switch e.Code {
	case rewrite.CodeThrottled:
		r.code, r.ec, r.text = 451, smtp.EnhancedCode{4, 7, 1}, "Provider throttled the message, not sent: try again later"
	case rewrite.CodeAuthFailed:
		r.ec, r.text = smtp.EnhancedCode{5, 7, 0}, "Provider refused postern's credentials, message not sent"
	case rewrite.CodeNoCredit:
		r.ec, r.text = smtp.EnhancedCode{5, 7, 0}, "Provider account has no credit left, message not sent"
	case rewrite.CodeInvalidDestination, rewrite.CodeCannotRoute:
		r.ec, r.text = smtp.EnhancedCode{5, 1, 1}, "Provider refused the destination number, message not sent"
	case rewrite.CodeInternal:
		if e.Failover {
			// Unreachable, TLS verification failed, or failing: nothing
			// was taken.
			r.code, r.ec, r.text = 451, smtp.EnhancedCode{4, 4, 1}, "Provider unreachable or failing, message not sent: try again later"
			if strings.HasPrefix(e.Description, "Upstream TLS verification failed") {
				r.ec, r.text = smtp.EnhancedCode{4, 7, 0}, "Provider's TLS certificate failed verification, message not sent"
			}
		} else {
			r.ec, r.text = smtp.EnhancedCode{5, 3, 0}, "Provider refused the message, not sent"
		}
	default:
		r.ec, r.text = smtp.EnhancedCode{5, 6, 0}, "Provider refused the message text, not sent"
	}
	return r
}

// worst combines the replies to the messages of one transaction: all
// delivered is 250 with every id; anything sent beside anything not sent,
// or unknown, is 554 5.0.0; else the first permanent refusal, else the
// first temporary one.
func worst(rs []*reply) *reply {
	var ids []string
	var first [kindUnknown + 1]*reply
	for _, r := range rs {
		k := r.kind()
		if first[k] == nil {
			first[k] = r
		}
		if k == kindDelivered {
			ids = append(ids, strings.TrimPrefix(r.text, "Ok: "))
		}
	}
	switch {
	case first[kindUnknown] != nil:
		return first[kindUnknown]
	case first[kindDelivered] != nil && (first[kindPermanent] != nil || first[kindTemporary] != nil):
		return replyPartial
	case first[kindPermanent] != nil:
		return first[kindPermanent]
	case first[kindTemporary] != nil:
		return first[kindTemporary]
	}
	return replyDelivered(ids)
}
